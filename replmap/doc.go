// Package replmap implements replicated maps: every node holds a local replica of a keyspace
// kept in Redis, reads it from memory, and is kept current by the map's reliable channel.
//
// # Guarantees
//
//   - Redis holds the authoritative state: each key's value and version, the version being the
//     seq of the write that produced it on the map's channel. Versions of a key only go up.
//   - A write (Set, Delete, CompareAndSet, CompareAndDelete, or an atomic Write of many
//     operations) is one script call: guards are checked, the state and the digest are updated,
//     and the change is appended to the channel as one message with one seq. Every replica and
//     every watcher sees all of a write or none of it, in seq order.
//   - Read-your-writes: a write returns once this node's replica has applied it (unless
//     Config.NoWaitOnWrite), so a Get on the same Map that follows sees it or something newer.
//     WaitFor waits for a seq written elsewhere.
//   - Replicas converge: a replica loads a snapshot (chunked HSCAN after reading the head),
//     then applies the channel from that head, each change only if it is newer than the key's
//     version. Once it has applied the head read after the snapshot it is ready; until then Get
//     answers ErrNotReady.
//   - Verifiable: Redis keeps an order-independent Digest of the (key, version) pairs with every
//     write, the replica keeps the same; Verify compares them at the same seq. A replica that
//     gets a reset from its channel (history it cannot replay, or a failover that lost writes
//     it had applied) or fails Verify loads a new snapshot by itself, and logs and counts it.
//     It checks itself every Config.VerifyEvery, and is not ready from a mismatch or a reset
//     until it has reloaded.
//   - Conditions are checked by the write script in Redis: Op.Guard with IfVersion (0:
//     absent), Op.MustExist. Deleting an absent key writes nothing (ErrNotFound).
//   - A map's name holds a map for its whole history: it cannot be published to or read as
//     a plain channel (channel.ErrWrongKind), so no message can pass for a change.
//   - While the replica cannot confirm it is current (Redis unreachable), Get keeps serving the
//     last known state and Staleness says how old it may be; Config.MaxStaleness turns that into
//     ErrStale.
//
// Writes streams a map's writes (Watch, their operations one by one) from any position still
// in the log, with no replica; from channel.FromNow the start is fixed when the call returns.
// A Cache is a bounded near-cache for maps too large to hold on every node: it holds the most
// recently used keys, reads others through from Redis, and is kept current by the same channel.
//
// # Concurrency
//
// A Map is safe for concurrent use. Its replica has one goroutine that applies changes in seq
// order under a write lock; Get takes a read lock and allocates nothing. OnChange callbacks run
// on that goroutine, after the lock is released. Close waits for it.
package replmap
