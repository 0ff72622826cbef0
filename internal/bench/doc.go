// Package bench measures redisync against raw Redis pub/sub (and its maps against a plain
// HSCAN and a plain Go map), side by side in one run, so that the noise of the machine cancels
// in the ratio. `redisync bench` and the Go benchmarks of this package (go test -bench) run the
// same code.
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
// # Maps
//
// map-latency is the latency measurement with map writes instead of publishes (mapSystem): one
// node sets a key per message with replmap.Config.NoWaitOnWrite, the message (with its header)
// being the value, and every subscriber is a replica on a node of its own that records the time
// from the Set call to its OnChange. Its baseline is raw pub/sub carrying as many bytes (key
// and value).
//
// bootstrap and get write their map straight into Redis (package mapfill), then measure with a
// procedure of their own: bootstrap times a new replica's load, and reads the live heap it
// added, against a plain HSCAN into a Go map, while another node writes, and then checks the
// replica against Redis key by key; get times Map.Get against a map lookup under a
// sync.RWMutex, in a loop of its own (timeLoop: growing batches until Config.BenchTime is
// spent, allocations from runtime.ReadMemStats), since the redisync binary that runs it must
// not link package testing. Result.Baseline names each baseline.
//
// # Many clients, storms, idle subscriptions and Centrifuge
//
// fanout is the latency measurement with Config.Clients subscribers (200) at
// Config.FanoutRate (1,000/s), all in this process; each side also records how long the
// process's goroutines waited to run (runtime/metrics), which would show a process short of
// CPU. storm cuts Config.Clients subscribers off pub/sub at once (CLIENT KILL TYPE pubsub),
// publishes Config.StormMessages while a tap (a rueidis.Client wrapper) holds back their new
// pub/sub connections, lets them all reconnect at once and times them until every one has
// caught up from the log, sampling Redis for its busiest interval; raw pub/sub has no
// counterpart. idle holds Config.IdleSubscriptions quiet subscriptions over
// Config.IdleClients clients and counts the commands Redis runs over Config.IdleWindow, those
// the clients sent (named by their taps) apart from those scripts ran and from keep-alive
// PINGs; its baseline, one command per subscription per IdleCheck, is computed.
// throughput-concurrent also runs its load through Centrifuge's Redis broker with history
// (centrifugeSystem), a second baseline; Row.Baseline names it on its row.
//
// # Scenarios
//
// A scenario is a name, a summary and a function that fills a Result: its Params, its Rows
// (redisync's figure beside the baseline's, their ratio, the target and whether it was met)
// and every Side measured. A new scenario is one more entry in Scenarios, built from the same
// parts: a system to publish through (an implementation of the unexported system interface:
// redisyncSystem, mapSystem, rawSystem, centrifugeSystem), a load, and Runner.measure; or
// its own procedure, as catchup, bootstrap, get, storm and idle have. PlotLatency draws the
// latency-sweep results as a PNG.
package bench
