package eventjson

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/replmap"
)

func TestShapes(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	p := channel.Position{Epoch: "e", Seq: 7}
	for _, tc := range []struct {
		name string
		ev   Event
		want string
	}{
		{"message", Message(channel.Event{Position: p, Time: at, Data: []byte("hi")}),
			`{"seq":7,"epoch":"e","pos":"e:7","time":"2026-01-02T03:04:05.006Z","data":"hi"}`},
		{"binary message", Message(channel.Event{Position: p, Time: at, Data: []byte{0xff}}),
			`{"seq":7,"epoch":"e","pos":"e:7","time":"2026-01-02T03:04:05.006Z","data":"/w==","base64":true}`},
		{"bounded reset", ResetAt(p, &channel.Reset{Reason: channel.ResetTrimmed, From: 1, To: 7, OldEpoch: "e", NewEpoch: "e"}),
			`{"seq":7,"epoch":"e","pos":"e:7","reset":{"reason":"trimmed","from":1,"to":7,"old_epoch":"e","new_epoch":"e"}}`},
		{"open reset", ResetAt(channel.Position{}, &channel.Reset{Reason: channel.ResetEpochChanged, From: 4, Open: true, OldEpoch: "e"}),
			`{"seq":0,"epoch":"","pos":"0","reset":{"reason":"epoch-changed","from":4,"to":null,"old_epoch":"e"}}`},
		{"write", Write(replmap.Write[[]byte]{Position: p, Time: at, Changes: []replmap.Change[[]byte]{
			{Position: p, Key: "a", Raw: []byte("1"), Version: 7},
			{Position: p, Key: "b\xff", Deleted: true, Version: 7, OldVersion: 3}}}),
			`{"seq":7,"epoch":"e","pos":"e:7","time":"2026-01-02T03:04:05.006Z","changes":[{"op":"set","key":"a","value":"1","version":7,"old_version":0},{"op":"del","key":"b%FF","key_escaped":true,"version":7,"old_version":3}]}`},
		{"change line with a binary value", ChangeLine(replmap.Change[[]byte]{Position: p, Key: "k", Raw: []byte{0xff}, Version: 7, OldVersion: 2}),
			`{"seq":7,"epoch":"e","pos":"e:7","op":"set","key":"k","value":"/w==","version":7,"old_version":2,"base64":true}`},
		{"start", Start(p), `{"seq":7,"epoch":"e","pos":"e:7"}`},
	} {
		b, err := json.Marshal(tc.ev)
		if err != nil || string(b) != tc.want {
			t.Errorf("%s:\n got %s, %v\nwant %s", tc.name, b, err, tc.want)
		}
	}
}
