// Package redisconn opens Redis clients from a URL, with errors that name the address and the
// cause in one line.
//
// One URL names every deployment redisync runs on (see Options.URL for its parameters):
//
//	redis://[user:password@]host:port[/db]                  a single server
//	rediss://host:port?tls_ca=ca.crt&tls_cert=c.crt&tls_key=c.key   the same over TLS
//	redis://host1:port?addr=host2:port&addr=host3:port      a Redis Cluster (its seeds)
//	redis://[:password@]s1:port?addr=s2:port&master_set=NAME&sentinel_password=…   Sentinel
//
// A single address of a cluster node also opens a cluster client; IsCluster tells which
// kind Open returned.
//
// Open fails early, and says why, where a client would otherwise fail later or obscurely:
// a URL without a scheme, an unknown parameter, a TLS file that cannot be read or is not
// what it should be, a server that wants a password the URL does not give (or sentinels
// that want theirs), TLS spoken to a plain port or the reverse, a replica when a master
// is needed (Options.AllowReplica allows it), a sentinel addressed as a data server, and
// a cluster node whose slot map the ACL user may not read (+cluster|slots), which would
// otherwise leave the client on one node answering MOVED.
//
// The clients Open returns have client-side caching disabled. Open, IsCluster and
// URLFromEnv may be called from any goroutine.
package redisconn
