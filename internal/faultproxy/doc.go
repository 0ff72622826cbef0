// Package faultproxy is a TCP proxy on the loopback interface that injects
// network faults between a client and a server (Redis, in our tests).
//
// A Proxy forwards every connection accepted on its own address to one
// target address. While it runs, a test can cut every open connection (Cut),
// partition the link (SetBlocked), hold bytes without dropping them so the
// link looks up but dead (SetStalled), and delay every forwarded chunk
// (SetLatency). Bytes are always forwarded in order, in both directions;
// stalled bytes are delivered when the stall ends, unless the connection is
// cut meanwhile.
//
// All methods are safe for concurrent use. Close stops accepting, cuts every
// connection and waits for every goroutine the proxy started; it is
// idempotent.
package faultproxy
