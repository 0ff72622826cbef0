package channel_test

import (
	"context"
	"fmt"
	"log"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/redisconn"
)

// Publish on a channel and handle every message in order, with a handler.
func Example() {
	ctx := context.Background()
	rc, err := redisconn.Open(ctx, redisconn.Options{URL: "redis://127.0.0.1:6379"})
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	cl, err := channel.New(rc, channel.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()

	sub, err := cl.Subscribe(ctx, "orders", channel.FromNow(), func(ctx context.Context, ev channel.Event) error {
		if ev.Reset != nil {
			// Messages ev.Reset.From..To cannot be delivered: reload from the source of truth.
			return nil
		}
		fmt.Printf("%d: %s\n", ev.Seq, ev.Data)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()

	pos, err := cl.Publish(ctx, "orders", []byte("order 1 created"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("published at", pos)
}

// Resume after a stored position, in the caller's goroutine.
func ExampleClient_Events() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cl *channel.Client // from channel.New
	last := channel.Position{Epoch: "9f86d081884c7d65", Seq: 41}
	for ev, err := range cl.Events(ctx, "orders", channel.After(last)) {
		if err != nil {
			log.Print(err) // why the stream ended
			return
		}
		last = ev.Position // store it: it is always a valid place to resume from
	}
}
