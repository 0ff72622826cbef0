// Package bench measures redisync against raw Redis pub/sub, side by side in one run, so that
// the noise of the machine cancels in the ratio. `redisync bench` and the Go benchmarks of this
// package (go test -bench) run the same code.
//
// # Method
//
// Each Scenario runs one or more measurements; a measurement runs the same load through
// redisync and then through raw pub/sub (the baseline), each on a fresh channel:
//
//   - The same Redis, the same rueidis client options (redisconn.Open), the same payload size,
//     the same number of subscribers, all in this process, each with a Redis client and
//     connections of its own; one publishing client shared by the publishing goroutines.
//   - Before measuring, every subscriber must be subscribed (PUBSUB NUMSUB) and have received
//     a burst of warm-up messages.
//   - Every message carries a header (kind, index, time of the publish call). Subscribers count
//     what they receive, check that redisync seqs follow each other without a reset, and, for
//     latency, record the time from the publish call to their delivery.
//   - Publishing runs for Config.Duration (or a message count, in Go benchmarks); then the
//     measurement waits until every subscriber has everything, or until nothing more arrives
//     (what is missing then is lost). Throughput is the fewest messages any subscriber received
//     over the time from the first publish call to the last delivery.
//   - Around the measured part the bench reads the CPU time of this process and of Redis and
//     Redis's INFO commandstats, so each side says where its time went; Config.CPUProfile
//     writes a CPU profile per side.
//
// Redisync must lose nothing: Result.Problems lists any loss, reordering or reset. Raw
// pub/sub's losses are reported as they are.
//
// # Scenarios
//
// A scenario is a name, a summary and a function that fills a Result: its Params, its Rows
// (redisync's figure beside the raw one, their ratio, the target and whether it was met) and
// every Side measured. A new scenario (map write propagation, bootstrap, local reads) is one
// more entry in Scenarios, built from the same parts: a system to publish through (an
// implementation of the unexported system interface, beside redisyncSystem and rawSystem), a
// load, and Runner.measure; or its own procedure, as catchup has.
package bench
