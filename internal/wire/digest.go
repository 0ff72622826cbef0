package wire

import (
	"crypto/sha1"
	"fmt"
	"strconv"
)

// Digest summarizes a map's (key, version) pairs independently of their order: two replicas
// with the same keys at the same versions have the same Digest, and a difference in any pair
// changes it (short of a 96-bit collision). Each pair contributes the first 12 bytes of
// SHA-1("<version>:<key>") as two 48-bit lanes, summed modulo 2^48; Redis keeps the same sums
// with every write (PROTOCOL.md, "Maps").
type Digest struct {
	X, Y uint64
}

const laneMask = 1<<48 - 1

// String formats d as 24 hex digits.
func (d Digest) String() string { return fmt.Sprintf("%012x%012x", d.X, d.Y) }

// Lanes returns the two 48-bit digest lanes of a (key, version) pair: the first 12 bytes of
// SHA-1("VERSION:KEY").
func Lanes(key string, ver uint64) (x, y uint64) {
	var stack [96]byte // most keys fit: no allocation
	buf := strconv.AppendUint(stack[:0], ver, 10)
	buf = append(buf, ':')
	buf = append(buf, key...)
	h := sha1.Sum(buf)
	for i := 0; i < 6; i++ {
		x = x<<8 | uint64(h[i])
		y = y<<8 | uint64(h[6+i])
	}
	return x, y
}

// Add adds the pair (key, ver).
func (d *Digest) Add(key string, ver uint64) {
	x, y := Lanes(key, ver)
	d.X = (d.X + x) & laneMask
	d.Y = (d.Y + y) & laneMask
}

// Remove removes the pair (key, ver).
func (d *Digest) Remove(key string, ver uint64) {
	x, y := Lanes(key, ver)
	d.X = (d.X - x) & laneMask
	d.Y = (d.Y - y) & laneMask
}
