// Package robustness is redisync's fault suite: random writes and publishes from several nodes
// while a seeded scheduler injects faults, then checkers that validate the whole recorded
// history (in the style of etcd's robustness tests and Jepsen).
//
// It is a test-support package, not a public API: nothing outside this directory imports it,
// and its names may change at any time. The tests are in robustness_test.go; the harness
// (cluster.go, process.go), the workload (node.go), the faults (faults.go) and the checkers
// (check.go, linearize.go) are plain files so that the node-process entry point, which re-runs
// the test binary as a child (TestNodeProcess), shares them. docs/robustness.md describes the
// faults, the invariants, how to run the short and the long mode, and the latest figures.
//
// # What one run does
//
//   - Starts one redis-server (with "appendonly yes, appendfsync always" for the persistent
//     scenario, without persistence for the wipe scenario) and one faultproxy per node, so a
//     node can be partitioned or stalled alone.
//   - Starts the nodes: some in this process, one as a separate OS process that the scheduler
//     SIGKILLs and restarts. Each node holds a replmap.Map replica, a Map.Watch and a
//     channel subscription, writes Set/Delete/CompareAndSet on a few keys, reads them back
//     from Redis, and publishes on a channel. Every invocation, return and observed event is
//     recorded with its time (a process node streams them as JSON lines on stdout).
//   - Injects faults from a seeded random schedule, heals them, lets the system converge
//     within a bounded time, and runs the checkers of check.go and linearize.go.
//
// The seed fixes the fault schedule and every node's workload; the interleaving with real
// time does not replay exactly, so a run is replayed from its seed statistically, not
// byte for byte.
package robustness
