package node

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/redisync/redisync/internal/wire"
)

// The states of a node, as ReadRegistry reports them.
const (
	NodeLive = "live" // its record is fresh
	NodeLate = "late" // its record is older than LateHeartbeats heartbeat periods: the node, or its link to Redis, is stuck
	NodeGone = "gone" // its record expired without the node leaving, within ReadOptions.GoneAfter
)

// LateHeartbeats is how many of its heartbeat periods a node's record may age before the
// node is late.
const LateHeartbeats = 2

// Defaults and bounds of ReadOptions.
const (
	DefaultGoneAfter = 5 * time.Minute
	// MaxGoneAfter bounds GoneAfter: a reader removes from the registry the nodes whose record
	// expired longer ago than that, whatever its own GoneAfter.
	MaxGoneAfter = 24 * time.Hour
)

// ReadOptions are the options of ReadRegistry.
type ReadOptions struct {
	// GoneAfter is how long after its record expired a node is still listed, as gone: one
	// that died, froze or lost Redis without leaving. From 0 to MaxGoneAfter; 0 means
	// DefaultGoneAfter, a negative value lists none.
	GoneAfter time.Duration
}

// Registry is the registry as ReadRegistry found it.
type Registry struct {
	Nodes  []NodeStatus   `json:"nodes"` // the nodes whose record is there (live or late), by ID
	Maps   []MapAgreement `json:"maps"`
	Gone   []GoneNode     `json:"gone"` // by ID
	Health Health         `json:"health"`
}

// NodeStatus is a node's record with what a reader makes of it. Its JSON is the record's,
// with "maps" holding ReplicaStatus.
type NodeStatus struct {
	Record
	State string `json:"state"` // NodeLive or NodeLate
	// HeartbeatAgeSeconds is how long ago the record was written, by Redis's clock (the
	// record's TTL minus what remains of it), or by the reader's against Heartbeat.
	HeartbeatAgeSeconds float64         `json:"heartbeat_age_seconds"`
	Maps                []ReplicaStatus `json:"maps"`
}

// ReplicaStatus is a node's replica of a map, with its lag from the head read now.
type ReplicaStatus struct {
	MapRecord
	// HeadNow is the map's head in Redis as the reader read it, after the record; LagNow is
	// HeadNow - Seq (HeadNow when the epochs differ), which also counts the changes written
	// since the node's heartbeat; LagSecondsNow the age of the oldest change in it (Redis's
	// clock).
	HeadNow       uint64  `json:"head_now"`
	LagNow        uint64  `json:"lag_now"`
	LagSecondsNow float64 `json:"lag_seconds_now"`
	// Diverged is set on a ready replica whose digest differs from another replica's at the
	// same (epoch, seq), or from Redis's at its head, or that its node found different from
	// Redis (RedisMatch false).
	Diverged bool `json:"diverged"`
}

// GoneNode is a node whose record expired without it leaving (Close removes a node at once):
// it died, froze, or lost Redis.
type GoneNode struct {
	ID          string    `json:"id"`
	State       string    `json:"state"`        // NodeGone
	Expired     time.Time `json:"expired"`      // when its record expired (its clock)
	GoneSeconds float64   `json:"gone_seconds"` // how long ago that was (the reader's clock)
}

// The levels of Health.
const (
	HealthOK      = "ok"
	HealthWarn    = "warn"    // a node late, a replica loading
	HealthBad     = "bad"     // a node gone, a map diverged
	HealthUnknown = "unknown" // the registry was not read (GET /v1/nodes?local=true)
)

// Health sums up a Registry for an operator.
type Health struct {
	Level    string   `json:"level"`    // HealthOK, HealthWarn, HealthBad or HealthUnknown
	Summary  string   `json:"summary"`  // "healthy", or the problems in a few words
	Problems []string `json:"problems"` // a sentence each
}

