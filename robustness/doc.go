// Package robustness is redisync's fault suite: random writes and publishes from several nodes
// while a seeded scheduler injects faults, then checkers that validate the whole recorded
// history (in the style of etcd's robustness tests and Jepsen).
//
// It is a test-support package, not a public API: nothing outside this directory imports it,
// and its names may change at any time. The tests are in robustness_test.go; the harness
// (cluster.go, process.go), the workload (node.go, probe.go, sse.go), the faults (faults.go)
// and the checkers (check.go, check_now.go, check_failover.go, linearize.go) are plain files so
// that the node-process entry point, which re-runs the test binary as a child
// (TestNodeProcess), shares them; failover.go holds the failover deployments and their
// faults. docs/robustness.md describes the faults, the invariants, how to run the short and
// the long mode, and the latest figures.
//
// # What one run does
//
//   - Starts the run's Redis: one redis-server (with "appendonly yes, appendfsync always" for
//     the persistent scenario, without persistence for the wipe scenario) and one faultproxy
//     per node, so a node can be partitioned or stalled alone; or, for the failover
//     scenarios, a Sentinel set (one master, two replicas, three sentinels) or a three-master
//     Redis Cluster, which the nodes dial through its URL as applications do (sharded pub/sub
//     on the cluster), and whose failovers are the faults: SENTINEL FAILOVER, a master killed
//     while its replicas lag, CLUSTER FAILOVER, a cluster master killed while its replica
//     lags, and the migration of the map's or the channel's slot.
//   - Starts the nodes: some in this process, one as a separate OS process that the scheduler
//     SIGKILLs and restarts. Each node holds a replmap.Map replica, a Map.Watch and a
//     channel subscription, writes Set/Delete/CompareAndSet on a few keys, reads them back
//     from Redis, and publishes on a channel. Every invocation, return and observed event is
//     recorded with its time (a process node streams them as JSON lines on stdout).
//   - Enters the way users enter (probe.go, sse.go): every node keeps starting short-lived
//     subscriptions and watches from channel.FromNow() (Subscribe, Events, replmap.Watch,
//     Map.Watch) while the others publish and write, each recording the instant its start
//     was fixed; the first in-process node and the node process serve the HTTP gateway
//     (node.New), and the harness's SSE clients read it over real HTTP, disconnect every
//     so often and resume with Last-Event-ID from any gateway, across every fault (some
//     are held off across each Redis restart, to resume from an id of the history before).
//   - Injects faults from a seeded random schedule, heals them, lets the system converge
//     within a bounded time, and runs the checkers of check.go, check_now.go,
//     check_failover.go and linearize.go. A failover may lose acknowledged writes: the
//     checkers then hold every stream that delivered them to a rewound reset that covers
//     exactly them, count what was lost, and check the rest as before.
//
// The seed fixes the fault schedule and every node's workload; the interleaving with real
// time does not replay exactly, so a run is replayed from its seed statistically, not
// byte for byte.
package robustness
