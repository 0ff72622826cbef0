// Package wire owns redisync's Redis protocol, as PROTOCOL.md documents it: the names of the
// keys, the Lua scripts and the arguments they take, the retry and idempotency rules of an
// append, the codecs of envelopes and change records, the digest lanes, and a typed parser
// for every reply. Packages channel and replmap are built on it and show none of it in their
// APIs.
package wire