// mapHead is a map's head in Redis and Redis's digest there.
type mapHead struct {
	epoch  string
	seq    uint64
	digest wire.Digest
	keys   int
}

// ReadRegistry reads the registry under prefix as an operator wants to see it: each node's
// record and state (live, late), the nodes gone within opt.GoneAfter, each replica's lag
// from the map's head in Redis read now (not the lag its node last reported: a frozen node
// keeps reporting none), the replicas whose digests differ at the same seq (from each other's
// or from Redis's), each map's agreement and a health summary. GET /v1/nodes and redisync
// status answer it. It takes three round trips (the index and the expiries, the records and
// their remaining TTLs, the maps' heads) and prunes, best effort, as ListNodes does.
func ReadRegistry(ctx context.Context, rc rueidis.Client, prefix string, opt ReadOptions) (Registry, error) {
	goneAfter := opt.GoneAfter
	switch {
	case goneAfter == 0:
		goneAfter = DefaultGoneAfter
	case goneAfter > MaxGoneAfter:
		return Registry{}, fmt.Errorf("node: GoneAfter %v is beyond MaxGoneAfter %v", goneAfter, MaxGoneAfter)
	}
	index, expiresK := indexKey(prefix), expiresKey(prefix)
	rs := rc.DoMulti(ctx,
		rc.B().Smembers().Key(index).Build(),
		rc.B().Zrange().Key(expiresK).Min("0").Max("-1").Withscores().Build(),
	)
	ids, err := rs[0].AsStrSlice()
	if err != nil {
		return Registry{}, fmt.Errorf("node: read the registry %s: %w", index, err)
	}
	zs, err := rs[1].AsZScores()
	if err != nil {
		return Registry{}, fmt.Errorf("node: read the registry %s: %w", expiresK, err)
	}
	now := time.Now()
	listed := map[string]bool{}
	for _, id := range ids {
		listed[id] = true
	}
	expiry := map[string]time.Time{}
	all := append([]string(nil), ids...)
	for _, z := range zs {
		expiry[z.Member] = time.UnixMilli(int64(z.Score))
		if !listed[z.Member] {
			all = append(all, z.Member)
		}
	}
	sort.Strings(all)
	reg := Registry{Nodes: []NodeStatus{}, Maps: []MapAgreement{}, Gone: []GoneNode{}}
	if len(all) > 0 {
		keys := make([]string, len(all))
		for i, id := range all {
			keys[i] = recordKey(prefix, id)
		}
		cmds := rueidis.Commands{rc.B().Mget().Key(keys...).Build()} // then the PTTL of each
		for _, k := range keys {
			cmds = append(cmds, rc.B().Pttl().Key(k).Build())
		}
		rs := rc.DoMulti(ctx, cmds...)
		vals, err := rs[0].ToArray()
		if err != nil {
			return Registry{}, fmt.Errorf("node: read the registry's records: %w", err)
		}
		pruneKeys, pruneIDs := []string{index}, []string{}
		for i, v := range vals {
			id := all[i]
			s, err := v.ToString()
			if err != nil { // nil: expired, or deregistered since the index was read
				if listed[id] {
					pruneKeys = append(pruneKeys, keys[i])
					pruneIDs = append(pruneIDs, id)
				}
				if e, ok := expiry[id]; ok && goneAfter > 0 && now.Sub(e) <= goneAfter {
					reg.Gone = append(reg.Gone, GoneNode{ID: id, State: NodeGone, Expired: e.UTC(), GoneSeconds: max(now.Sub(e), 0).Seconds()})
				}
				continue
			}
			var rec Record
			if err := json.Unmarshal([]byte(s), &rec); err != nil {
				return Registry{}, fmt.Errorf("node: the registry's record %s is not a node record: %w", keys[i], err)
			}
			ttlLeft, err := rs[1+i].AsInt64()
			if err != nil {
				ttlLeft = -2
			}
			reg.Nodes = append(reg.Nodes, nodeStatus(rec, ttlLeft, now))
		}
		// Best effort: a reader that may not write still reads the registry.
		if len(pruneIDs) > 0 {
			_ = pruneScript.Exec(ctx, rc, pruneKeys, pruneIDs).Error()
		}
		if len(zs) > 0 && now.Sub(time.UnixMilli(int64(zs[0].Score))) > MaxGoneAfter {
			_ = rc.Do(ctx, rc.B().Zremrangebyscore().Key(expiresK).Min("-inf").
				Max("("+strconv.FormatInt(now.Add(-MaxGoneAfter).UnixMilli(), 10)).Build()).Error()
		}
	}
	heads, err := readHeads(ctx, rc, prefix, reg.Nodes)
	if err != nil {
		return Registry{}, err
	}
	reg.Maps = agree(reg.Nodes, heads)
	reg.Health = health(reg)
	return reg, nil
}

