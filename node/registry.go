package node

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/rueidis"
)

// The registry (PROTOCOL.md, "Node registry"): every node keeps its Record as JSON in the
// string P:{nodes}:node:ID, written with a TTL at every heartbeat, and its ID in the set
// P:{nodes}:index. A reader takes the set's members, reads their records with one MGET, and
// prunes from the set the members whose record has expired. The hash tag puts all of it in
// one Redis Cluster slot.

//go:embed scripts/prune.lua
var pruneLua string

var pruneScript = rueidis.NewLuaScript(pruneLua)

// Record is what a node publishes about itself in the registry.
type Record struct {
	ID        string    `json:"id"`
	Addr      string    `json:"addr"` // where its HTTP API listens
	Version   string    `json:"version"`
	Started   time.Time `json:"started"`
	Heartbeat time.Time `json:"heartbeat"` // when this record was written (the node's clock)
	TTLMillis int64     `json:"ttl_ms"`    // the record disappears this long after Heartbeat
	// RedisRTTSeconds is the round trip of the last PING; RedisUp whether it was answered.
	RedisRTTSeconds float64 `json:"redis_rtt_seconds"`
	RedisUp         bool    `json:"redis_up"`
	// Published and Delivered count messages since the node started (see the metrics of the
	// same names); DeliveredPerSecond is the rate over the last heartbeat.
	Published          uint64          `json:"published"`
	Delivered          uint64          `json:"delivered"`
	DeliveredPerSecond float64         `json:"delivered_per_second"`
	Maps               []MapRecord     `json:"maps"`
	Channels           []ChannelRecord `json:"channels"`
}

// MapRecord is a node's replica of one map, as sampled at the heartbeat. Seq, Digest and Keys
// are read together: two nodes with the same Epoch and Seq must have the same Digest.
type MapRecord struct {
	Name   string `json:"name"`
	Ready  bool   `json:"ready"`
	Epoch  string `json:"epoch"`
	Seq    uint64 `json:"seq"` // the last change applied
	Digest string `json:"digest"`
	Keys   int    `json:"keys"`
	// Head is the seq of the newest change in Redis; Lag and LagSeconds say how far the
	// replica was behind it (see replmap.Status).
	Head       uint64  `json:"head"`
	Lag        uint64  `json:"lag"`
	LagSeconds float64 `json:"lag_seconds"`
	// RedisMatch is whether the replica's digest equalled Redis's at the same seq, the last
	// time the two could be compared; absent before.
	RedisMatch      *bool   `json:"redis_match,omitempty"`
	WritesPerSecond float64 `json:"writes_per_second"` // seqs applied per second over the last heartbeat
}

// ChannelRecord is a channel the node relays, as sampled at the heartbeat.
type ChannelRecord struct {
	Name              string  `json:"name"`
	Epoch             string  `json:"epoch"`
	Seq               uint64  `json:"seq"` // the head
	MessagesPerSecond float64 `json:"messages_per_second"`
}

// indexKey is the set of the IDs of registered nodes under prefix.
func indexKey(prefix string) string { return prefix + ":{nodes}:index" }

// recordKey is the record of node id under prefix.
func recordKey(prefix, id string) string { return prefix + ":{nodes}:node:" + id }

func (n *Node) prefix() string { return n.cl.Config().Prefix }

// register writes the node's record with its TTL and makes sure the index lists it.
func (n *Node) register(ctx context.Context, rec Record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	rc := n.cl.Redis()
	for _, r := range rc.DoMulti(ctx,
		rc.B().Set().Key(recordKey(n.prefix(), n.cfg.ID)).Value(string(b)).PxMilliseconds(n.cfg.TTL.Milliseconds()).Build(),
		rc.B().Sadd().Key(indexKey(n.prefix())).Member(n.cfg.ID).Build(),
	) {
		if err := r.Error(); err != nil {
			return err
		}
	}
	return nil
}

// deregister removes the node's record and its index entry.
func (n *Node) deregister(ctx context.Context) error {
	rc := n.cl.Redis()
	for _, r := range rc.DoMulti(ctx,
		rc.B().Del().Key(recordKey(n.prefix(), n.cfg.ID)).Build(),
		rc.B().Srem().Key(indexKey(n.prefix())).Member(n.cfg.ID).Build(),
	) {
		if err := r.Error(); err != nil {
			return err
		}
	}
	return nil
}

