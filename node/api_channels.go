package node

import (
	"context"
	"net/http"
	"sort"
)

// channelFor returns the relayed channel named in the path, or answers 404.
func (n *Node) channelFor(w http.ResponseWriter, r *http.Request) (*relayed, bool) {
	name := r.PathValue("channel")
	c, ok := n.chans[name]
	if !ok {
		writeErrorf(w, http.StatusNotFound, "channel %q is not relayed by this node (it relays %s)", name, quoteList(n.channelNames(), "no channels"))
		return nil, false
	}
	return c, true
}

func (n *Node) channelNames() []string {
	names := make([]string, 0, len(n.chans))
	for name := range n.chans {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// published is the answer of POST /v1/channels/{channel}.
type published struct {
	Channel string `json:"channel"`
	Seq     uint64 `json:"seq"`
	Epoch   string `json:"epoch"`
}

// publish appends the request body to the channel as one message and answers its position
// once Redis has accepted it.
func (n *Node) publish(w http.ResponseWriter, r *http.Request) {
	c, ok := n.channelFor(w, r)
	if !ok {
		return
	}
	data, ok := n.readBody(w, r, min(n.cfg.MaxBodyBytes, n.cl.Config().MaxMessageBytes))
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), n.cfg.WriteTimeout)
	defer cancel()
	pos, err := n.cl.Publish(ctx, c.name, data)
	if err != nil {
		n.writeFailure(w, r, err, "publish to channel "+c.name)
		return
	}
	writeJSON(w, http.StatusOK, published{Channel: c.name, Seq: pos.Seq, Epoch: pos.Epoch})
}

// channelInfo is an item of GET /v1/channels.
type channelInfo struct {
	Name  string `json:"name"`
	Epoch string `json:"epoch"`
	Seq   uint64 `json:"seq"` // the head: the seq of the newest message
}

// listChannels answers the relayed channels with their heads, read from Redis.
func (n *Node) listChannels(w http.ResponseWriter, r *http.Request) {
	out := struct {
		Channels []channelInfo `json:"channels"`
	}{Channels: []channelInfo{}}
	ctx, cancel := context.WithTimeout(r.Context(), n.cfg.WriteTimeout)
	defer cancel()
	for _, name := range n.channelNames() {
		head, err := n.cl.Head(ctx, name)
		if err != nil {
			n.writeFailure(w, r, err, "read channel "+name)
			return
		}
		out.Channels = append(out.Channels, channelInfo{Name: name, Epoch: head.Epoch, Seq: head.Seq})
	}
	writeJSON(w, http.StatusOK, out)
}