// nodeStatus is rec as a reader sees it, ttlLeft milliseconds before its record expires
// (PTTL: negative when unknown).
func nodeStatus(rec Record, ttlLeft int64, now time.Time) NodeStatus {
	ns := NodeStatus{Record: rec, State: NodeLive, Maps: make([]ReplicaStatus, len(rec.Maps))}
	for i, m := range rec.Maps {
		ns.Maps[i] = ReplicaStatus{MapRecord: m}
	}
	age := now.Sub(rec.Heartbeat)
	if rec.TTLMillis > 0 && ttlLeft >= 0 {
		age = time.Duration(rec.TTLMillis-ttlLeft) * time.Millisecond // Redis's clock
	}
	ns.HeartbeatAgeSeconds = max(age, 0).Seconds()
	if period := heartbeatPeriod(rec); period > 0 && age > LateHeartbeats*period {
		ns.State = NodeLate
	}
	return ns
}

// heartbeatPeriod is how often the node of rec writes it.
func heartbeatPeriod(rec Record) time.Duration {
	if rec.HeartbeatMillis == 0 { // a node from before heartbeat_ms: redisync serve beats every TTL/5
		return time.Duration(rec.TTLMillis) * time.Millisecond / 5
	}
	return time.Duration(rec.HeartbeatMillis) * time.Millisecond
}