// ListNodes reads the registry under prefix: the records of the live nodes, sorted by ID.
// Index entries whose record has expired (nodes that died without deregistering) are
// pruned on the way.
func ListNodes(ctx context.Context, rc rueidis.Client, prefix string) ([]Record, error) {
	index := indexKey(prefix)
	ids, err := rc.Do(ctx, rc.B().Smembers().Key(index).Build()).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("node: read the registry %s: %w", index, err)
	}
	if len(ids) == 0 {
		return []Record{}, nil
	}
	sort.Strings(ids)
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = recordKey(prefix, id)
	}
	vals, err := rc.Do(ctx, rc.B().Mget().Key(keys...).Build()).ToArray()
	if err != nil {
		return nil, fmt.Errorf("node: read the registry's records: %w", err)
	}
	recs := make([]Record, 0, len(ids))
	pruneKeys, pruneIDs := []string{index}, []string{}
	for i, v := range vals {
		s, err := v.ToString()
		if err != nil { // nil: expired
			pruneKeys = append(pruneKeys, keys[i])
			pruneIDs = append(pruneIDs, ids[i])
			continue
		}
		var rec Record
		if err := json.Unmarshal([]byte(s), &rec); err != nil {
			return nil, fmt.Errorf("node: the registry's record %s is not a node record: %w", keys[i], err)
		}
		recs = append(recs, rec)
	}
	if len(pruneIDs) > 0 {
		// Best effort: a reader that may not write still lists the live nodes.
		_ = pruneScript.Exec(ctx, rc, pruneKeys, pruneIDs).Error()
	}
	return recs, nil
}

// The states of a map across nodes, as reported by Agreement.
const (
	StateInSync     = "in sync"     // every replica is ready and caught up, and none disagrees
	StateCatchingUp = "catching up" // replicas are at different seqs, and none disagrees
	StateLoading    = "loading"     // a replica is still loading
	StateDiverged   = "diverged"    // replicas at the same seq have different digests, or one disagrees with Redis
)

// MapAgreement is the state of one map across the nodes that host it.
type MapAgreement struct {
	Map    string `json:"map"`
	State  string `json:"state"`
	Nodes  int    `json:"nodes"`
	Seq    uint64 `json:"seq"` // the highest seq applied by a node
	Detail string `json:"detail"`
}

// Agreement compares the replicas of each map across nodes: digests must be equal at equal
// (epoch, seq). It returns one entry per map, sorted by name.
func Agreement(nodes []Record) []MapAgreement {
	type rep struct {
		node string
		m    MapRecord
	}
	byMap := map[string][]rep{}
	for _, rec := range nodes {
		for _, m := range rec.Maps {
			byMap[m.Name] = append(byMap[m.Name], rep{rec.ID, m})
		}
	}
	names := make([]string, 0, len(byMap))
	for name := range byMap {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]MapAgreement, 0, len(names))
	for _, name := range names {
		reps := byMap[name]
		a := MapAgreement{Map: name, Nodes: len(reps), State: StateInSync}
		digests := map[string]rep{} // by "epoch:seq"
		loading, behind, positions := 0, 0, map[string]bool{}
		for _, r := range reps {
			a.Seq = max(a.Seq, r.m.Seq)
			if !r.m.Ready {
				loading++
				continue
			}
			if r.m.RedisMatch != nil && !*r.m.RedisMatch {
				a.State, a.Detail = StateDiverged, fmt.Sprintf("node %s disagrees with Redis at seq %d", r.node, r.m.Seq)
			}
			pos := r.m.Epoch + ":" + strconv.FormatUint(r.m.Seq, 10)
			positions[pos] = true
			if other, ok := digests[pos]; ok && other.m.Digest != r.m.Digest && a.State != StateDiverged {
				a.State, a.Detail = StateDiverged, fmt.Sprintf("nodes %s and %s differ at seq %d", other.node, r.node, r.m.Seq)
			}
			digests[pos] = r
			if r.m.Lag > 0 {
				behind++
			}
		}
		switch {
		case a.State == StateDiverged:
		case loading > 0:
			a.State, a.Detail = StateLoading, fmt.Sprintf("%d of %d replicas loading", loading, len(reps))
		case len(positions) > 1 && behind > 0:
			a.State, a.Detail = StateCatchingUp, fmt.Sprintf("%d of %d replicas behind Redis", behind, len(reps))
		case len(positions) > 1:
			a.Detail = fmt.Sprintf("%d replicas caught up at their last heartbeat", len(reps))
		default:
			a.Detail = fmt.Sprintf("%d replicas at seq %d with equal digests", len(reps), a.Seq)
		}
		out = append(out, a)
	}
	return out
}
