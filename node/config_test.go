package node

import (
	"strings"
	"testing"
	"time"
)

func TestNodeConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // in the error; "" for none
	}{
		{"defaults", Config{}, ""},
		{"maps and channels", Config{Maps: []string{"a", "b"}, Channels: []string{"c"}}, ""},
		{"empty map name", Config{Maps: []string{""}}, "empty map"},
		{"map twice", Config{Maps: []string{"a", "a"}}, `"a" is named twice`},
		{"map and channel", Config{Maps: []string{"a"}, Channels: []string{"a"}}, "as a map and as a channel"},
		{"id with a space", Config{ID: "a b"}, "ID"},
		{"short TTL", Config{Heartbeat: time.Second, TTL: time.Second}, "TTL"},
		{"tiny heartbeat", Config{Heartbeat: time.Microsecond}, "Heartbeat"},
		{"negative body limit", Config{MaxBodyBytes: -1}, "MaxBodyBytes"},
		{"negative key limit", Config{MaxKeyBytes: -1}, "MaxKeyBytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg.withDefaults()
			err := cfg.validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
			if cfg.ID == "" || cfg.Version == "" || cfg.Heartbeat == 0 || cfg.TTL == 0 || cfg.Logger == nil {
				t.Errorf("defaults not applied: %+v", cfg)
			}
		})
	}
}

func TestGoneAfterConfig(t *testing.T) {
	if err := (Config{Maps: []string{"m"}, GoneAfter: 25 * time.Hour}).Validate(); err == nil {
		t.Fatal("GoneAfter of 25h accepted")
	}
	if c := (Config{}).withDefaults(); c.GoneAfter != DefaultGoneAfter {
		t.Fatalf("default GoneAfter %v", c.GoneAfter)
	}
}
