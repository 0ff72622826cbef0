package redisconn_test

import (
	"context"
	"fmt"
	"log"

	"github.com/redisync/redisync/redisconn"
)

// A TLS connection with a private CA and a client certificate, named in the URL. The same
// settings can come from flags through Options.CAFile, CertFile, KeyFile and ServerName.
func ExampleOpen_tls() {
	ctx := context.Background()
	c, err := redisconn.Open(ctx, redisconn.Options{
		URL: "rediss://:secret@redis.internal:6380" +
			"?tls_ca=/etc/redis/ca.crt&tls_cert=/etc/redis/client.crt&tls_key=/etc/redis/client.key",
	})
	if err != nil {
		log.Fatal(err) // e.g. redis redis.internal:6380: CA file: open /etc/redis/ca.crt: no such file or directory
	}
	defer c.Close()
}

// A Sentinel deployment whose sentinels want a password of their own.
func ExampleOpen_sentinel() {
	ctx := context.Background()
	c, err := redisconn.Open(ctx, redisconn.Options{
		URL:              "redis://:data-password@10.0.0.1:26379?addr=10.0.0.2:26379&addr=10.0.0.3:26379&master_set=mymaster",
		SentinelPassword: "sentinel-password", // or &sentinel_password=… in the URL
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
}

// IsCluster tells whether to use sharded pub/sub.
func ExampleIsCluster() {
	ctx := context.Background()
	c, err := redisconn.Open(ctx, redisconn.Options{URL: "redis://10.0.0.1:7000?addr=10.0.0.2:7000&addr=10.0.0.3:7000"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println("sharded pub/sub:", redisconn.IsCluster(c))
}
