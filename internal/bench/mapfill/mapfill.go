// Package mapfill writes a large replicated map straight into Redis, in the layout the map's
// write script leaves (PROTOCOL.md, "Maps"), so that benchmarks can load a replica of a million
// keys without a million script calls. It imports only the protocol (internal/wire), not
// replmap, so that replmap's own tests can use it as well as the bench package.
package mapfill

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/rueidis"

	"github.com/redisync/redisync/internal/wire"
)

// Epoch is the epoch Fill writes into the map's channel hash.
const Epoch = "mapfill"

// Bounds of the writes Fill sends: fields per HSET, HSETs per round trip.
const (
	fieldsPerHset = 2000
	hsetsPerTrip  = 50
)

// Options say what map Fill writes.
type Options struct {
	// Prefix and Name name the map: its keys are "Prefix:{Name}:meta" and "Prefix:{Name}:state".
	Prefix, Name string
	// Keys is the number of keys, Key(0) through Key(Keys-1), the key Key(i) at version i+1.
	Keys int
	// ValueBytes is the size of every value: as many 'v' bytes.
	ValueBytes int
	// Lanes returns the two 48-bit digest lanes of a (key, version) pair; Fill stores their
	// sums as the map's digest, so that a replica's Verify matches. Default: the protocol's
	// (wire.Lanes).
	Lanes func(key string, version uint64) (x, y uint64)
}

// laneMask keeps a digest lane to 48 bits (PROTOCOL.md, "Maps").
const laneMask = 1<<48 - 1

// Key returns the name of key i: "key:" and i in at least seven digits, 11 bytes below
// 10,000,000.
func Key(i int) string { return fmt.Sprintf("key:%07d", i) }

// Fill writes the map o describes, replacing the state and the channel hash of a map of that
// name: versions 1 through o.Keys, the channel's head at o.Keys in epoch Epoch, the key count
// and the digest. It leaves no log: the map's history starts after the head, as if the log had
// been trimmed, so a replica must load the state to have the keys.
func Fill(ctx context.Context, rc rueidis.Client, o Options) error {
	k, err := wire.KeysFor(o.Prefix, o.Name)
	if err != nil {
		return fmt.Errorf("mapfill: %w", err)
	}
	meta, state := k.Meta, k.State
	if o.Lanes == nil {
		o.Lanes = wire.Lanes
	}
	value := strings.Repeat("v", o.ValueBytes)
	var dx, dy uint64
	var cmds rueidis.Commands
	flush := func() error {
		for _, r := range rc.DoMulti(ctx, cmds...) {
			if err := r.Error(); err != nil {
				return fmt.Errorf("mapfill: HSET %s: %w", state, err)
			}
		}
		cmds = cmds[:0]
		return nil
	}
	if err := rc.Do(ctx, rc.B().Del().Key(meta, state).Build()).Error(); err != nil {
		return fmt.Errorf("mapfill: DEL %s: %w", state, err)
	}
	for start := 0; start < o.Keys; start += fieldsPerHset {
		cmd := rc.B().Hset().Key(state).FieldValue()
		for i := start; i < min(start+fieldsPerHset, o.Keys); i++ {
			key, ver := Key(i), uint64(i+1)
			cmd = cmd.FieldValue(key, strconv.FormatUint(ver, 10)+":"+value)
			x, y := o.Lanes(key, ver)
			dx, dy = (dx+x)&laneMask, (dy+y)&laneMask
		}
		if cmds = append(cmds, cmd.Build()); len(cmds) == hsetsPerTrip {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	err = rc.Do(ctx, rc.B().Hset().Key(meta).FieldValue().FieldValue("epoch", Epoch).
		FieldValue("seq", strconv.Itoa(o.Keys)).FieldValue("dx", strconv.FormatUint(dx, 10)).
		FieldValue("dy", strconv.FormatUint(dy, 10)).FieldValue("n", strconv.Itoa(o.Keys)).FieldValue("kind", string(wire.KindMap)).Build()).Error()
	if err != nil {
		return fmt.Errorf("mapfill: HSET %s: %w", meta, err)
	}
	return nil
}
