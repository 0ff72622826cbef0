package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/redistest"
)

// rawLines parses lines of sub --json or watch --json keeping every field's JSON text, to check
// the fields' types (a null is not a 0).
func rawLines(t *testing.T, out string) []map[string]json.RawMessage {
	t.Helper()
	var objs []map[string]json.RawMessage
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var o map[string]json.RawMessage
		if err := json.Unmarshal([]byte(l), &o); err != nil {
			t.Fatalf("not a JSON object: %q: %v", l, err)
		}
		objs = append(objs, o)
	}
	return objs
}

// str returns the JSON string o[f], failing the test when it is something else.
func str(t *testing.T, o map[string]json.RawMessage, f string) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(o[f], &s); err != nil {
		t.Errorf("%q is %s in %v, want a string", f, o[f], o)
	}
	return s
}

// pubLines publishes lines on name with one script call per line, so that each is an entry
// of its own in the log, and returns the last seq printed.
func pubLines(t *testing.T, common []string, name string, lines ...string) uint64 {
	t.Helper()
	out, errOut, code := run(t, strings.NewReader(strings.Join(lines, "\n")+"\n"), append([]string{"pub", name, "--batch", "1"}, common...)...)
	seq, err := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
	if code != 0 || err != nil {
		t.Fatalf("pub: exit code %d, printed %q\nstderr:\n%s", code, out, errOut)
	}
	return seq
}

// Positions printed in "pos" are accepted back by --from, as EPOCH:SEQ or as a bare SEQ, and
// the start is announced on standard error before anything else, with its epoch: a bare SEQ is
// a seq of the epoch current when sub starts.
func TestSubFromPosition(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	common := []string{"--redis", srv.URL(), "--namespace", uniquePrefix(t)}
	const name = "positions"
	pubLines(t, common, name, "m1", "m2", "m3", "m4", "m5")

	p := startProc(t, nil, append([]string{"sub", name, "--from", "0", "--json", "--count", "5"}, common...)...)
	p.mustSucceed()
	evs := parseEvents(t, p.stdout.lines())
	raw := rawLines(t, p.stdout.String())
	epoch := evs[0].Epoch
	if got, want := p.stderr.String(), "subscribed after "+epoch+":0\n"; got != want {
		t.Errorf("sub --from 0: stderr %q, want %q", got, want)
	}
	for i, o := range raw {
		if want := fmt.Sprintf("%s:%d", epoch, i+1); str(t, o, "pos") != want || evs[i].Seq != uint64(i+1) {
			t.Errorf("line %d: seq %d, pos %s, want seq %d and pos %q", i+1, evs[i].Seq, o["pos"], i+1, want)
		}
	}
	pos2 := str(t, raw[1], "pos")

	// The pos of message 2, verbatim: exactly messages 3 to 5, announced as starting after it.
	p = startProc(t, nil, append([]string{"sub", name, "--from", pos2, "--json", "--count", "3"}, common...)...)
	p.mustSucceed()
	if got, want := p.stderr.String(), "subscribed after "+pos2+"\n"; got != want {
		t.Errorf("sub --from %s: stderr %q, want %q", pos2, got, want)
	}
	for i, ev := range parseEvents(t, p.stdout.lines()) {
		if want := uint64(i + 3); ev.Seq != want || ev.Epoch != epoch || ev.Reset != nil || *ev.Data != fmt.Sprintf("m%d", want) {
			t.Errorf("sub --from %s, line %d: %+v, want message %d of epoch %s", pos2, i+1, ev, want, epoch)
		}
	}

	// A bare seq: of the current epoch.
	out, errOut, code := run(t, nil, append([]string{"sub", name, "--from", "2", "--count", "3"}, common...)...)
	if want := "3\tm3\n4\tm4\n5\tm5\n"; code != 0 || out != want || errOut != "subscribed after "+epoch+":2\n" {
		t.Errorf("sub --from 2: exit code %d, stdout %q, stderr %q; want 0, %q, %q", code, out, errOut, want, "subscribed after "+epoch+":2\n")
	}

	// A position of another epoch: the rest of that epoch is lost, with no known end ("to" is
	// null), and the current epoch follows from its start.
	const gone = "0123456789abcdef"
	out, errOut, code = run(t, nil, append([]string{"sub", name, "--from", gone + ":2", "--json", "--count", "5"}, common...)...)
	if code != 0 {
		t.Fatalf("sub --from %s:2: exit code %d\nstderr:\n%s", gone, code, errOut)
	}
	raw = rawLines(t, out)
	if len(raw) != 6 {
		t.Fatalf("sub --from %s:2 printed %d lines, want a reset and 5 messages:\n%s", gone, len(raw), out)
	}
	var reset map[string]json.RawMessage
	if err := json.Unmarshal(raw[0]["reset"], &reset); err != nil {
		t.Fatalf("line 1 = %v, want a reset", raw[0])
	}
	if str(t, reset, "reason") != "epoch-changed" || string(reset["from"]) != "3" || string(reset["to"]) != "null" ||
		str(t, reset, "old_epoch") != gone || str(t, reset, "new_epoch") != epoch {
		t.Errorf("reset = %s, want epoch-changed from 3, \"to\":null, old epoch %s, new epoch %s", raw[0]["reset"], gone, epoch)
	}
	if p := str(t, raw[0], "pos"); p != epoch+":0" {
		t.Errorf("reset pos %q, want %q: it continues before message 1 of the new epoch", p, epoch+":0")
	}
	if p := str(t, raw[1], "pos"); p != epoch+":1" {
		t.Errorf("line 2 pos %q, want %q", p, epoch+":1")
	}
}

