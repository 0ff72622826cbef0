package mapfill

import (
	"context"
	"testing"

	"github.com/redisync/redisync/internal/redistest"
)

func TestFill(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	lanes := func(key string, version uint64) (x, y uint64) { return version, 1<<48 - 1 }
	err := Fill(context.Background(), srv.Client(t), Options{Prefix: "p", Name: "m", Keys: 2500, ValueBytes: 3, Lanes: lanes})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"HLEN", "p:{m}:state"}, "2500"},
		{[]string{"HGET", "p:{m}:state", "key:0000000"}, "1:vvv"},
		{[]string{"HGET", "p:{m}:state", "key:0002499"}, "2500:vvv"},
		{[]string{"HGET", "p:{m}:meta", "epoch"}, Epoch},
		{[]string{"HGET", "p:{m}:meta", "seq"}, "2500"},
		{[]string{"HGET", "p:{m}:meta", "n"}, "2500"},
		{[]string{"HGET", "p:{m}:meta", "dx"}, "3126250"},         // 1 + 2 + … + 2500
		{[]string{"HGET", "p:{m}:meta", "dy"}, "281474976708156"}, // 2500 × (2^48 - 1) mod 2^48
	} {
		if got, err := srv.Do(tc.args...); err != nil || got != tc.want {
			t.Errorf("%q = %q, %v; want %q", tc.args, got, err, tc.want)
		}
	}
	if Key(12) != "key:0000012" || Key(12_345_678) != "key:12345678" {
		t.Errorf("Key(12) = %q, Key(12345678) = %q", Key(12), Key(12_345_678))
	}
}
