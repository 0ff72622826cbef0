package node

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// The registry (PROTOCOL.md, "Node registry"): every node keeps its Record as JSON in the
// string P:{nodes}:node:ID, written with a TTL at every heartbeat, its ID in the set
// P:{nodes}:index, and the time its record expires in the sorted set P:{nodes}:expires (the
// tombstone that lets a reader show a node that died as gone). A reader takes the set's
// members, reads their records with one MGET, and prunes from the set the members whose
// record has expired. The hash tag puts all of it in one Redis Cluster slot.

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
	// HeartbeatMillis is the node's heartbeat period: a reader calls the node late once its
	// record is older than LateHeartbeats periods. Absent (0) from nodes before it existed.
	HeartbeatMillis int64 `json:"heartbeat_ms,omitempty"`
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

// expiresKey is the sorted set of the registered node IDs under prefix, scored with the time
// (Unix milliseconds, the writer's clock) at which each one's record expires. It outlives the
// records: a node whose record expired stays in it until a reader forgets it (MaxGoneAfter).
func expiresKey(prefix string) string { return prefix + ":{nodes}:expires" }

func (n *Node) prefix() string { return n.cl.Config().Prefix }

// register writes the node's record with its TTL, makes sure the index lists it and notes
// when the record expires.
func (n *Node) register(ctx context.Context, rec Record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	rc := n.cl.Redis()
	expires := time.Now().Add(n.cfg.TTL).UnixMilli()
	for _, r := range rc.DoMulti(ctx,
		rc.B().Set().Key(recordKey(n.prefix(), n.cfg.ID)).Value(string(b)).PxMilliseconds(n.cfg.TTL.Milliseconds()).Build(),
		rc.B().Sadd().Key(indexKey(n.prefix())).Member(n.cfg.ID).Build(),
		rc.B().Zadd().Key(expiresKey(n.prefix())).ScoreMember().ScoreMember(float64(expires), n.cfg.ID).Build(),
	) {
		if err := r.Error(); err != nil {
			return err
		}
	}
	return nil
}

