package bench

import (
	"slices"
	"testing"
)

func TestLookup(t *testing.T) {
	for _, tc := range []struct {
		name  string
		names []string
		want  []string
		err   bool
	}{
		{name: "none means all", names: nil, want: ScenarioNames()},
		{name: "all", names: []string{"all"}, want: ScenarioNames()},
		{name: "a list in its order", names: []string{" catchup", "latency "}, want: []string{"catchup", "latency"}},
		{name: "empty items are skipped", names: []string{"", "throughput-single", ""}, want: []string{"throughput-single"}},
		{name: "unknown", names: []string{"latency", "nope"}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Lookup(tc.names...)
			if tc.err {
				if err == nil {
					t.Fatalf("Lookup(%q) = %v, want an error", tc.names, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range got {
				names = append(names, s.Name)
			}
			if !slices.Equal(names, tc.want) {
				t.Errorf("Lookup(%q) = %q, want %q", tc.names, names, tc.want)
			}
		})
	}
}

func TestHeader(t *testing.T) {
	b := newPayload(64)
	stamp(b, kindMeasured, 1<<40+7, -5)
	for _, tc := range []struct {
		name string
		get  func() (byte, uint64, int64, bool)
	}{
		{"bytes", func() (byte, uint64, int64, bool) { return header(b) }},
		{"string", func() (byte, uint64, int64, bool) { return header(string(b)) }},
	} {
		kind, index, sent, ok := tc.get()
		if !ok || kind != kindMeasured || index != 1<<40+7 || sent != -5 {
			t.Errorf("%s: header = %c %d %d %v", tc.name, kind, index, sent, ok)
		}
	}
	for _, junk := range []string{"", "m", "hello, world, this is long enough"} {
		if _, _, _, ok := header(junk); ok {
			t.Errorf("header(%q) is ok", junk)
		}
	}
}

func TestLatencyOf(t *testing.T) {
	if l := latencyOf(nil); l != nil {
		t.Errorf("latencyOf(nil) = %+v", l)
	}
	var samples []int64
	for i := 1000; i >= 1; i-- {
		samples = append(samples, int64(i)*1000) // 1..1000 µs, reversed
	}
	l := latencyOf(samples)
	want := Latency{Samples: 1000, P50: 500, P90: 900, P99: 990, P999: 999, Max: 1000}
	if *l != want {
		t.Errorf("latencyOf = %+v, want %+v", *l, want)
	}
}

func TestThousands(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.4: "1,234,567", -12345: "-12,345"} {
		if got := thousands(v); got != want {
			t.Errorf("thousands(%v) = %q, want %q", v, got, want)
		}
	}
}
