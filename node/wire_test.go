package node

// The tests read the gateway's JSON with types of their own, written from the package doc.

// wireReady is the data of a stream's "ready" event: the position it starts after.
type wireReady struct {
	Seq   uint64 `json:"seq"`
	Epoch string `json:"epoch"`
	Pos   string `json:"pos"`
}

// wireChange is an operation of a write event. Key is as eventjson.Key writes it.
type wireChange struct {
	Op         string  `json:"op"` // "set" or "del"
	Key        string  `json:"key"`
	KeyEscaped bool    `json:"key_escaped,omitempty"`
	Value      *string `json:"value,omitempty"`
	Base64     bool    `json:"base64,omitempty"`
	Version    uint64  `json:"version"`
	OldVersion uint64  `json:"old_version"`
}

// wireWrite is the data of a map's write event. Pos is the event's id: Position.String().
type wireWrite struct {
	Seq     uint64       `json:"seq"`
	Epoch   string       `json:"epoch"`
	Pos     string       `json:"pos"`
	Time    string       `json:"time"`
	Changes []wireChange `json:"changes"`
}

// wireMessage is the data of a channel's message event. Pos is the event's id.
type wireMessage struct {
	Seq    uint64 `json:"seq"`
	Epoch  string `json:"epoch"`
	Pos    string `json:"pos"`
	Time   string `json:"time"`
	Data   string `json:"data"`
	Base64 bool   `json:"base64,omitempty"`
}

// wireReset is the data of a reset event: seq, epoch and pos are the position the stream
// continues after (pos is the event's id). To is null when the range has no known end
// (channel.Reset.Open: every seq of the old epoch from From on).
type wireReset struct {
	Seq   uint64 `json:"seq"`
	Epoch string `json:"epoch"`
	Pos   string `json:"pos"`
	Reset struct {
		Reason   string  `json:"reason"`
		From     uint64  `json:"from"`
		To       *uint64 `json:"to"`
		OldEpoch string  `json:"old_epoch,omitempty"`
		NewEpoch string  `json:"new_epoch,omitempty"`
	} `json:"reset"`
}