// A trimmed reset has a closed range: "to" is a number, and the plain line says what was lost
// and where the subscription continues.
func TestSubTrimmedReset(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	prefix := uniquePrefix(t)
	common := []string{"--redis", srv.URL(), "--namespace", prefix}
	const name = "trimmed"
	pubLines(t, common, name, "m1", "m2", "m3", "m4", "m5")
	// The log has one entry per message: keep the last two, as a retention would.
	if _, err := srv.Do("XTRIM", prefix+":{"+name+"}:log", "MAXLEN", "2"); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := run(t, nil, append([]string{"sub", name, "--from", "0", "--json", "--count", "2"}, common...)...)
	if code != 0 {
		t.Fatalf("sub --json: exit code %d\nstderr:\n%s", code, errOut)
	}
	raw := rawLines(t, out)
	evs := parseEvents(t, strings.Split(strings.TrimSuffix(out, "\n"), "\n"))
	if len(raw) != 3 || evs[0].Reset == nil {
		t.Fatalf("sub --json printed\n%s\nwant a reset and messages 4 and 5", out)
	}
	epoch := evs[1].Epoch
	r := evs[0].Reset
	if r.Reason != "trimmed" || r.From != 1 || string(rawReset(t, raw[0])["to"]) != "3" || r.OldEpoch != epoch {
		t.Errorf("reset = %s, want trimmed from 1 to 3 of epoch %s", raw[0]["reset"], epoch)
	}
	if p := str(t, raw[0], "pos"); p != epoch+":3" {
		t.Errorf("reset pos %q, want %q", p, epoch+":3")
	}
	if evs[1].Seq != 4 || evs[2].Seq != 5 {
		t.Errorf("messages %d and %d after the reset, want 4 and 5", evs[1].Seq, evs[2].Seq)
	}

	out, errOut, code = run(t, nil, append([]string{"sub", name, "--from", "0", "--count", "2"}, common...)...)
	want := "subscribed after " + epoch + ":0\nreset (trimmed): messages 1 to 3 of epoch " + epoch + "; continuing after " + epoch + ":3\n"
	if code != 0 || out != "4\tm4\n5\tm5\n" || errOut != want {
		t.Errorf("plain sub: exit code %d, stdout %q, stderr %q; want 0, %q, %q", code, out, errOut, "4\tm4\n5\tm5\n", want)
	}
}

func rawReset(t *testing.T, o map[string]json.RawMessage) map[string]json.RawMessage {
	t.Helper()
	var r map[string]json.RawMessage
	if err := json.Unmarshal(o["reset"], &r); err != nil {
		t.Fatalf("%v has no reset object", o)
	}
	return r
}

// "subscribed after POS" is printed once the start is fixed: a message published the moment
// the line appears (by a client connected beforehand) is delivered, and it is the one right
// after POS.
func TestSubFromNowAnnouncedStart(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	prefix := uniquePrefix(t)
	common := []string{"--redis", srv.URL(), "--namespace", prefix}
	const name = "announced"
	cl, err := channel.New(srv.Client(t), channel.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	head := pubLines(t, common, name, "before-1", "before-2", "before-3")
	posRe := regexp.MustCompile(`^([0-9a-f]+):(\d+)$`)
	for i := range 10 {
		p := startProc(t, nil, append([]string{"sub", name, "--json", "--count", "1"}, common...)...)
		pos := p.subscribed()
		published, err := cl.Publish(ctx, name, fmt.Appendf(nil, "now-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		m := posRe.FindStringSubmatch(pos)
		if m == nil || m[2] != strconv.FormatUint(head, 10) || published.Seq != head+1 {
			t.Fatalf("round %d: subscribed after %q, then published %v; want EPOCH:%d, then seq %d", i, pos, published, head, head+1)
		}
		head = published.Seq
		if code := p.waitWithin(10 * time.Second); code != 0 {
			t.Fatalf("round %d: sub exit code %d\nstderr:\n%s", i, code, p.stderr.String())
		}
		evs := parseEvents(t, p.stdout.lines())
		if len(evs) != 1 || evs[0].Seq != head || evs[0].Epoch != m[1] || *evs[0].Data != fmt.Sprintf("now-%d", i) {
			t.Fatalf("round %d: sub printed %q, want message %d of epoch %s", i, p.stdout.String(), head, m[1])
		}
	}
}

// Plain output reads back exactly: a data field is printed as it is, or quoted when it holds
// a control character (a tab too), is not UTF-8, or begins with a double quote, so that one
// that begins with a quote is always to be unquoted. Two messages that differ never print the
// same.
func TestPlainOutputReadsBack(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	common := []string{"--redis", srv.URL(), "--namespace", uniquePrefix(t)}
	msgs := []string{"plain", "a\nb", `"a\nb"`, "tab\there", "\xffbytes", `"quoted"`, "dél\u0085", `x"y`}
	for _, m := range msgs {
		if _, errOut, code := run(t, nil, append([]string{"pub", "c", m}, common...)...); code != 0 {
			t.Fatalf("pub %q: exit code %d: %s", m, code, errOut)
		}
	}
	out, errOut, code := run(t, nil, append([]string{"sub", "c", "--from", "0", "--count", strconv.Itoa(len(msgs))}, common...)...)
	if code != 0 {
		t.Fatalf("sub: exit code %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(msgs) {
		t.Fatalf("sub printed %d lines, want %d:\n%s", len(lines), len(msgs), out)
	}
	for i, l := range lines {
		_, field, _ := strings.Cut(l, "\t")
		got := field
		if strings.HasPrefix(field, `"`) {
			var err error
			if got, err = strconv.Unquote(field); err != nil {
				t.Errorf("line %q: a field that begins with a quote does not unquote: %v", l, err)
			}
		}
		if got != msgs[i] {
			t.Errorf("line %q reads back as %q, want %q", l, got, msgs[i])
		}
	}
}
