package replmap

import "github.com/redisync/redisync/internal/wire"

// Digest summarizes a map's (key, version) pairs independently of their order: two replicas
// with the same keys at the same versions have the same Digest, and a difference in any pair
// changes it (short of a 96-bit collision). Each pair contributes the first 12 bytes of
// SHA-1("<version>:<key>") as two 48-bit lanes X and Y, summed modulo 2^48; Redis keeps the
// same sums with every write (PROTOCOL.md, "Maps"). String formats it as 24 hex digits.
type Digest = wire.Digest