// readHeads reads the head of every map of nodes (HMGET of its meta hash) and the time of
// the change after each replica's seq, and sets the replicas' HeadNow, LagNow and
// LagSecondsNow. It returns the heads by map name.
func readHeads(ctx context.Context, rc rueidis.Client, prefix string, nodes []NodeStatus) (map[string]mapHead, error) {
	type at struct {
		name string
		seq  uint64
	}
	var names []string
	var ats []at
	idx := map[string]int{}   // command index of a map's HMGET
	atIdx := map[at]int{}     // command index of the XREVRANGE of the change after a seq
	var cmds rueidis.Commands // the last one is TIME
	for _, n := range nodes {
		for _, m := range n.Maps {
			k, err := wire.KeysFor(prefix, m.Name)
			if err != nil {
				continue // not a map name: no head to read
			}
			if _, ok := idx[m.Name]; !ok {
				idx[m.Name] = len(cmds)
				names = append(names, m.Name)
				cmds = append(cmds, rc.B().Hmget().Key(k.Meta).Field(wire.MapMetaFields...).Build())
			}
			a := at{m.Name, m.Seq}
			if _, ok := atIdx[a]; !ok {
				atIdx[a] = len(cmds)
				ats = append(ats, a)
				// The log entry holding seq+1: the newest one whose id (its first seq) is at
				// most that; every message of an entry has the entry's time "t".
				cmds = append(cmds, rc.B().Xrevrange().Key(k.Log).End(strconv.FormatUint(m.Seq+1, 10)+"-0").Start("-").Count(1).Build())
			}
		}
	}
	if len(cmds) == 0 {
		return nil, nil
	}
	cmds = append(cmds, rc.B().Time().Build())
	rs := rc.DoMulti(ctx, cmds...)
	for _, r := range rs {
		if err := r.Error(); err != nil {
			return nil, fmt.Errorf("node: read the maps' heads: %w", err)
		}
	}
	heads := make(map[string]mapHead, len(names))
	for _, name := range names {
		vs, err := rs[idx[name]].ToArray()
		if err != nil {
			return nil, fmt.Errorf("node: read the head of map %q: %w", name, err)
		}
		meta, err := wire.ParseMapMeta(vs)
		if err != nil {
			return nil, fmt.Errorf("node: read the head of map %q: %w", name, err)
		}
		heads[name] = mapHead{epoch: meta.Epoch, seq: meta.Seq, digest: meta.Digest, keys: meta.Keys}
	}
	var redisNow time.Time
	if t, err := rs[len(rs)-1].AsStrSlice(); err == nil && len(t) == 2 {
		sec, err1 := strconv.ParseInt(t[0], 10, 64)
		usec, err2 := strconv.ParseInt(t[1], 10, 64)
		if err1 == nil && err2 == nil {
			redisNow = time.Unix(sec, usec*1000)
		}
	}
	for i := range nodes {
		for j := range nodes[i].Maps {
			m := &nodes[i].Maps[j]
			h, ok := heads[m.Name]
			if !ok {
				continue
			}
			m.HeadNow = h.seq
			switch {
			case h.epoch != m.Epoch:
				m.LagNow = h.seq
			case h.seq > m.Seq:
				m.LagNow = h.seq - m.Seq
			}
			if m.LagNow == 0 || h.epoch != m.Epoch || redisNow.IsZero() {
				continue
			}
			entries, _ := rs[atIdx[at{m.Name, m.Seq}]].AsXRange()
			if len(entries) == 1 {
				if t, err := strconv.ParseInt(entries[0].FieldValues["t"], 10, 64); err == nil {
					m.LagSecondsNow = max(redisNow.Sub(time.UnixMilli(t)), 0).Seconds()
				}
			}
		}
	}
	return heads, nil
}

// health sums up reg: a late node or a loading replica is a warning; a gone node or a
// diverged map is bad.
func health(reg Registry) Health {
	h := Health{Level: HealthOK, Problems: []string{}}
	var summary []string
	raise := func(level string) {
		if level == HealthBad || h.Level == HealthOK {
			h.Level = level
		}
	}
	late := 0
	for _, n := range reg.Nodes {
		if n.State == NodeLate {
			late++
			raise(HealthWarn)
			h.Problems = append(h.Problems, fmt.Sprintf("node %s is late: its last heartbeat was %s ago (it beats every %v)",
				n.ID, seconds(n.HeartbeatAgeSeconds), heartbeatPeriod(n.Record)))
		}
	}
	if late > 0 {
		summary = append(summary, plural(late, "node")+" late")
	}
	for _, g := range reg.Gone {
		raise(HealthBad)
		h.Problems = append(h.Problems, fmt.Sprintf("node %s is gone: its record expired %s ago without it leaving", g.ID, seconds(g.GoneSeconds)))
	}
	if len(reg.Gone) > 0 {
		summary = append(summary, plural(len(reg.Gone), "node")+" gone")
	}
	for _, a := range reg.Maps {
		switch a.State {
		case StateDiverged:
			raise(HealthBad)
			summary = append(summary, "map "+a.Map+" diverged")
		case StateLoading:
			raise(HealthWarn)
			summary = append(summary, "map "+a.Map+" loading")
		default:
			continue
		}
		h.Problems = append(h.Problems, fmt.Sprintf("map %s: %s: %s", a.Map, a.State, a.Detail))
	}
	h.Summary = "healthy"
	if len(summary) > 0 {
		h.Summary = strings.Join(summary, ", ")
	}
	return h
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// seconds formats s seconds for a sentence: "1.2s", "3m4s".
func seconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	if d < time.Minute {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
