// Package redistest starts real redis-server processes for tests.
//
// Each Server is one redis-server process listening on a free port of
// 127.0.0.1 (never the default port 6379), with its own data directory under
// the test's temporary directory. Start registers a cleanup that kills the
// process, reaps it and removes the directory, even when the test fails.
//
// A missing redis-server binary is a test failure with instructions, never a
// skip: the integration tests of this module need a real Redis 7.
//
// Start, Kill, Stop, Restart and ClientKill report failures with t.Fatalf and
// must therefore be called from the goroutine running the test. Addr, URL and
// Do may be called from any goroutine.
package redistest
