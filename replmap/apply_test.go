package replmap

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/redisync/redisync/channel"
)

// bareReplica is a Map with no Redis behind it, for testing how changes are applied.
func bareReplica() *Map[string] {
	return &Map[string]{
		cfg:     Config[string]{Codec: String{}, Logger: quiet}.withDefaults(),
		entries: map[string]entry[string]{}, bad: map[string]error{},
		changed: make(chan struct{}), wants: map[uint64][]capture{}, ready: true,
	}
}

func record(ops ...string) []byte {
	// ops: kind, old, key, value, ...
	head, body := "m1 "+strconv.Itoa(len(ops)/4), ""
	for i := 0; i < len(ops); i += 4 {
		head += " " + ops[i] + " " + ops[i+1] + " " + strconv.Itoa(len(ops[i+2])) + " " + strconv.Itoa(len(ops[i+3]))
		body += ops[i+2] + ops[i+3]
	}
	return []byte(head + "\n" + body)
}

func TestApplyKeepsTheNewestVersion(t *testing.T) {
	m := bareReplica()
	// The snapshot already holds k at version 50 and gone deleted at 45 (absent).
	m.entries["k"] = entry[string]{val: "fifty", ver: 50}
	m.digest.Add("k", 50)
	m.applied = 30
	steps := []struct {
		seq  uint64
		rec  []byte
		want map[string]string // key -> value@version
	}{
		{40, record("s", "10", "k", "forty"), map[string]string{"k": "fifty@50"}}, // older than the snapshot: ignored
		{44, record("s", "0", "gone", "x"), map[string]string{"gone": "x@44"}},    // not in the snapshot: applied
		{45, record("d", "44", "gone", ""), map[string]string{"gone": ""}},        // its delete follows
		{50, record("s", "40", "k", "fifty"), map[string]string{"k": "fifty@50"}}, // the snapshot's own change
		{51, record("d", "50", "k", ""), map[string]string{"k": ""}},              // newer: applied
		{52, record("s", "0", "k", "new", "s", "0", "j", "jj"), map[string]string{"k": "new@52", "j": "jj@52"}},
	}
	for _, st := range steps {
		if err := m.apply(context.Background(), channel.Event{Position: channel.Position{Epoch: "e", Seq: st.seq}, Data: st.rec}); err != nil {
			t.Fatal(err)
		}
		for k, want := range st.want {
			got := ""
			if e, ok := m.entries[k]; ok {
				got = fmt.Sprintf("%s@%d", e.val, e.ver)
			}
			if got != want {
				t.Fatalf("after seq %d: %s = %q, want %q", st.seq, k, got, want)
			}
		}
	}
	var want Digest
	want.Add("k", 52)
	want.Add("j", 52)
	if m.digest != want || m.applied != 52 {
		t.Fatalf("digest %v applied %d, want %v 52", m.digest, m.applied, want)
	}
}
