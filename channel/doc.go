// Package channel implements reliable, ordered channels over Redis: the simplicity of
// PUBLISH/SUBSCRIBE (publish on a channel, every subscriber gets a copy and handles it with
// its own code) without its losses.
//
// # Guarantees
//
//   - Every message of a channel gets a sequence number, 1, 2, 3, … with no holes, assigned
//     atomically by Redis however many publishers there are.
//   - Publish returns once Redis has accepted the message, with its Position. Transient
//     failures are retried until the context ends, and a retried call is never appended twice.
//   - A subscription started after position P delivers every message with a greater seq
//     exactly once, in seq order, across lost connections, slow-consumer disconnects
//     (client-output-buffer-limit), Redis restarts with persistence and network partitions —
//     as long as the log still holds the messages.
//   - When it cannot (the messages were trimmed by retention, or Redis lost the log and the
//     channel's epoch changed, or a failover rewound the log), the subscription delivers a
//     reset event that names the range and the reason. Nothing is ever skipped silently.
//   - A subscription from now is fixed when the call that starts it returns (Subscribe,
//     Events, replmap.Watch): every message whose publish begins after that is delivered.
//   - A Position is (epoch, seq), written "EPOCH:SEQ" (ParsePosition reads it back). A start
//     after a bare seq means a seq of the current epoch; one above the head is answered with a
//     rewound reset of 1..seq and the current history from seq 1, so every seq is delivered
//     or inside a reset's range. Reset ranges have From <= To, or Open set when the upper
//     bound is unknown (epoch-changed).
//   - A name is a channel or a map (its Kind) for its whole history; publishing to a map or
//     subscribing to one as a channel is refused with a *KindError before anything is written.
//   - Retention (Retention) is stored with the channel: set by the publish that creates it,
//     changed only by SetRetention, applied by every publisher alike.
//   - A lost tail is detected: a subscription that hears nothing reads the channel's head
//     every Config.IdleCheck, so a message whose pub/sub copy was lost is delivered within
//     about that bound even when nothing follows it; a pub/sub connection that stays up but
//     brings nothing is replaced.
//
// # Mechanism
//
// Each channel is a Redis Stream (the log) and a small hash (the epoch and the head seq),
// all under one Redis Cluster hash tag. Publishing is one Lua script call that numbers the
// messages, appends them to the log, trims it, and publishes one envelope carrying them on
// pub/sub. Pub/sub is only the fast path: a subscriber checks every envelope's seqs against
// the last one it delivered and reads anything missing from the log. PROTOCOL.md in the
// repository documents the keys, the script and the envelope for clients in other languages.
//
// # Concurrency and resources
//
// A Client is safe for concurrent use. All its subscriptions share one pub/sub connection,
// whose reader never blocks: each subscription has a queue of Config.BufferSize envelopes,
// and when its handler falls behind, further envelopes are dropped (counted in
// Stats.Overflows) and the subscription catches up from the log instead, so memory stays
// bounded. A handler is called from one goroutine at a time, in seq order. Close ends every
// subscription and returns once every goroutine the Client started has ended.
package channel
