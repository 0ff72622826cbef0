package replmap_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/replmap"
)

type Price struct{ Cents int }

// Every node holds the map; reads are local, writes go through Redis.
func Example() {
	ctx := context.Background()
	var cl *channel.Client // from channel.New, shared by every map and channel of the process
	prices, err := replmap.Open(cl, "prices", replmap.Config[Price]{})
	if err != nil {
		log.Fatal(err)
	}
	defer prices.Close()
	if err := prices.WaitReady(ctx); err != nil {
		log.Fatal(err)
	}

	ver, err := prices.Set(ctx, "sku-1", Price{Cents: 999})
	if err != nil {
		log.Fatal(err)
	}
	p, _, err := prices.Get("sku-1") // read-your-writes: this node has applied the Set
	fmt.Println(p.Cents, err)

	_, err = prices.CompareAndSet(ctx, "sku-1", Price{Cents: 899}, ver)
	if errors.Is(err, replmap.ErrConflict) {
		fmt.Println("someone else changed sku-1 first")
	}
}

// Watch every change from a position, without holding a replica.
func ExampleWatch() {
	ctx := context.Background()
	var cl *channel.Client
	for ch, err := range replmap.Watch[Price](ctx, cl, "prices", channel.FromNow(), nil) {
		if err != nil {
			log.Print(err)
			return
		}
		switch {
		case ch.Reset != nil:
			fmt.Println("history lost:", ch.Reset.Reason)
		case ch.Deleted:
			fmt.Println(ch.Seq, "deleted", ch.Key)
		default:
			fmt.Println(ch.Seq, ch.Key, "=", ch.Value.Cents)
		}
	}
}
