package wire

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/redis/rueidis"
)

func TestLowWaterMarkWaitsForCallsInDoubt(t *testing.T) {
	a := &Appender{Window: time.Hour}
	st := a.tokensOf("c")
	t1, low := st.issue(a)
	if low != t1 {
		t.Fatalf("first token %d, low %d", t1, low)
	}
	st.settle(a, t1, true) // its connection failed: an attempt may still reach Redis
	t2, low := st.issue(a)
	if low != t1 {
		t.Fatalf("low-water mark %d passed token %d, still in doubt", low, t1)
	}
	st.settle(a, t2, false)
	t3, low := st.issue(a)
	if low != t1 || t3 != t2+1 {
		t.Fatalf("low %d, token %d", low, t3)
	}
	// Once the window has passed, a token in doubt is forgotten.
	st.unsettled[t1] = time.Now().Add(-time.Second)
	st.settle(a, t3, false)
	if _, low = st.issue(a); low == t1 {
		t.Fatalf("an expired token still holds the low-water mark")
	}
}

func TestTransient(t *testing.T) {
	live := context.Background()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{"connection lost", live, io.EOF, true},
		{"dial timed out, caller still waiting", live, context.DeadlineExceeded, true},
		{"caller gave up", done, context.Canceled, false},
		{"client closed", live, rueidis.ErrClosing, false},
	}
	for _, tc := range cases {
		if got := Transient(tc.ctx, tc.err); got != tc.want {
			t.Errorf("%s: transient = %v, want %v", tc.name, got, tc.want)
		}
	}
}
