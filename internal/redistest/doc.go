// Package redistest starts real redis-server processes for tests.
//
// Each Server is one redis-server process listening on a free port of
// 127.0.0.1 (never the default port 6379), with its own data directory under
// the test's temporary directory. Start registers a cleanup that kills the
// process, reaps it and removes the directory, even when the test fails.
//
// Deployments as production runs them are built from Servers:
//   - StartSentinel: a master, two replicas and three sentinels with short
//     timeouts, so that a failover completes in a few seconds; Failover,
//     WaitFailover and StallReplicas drive and observe failovers, including
//     ones that lose acknowledged writes.
//   - StartCluster: a Redis Cluster of three masters and three replicas made
//     by redis-cli --cluster create; Failover, KillMaster, WaitFailover and
//     MigrateSlot move slots between nodes and wait until every node agrees.
//
// NewCerts makes a private CA with a server and a client certificate;
// Options.TLS starts a server that speaks TLS only and asks clients for a
// certificate, as a production server with tls-auth-clients yes does.
//
// Server.Pause and Server.Resume freeze and thaw a process (SIGSTOP,
// SIGCONT), as a machine that stops answering without closing its
// connections.
//
// A missing redis-server binary is a test failure with instructions, never a
// skip: the integration tests of this module need a real Redis 7.
//
// Start, Kill, Stop, Restart, Pause, Resume, Info, ClientKill, WaitReplicas
// and every method of Sentinel and Cluster report failures with t.Fatalf of
// the test that started the server or the deployment, and must therefore be
// called from the goroutine running that test (not from its subtests). Addr,
// URL and Do may be called from any goroutine.
package redistest