// deregister removes the node's record, its index entry and its expiry: a node that leaves
// is not shown as gone.
func (n *Node) deregister(ctx context.Context) error {
	rc := n.cl.Redis()
	for _, r := range rc.DoMulti(ctx,
		rc.B().Del().Key(recordKey(n.prefix(), n.cfg.ID)).Build(),
		rc.B().Srem().Key(indexKey(n.prefix())).Member(n.cfg.ID).Build(),
		rc.B().Zrem().Key(expiresKey(n.prefix())).Member(n.cfg.ID).Build(),
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
	// StateUnknown is the state of a map in GET /v1/nodes?local=true, which does not read the
	// registry: this node's replica is not loading and found no difference with Redis, and
	// the other replicas are not known.
	StateUnknown = "unknown"
)

// MapAgreement is the state of one map across the nodes that host it.
type MapAgreement struct {
	Map    string `json:"map"`
	State  string `json:"state"`
	Nodes  int    `json:"nodes"`
	Seq    uint64 `json:"seq"` // the highest seq applied by a node
	Detail string `json:"detail"`
	// Epoch, HeadNow and RedisDigest are the map's head in Redis and Redis's digest there,
	// as ReadRegistry read them after the records (empty and 0 from Agreement).
	Epoch       string `json:"epoch,omitempty"`
	HeadNow     uint64 `json:"head_now"`
	RedisDigest string `json:"redis_digest,omitempty"`
}

// Agreement compares the replicas of each map across nodes: digests must be equal at equal
// (epoch, seq). It returns one entry per map, sorted by name. It has only the records:
// ReadRegistry also compares the replicas with the map's head in Redis read now.
func Agreement(nodes []Record) []MapAgreement {
	ns := make([]NodeStatus, len(nodes))
	for i, rec := range nodes {
		ns[i] = NodeStatus{Record: rec, State: NodeLive, Maps: make([]ReplicaStatus, len(rec.Maps))}
		for j, m := range rec.Maps {
			ns[i].Maps[j] = ReplicaStatus{MapRecord: m, HeadNow: m.Head, LagNow: m.Lag, LagSecondsNow: m.LagSeconds}
		}
	}
	return agree(ns, nil)
}

// agree compares the replicas of each map across nodes, and with the map's head in Redis
// where heads has it, and sets Diverged on the replicas found different. It returns one
// entry per map, sorted by name.
func agree(nodes []NodeStatus, heads map[string]mapHead) []MapAgreement {
	type rep struct {
		node string
		late bool
		m    *ReplicaStatus
	}
	byMap := map[string][]rep{}
	for i := range nodes {
		for j := range nodes[i].Maps {
			m := &nodes[i].Maps[j]
			byMap[m.Name] = append(byMap[m.Name], rep{nodes[i].ID, nodes[i].State == NodeLate, m})
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
		head, haveHead := heads[name]
		if haveHead {
			a.Epoch, a.HeadNow, a.RedisDigest = head.epoch, head.seq, head.digest.String()
		}
		diverged := func(detail string) {
			if a.State != StateDiverged {
				a.State, a.Detail = StateDiverged, detail
			}
		}
		byPos := map[string][]rep{} // the ready replicas by "epoch:seq", in node order
		var posOrder []string
		loading, behind := 0, 0
		var late []string
		for _, r := range reps {
			a.Seq = max(a.Seq, r.m.Seq)
			if r.late {
				late = append(late, r.node)
			}
			if !r.m.Ready {
				loading++
				continue
			}
			if r.m.RedisMatch != nil && !*r.m.RedisMatch {
				r.m.Diverged = true
				diverged(fmt.Sprintf("node %s disagrees with Redis at seq %d", r.node, r.m.Seq))
			}
			if haveHead && head.epoch == r.m.Epoch && head.seq == r.m.Seq && (head.digest.String() != r.m.Digest || head.keys != r.m.Keys) {
				r.m.Diverged = true
				diverged(fmt.Sprintf("node %s's digest %s differs from Redis's %s at seq %d", r.node, r.m.Digest, head.digest, r.m.Seq))
			}
			pos := r.m.Epoch + ":" + strconv.FormatUint(r.m.Seq, 10)
			if _, ok := byPos[pos]; !ok {
				posOrder = append(posOrder, pos)
			}
			byPos[pos] = append(byPos[pos], r)
			// A live node's replica is behind if it was at its heartbeat; a late node's if the
			// head moved past it since.
			if r.m.Lag > 0 || r.late && r.m.LagNow > 0 {
				behind++
			}
		}
		for _, pos := range posOrder {
			group := byPos[pos]
			for _, r := range group[1:] {
				if r.m.Digest != group[0].m.Digest {
					diverged(fmt.Sprintf("nodes %s and %s differ at seq %d", group[0].node, r.node, r.m.Seq))
					for _, g := range group {
						g.m.Diverged = true
					}
					break
				}
			}
		}
		switch {
		case a.State == StateDiverged:
		case loading > 0:
			a.State, a.Detail = StateLoading, fmt.Sprintf("%d of %d replicas loading", loading, len(reps))
		case behind > 0 && (len(byPos) > 1 || len(late) > 0):
			a.State, a.Detail = StateCatchingUp, fmt.Sprintf("%d of %d replicas behind Redis", behind, len(reps))
		case len(byPos) > 1:
			a.Detail = fmt.Sprintf("%d replicas caught up at their last heartbeat", len(reps))
		default:
			a.Detail = fmt.Sprintf("%d replicas at seq %d with equal digests", len(reps), a.Seq)
		}
		if len(late) > 0 && a.State != StateDiverged {
			a.Detail += fmt.Sprintf("; late: node %s", strings.Join(late, ", "))
		}
		out = append(out, a)
	}
	return out
}
