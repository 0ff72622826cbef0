// Package node is the redisync daemon (redisync serve): it hosts replicas of replicated maps
// and relays channels over one channel.Client (so one pub/sub connection), and serves them
// over HTTP and Server-Sent Events, with Prometheus metrics, health checks, a node registry
// in Redis and a live dashboard.
//
// # HTTP API
//
//	GET    /v1/maps/{map}/keys/{key}   the value's bytes; ETag: "<version>"; If-None-Match → 304
//	PUT    /v1/maps/{map}/keys/{key}   store the body; 200 {"map","key","version"}, ETag: "<version>"
//	DELETE /v1/maps/{map}/keys/{key}   delete; 200 {"map","key","version","deleted":true}, ETag;
//	                                   404 when the key is absent (nothing is written)
//	GET    /v1/maps/{map}              keys in byte order: ?after=KEY&limit=N&prefix=P&values=true
//	GET    /v1/maps/{map}/watch        SSE: one event per write, id EPOCH:SEQ; ?from=, Last-Event-ID
//	GET    /v1/maps                    the maps this node serves, with position, keys and digest
//	POST   /v1/channels/{channel}      publish the body; 200 {"channel","seq","epoch"}
//	GET    /v1/channels/{channel}/events  SSE: one event per message, id EPOCH:SEQ; ?from=, Last-Event-ID
//	GET    /v1/channels                the relayed channels with their heads
//	GET    /v1/nodes                   the registry: every node (live, late, or gone), each map's agreement and lag from the head
//	GET    /metrics                    Prometheus
//	GET    /healthz                    200 while the process runs (never needs the token)
//	GET    /readyz                     200 when every replica is ready and Redis answers, else 503
//	GET    /                           the dashboard
//	OPTIONS  any path                  a CORS preflight: 204 for an origin of Config.AllowedOrigins, else 403
//
// A key is the rest of the path after /keys/ and may hold slashes; its bytes are those of
// the path, percent-decoded (%FF is the byte 0xFF). The path must be in canonical form: one
// with an empty segment ("a//b", "/keys//etc"), or a "." or ".." segment, answers 400 and
// does nothing. It is never redirected to its cleaned form, which names another key (a
// client that follows redirects would write "a/b" for "a//b"): such a key is written with
// its slashes as %2F and the dots of such a segment as %2E ("a%2F%2Fb").
//
// Keys are bytes. Where JSON carries a key (a list's items and "next", the answer of a write,
// a 412's body, the changes of a map's events), a key that is not valid UTF-8 is written
// percent-encoded (every byte but A-Z a-z 0-9 - . _ ~ as %XX) and flagged: "key_escaped":true,
// or "next_escaped":true for a page's next. That form goes into a URL as it is, and names the
// same bytes: /keys/KEY, or ?after=NEXT (a next that is not flagged is query-escaped as usual).
// Paging with ?after= visits every key once and ends.
//
// Writes are conditional with If-Match: "N" (the key must be at version N; "0" means absent),
// If-Match: * (the key must exist) or If-None-Match: * (create only), each in one header
// line; a failed condition answers 412 with {"error","map","key","expected","actual"}. Errors
// are JSON {"error": "…"}: 400 bad input (a path not in canonical form, a condition in two
// header lines or a list, a stream's ?from= or Last-Event-ID included), 401 missing or wrong
// token, 403 a request the security checks refuse (below), 404 unknown map, channel or key
// (a DELETE of an absent key too), 408 a body not received within Config.BodyTimeout (the
// connection is then closed), 409 a name that holds the other kind, 412 failed condition,
// 413 body over Config.MaxBodyBytes, 414 key over Config.MaxKeyBytes, 503 while a replica
// loads or reloads (with Retry-After), while Redis is unreachable, when a write was not
// confirmed within Config.WriteTimeout (its outcome is then unknown) or while shutting down,
// 502 when Redis refused a write.
//
// A name is a channel or a map for its whole history, never both: publishing on a map's name
// or streaming it as a channel, and writing, reading or watching a channel's name as a map,
// answer 409 with the error's message ("redisync: \"x\" is a map, not a channel"); nothing
// is written. A replica does not load while its name holds a channel; /readyz says why.
//
// Reads are served from the node's replica: a write made on another node is visible here
// once it has propagated (usually within milliseconds; the registry's lag says how far each
// replica is behind). A write on this node is visible here as soon as it answers.
//
// # Server-Sent Events
//
// Every event's id is its position, "EPOCH:SEQ": the seq and the epoch of the history it
// belongs to (a Redis that lost its data starts a new epoch, numbering from 1 again), or a
// bare "SEQ" when there is no epoch (a channel without history). Each stream begins with
//
//	retry: 1000
//	: ready
//	event: ready
//	id: 8f3a…:41
//	data: {"seq":41,"epoch":"8f3a…","pos":"8f3a…:41"}
//
// whose id is the position the stream starts after, so that a client cut off before the
// first event resumes from there: for ?from=now the head, for a bare seq that seq with the
// epoch current when the stream began (a bare seq above the head, or on a channel without
// history, stays bare). It is an event with data, because clients drop an event
// without (the npm eventsource package does, and would not keep its id), and of its own type,
// so that a page's onmessage does not see it (addEventListener("ready", …) does). Then:
//
//	id: 8f3a…:42
//	data: {"seq":42,"epoch":"8f3a…","pos":"8f3a…:42","time":"…","changes":[{"op":"set","key":"a","value":"1","version":42,"old_version":0}, …]}
//
// for a map (every operation of one atomic write in one event, so that the id names the
// write and resuming after it never splits one), and
//
//	id: 8f3a…:7
//	data: {"seq":7,"epoch":"8f3a…","pos":"8f3a…:7","time":"…","data":"hello"}
//
// for a channel. "pos" is the event's id, for a client that keeps the data rather than the
// id. A value or message that is not UTF-8 is base64-encoded with "base64":true. History that
// cannot be delivered (trimmed from the log, or lost by Redis) is announced as
//
//	id: 8f3a…:50
//	event: reset
//	data: {"seq":50,"epoch":"8f3a…","pos":"8f3a…:50","reset":{"reason":"trimmed","from":10,"to":50,"old_epoch":"8f3a…","new_epoch":"8f3a…"}}
//
// whose id is the position the stream continues after. The range from…to is in old_epoch;
// "to" is null when its end is unknown (reason "epoch-changed": every seq of the old epoch
// from "from" on is lost, and the stream goes on from seq 1 of new_epoch).
//
// A stream starts after the position in the Last-Event-ID header (what EventSource sends when
// it reconnects), else after ?from=, else from now. Both take "EPOCH:SEQ" (an event's id, as
// sent) or a bare "SEQ", read as a seq of the current epoch (0: from the oldest message the
// log holds; one beyond the head yields a reset, rewound, then the history from seq 1);
// ?from= also takes "now", the default. Anything else answers 400, and a name of the other
// kind 409, before the stream begins; so does a seq above MaxSeq (2^53-1, the largest a log
// can hold: its scripts count in Lua numbers). A position of another epoch than the current one
// (Redis lost the history meanwhile) yields a reset (epoch-changed, "to":null) before any
// message, never a silent skip. ?epoch=E gives the epoch of a bare seq, the older way of
// naming it.
//
// The data of every message and write also has "entry", the id of its log entry; both
// parameters take "EPOCH:SEQ:ENTRY" too, and a stream started after it checks that the log
// still holds that entry there. If a failover lost it, the stream begins with a reset
// (rewound) from the oldest message the log holds up to the position, then that history. The
// node remembers the entries of the positions it sent (the last 1024 seqs of up to 256 names),
// so a Last-Event-ID it sent is checked the same way. One it did not send heeds where a
// subscription last found the history parted (channel.After, channel.PartedWindow). Every change after the start is sent exactly once, in order. A comment line is
// sent every Config.KeepAlive while idle. Streams end when the client leaves and when the
// node shuts down (the client then resumes elsewhere or later). A slow client makes its
// stream catch up from the log, holding at most a few events in memory; one that accepts
// nothing for Config.StreamTimeout is cut off.
//
// While Redis is unreachable a stream still answers 200 at once (after the checks it can
// make without Redis), sends "retry: 1000" and a comment ": waiting for Redis: …", keeps
// alive, and begins (the ready event, then the events) once Redis answers; the position of
// a start "now" is the head then. An EventSource gives up for good on any status but 200, so
// a 503 would end a browser's stream for ever. HEAD on a stream answers the headers a GET
// would (or its error) and ends.
//
// # Security
//
// The node binds to loopback by default (redisync serve refuses a non-loopback --listen
// without a token unless --insecure-no-token is given). Every request passes, in order:
//
//   - The Host check (DNS rebinding): Host must be localhost, 127.0.0.1 or [::1] with the
//     port the connection arrived on, the address it arrived on, or a name of
//     Config.AllowedHosts ("name" on any port, "name:port", "*" for any); else 403.
//     /healthz is exempt.
//   - CORS: a preflight (OPTIONS with Origin and Access-Control-Request-Method) answers 204
//     with Access-Control-Allow-* for an origin of Config.AllowedOrigins, else 403; the
//     answers to an allowed origin carry Access-Control-Allow-Origin and expose ETag.
//   - Cross-origin writes (http.CrossOriginProtection): a PUT, DELETE or POST from a page of
//     another origin (Sec-Fetch-Site other than same-origin or none, or else an Origin that
//     is not the request's own) answers 403, unless that origin is allowed.
//   - Without Config.Token, a POST that any web page can send without a preflight (no
//     Content-Type, text/plain, application/x-www-form-urlencoded, multipart/form-data)
//     answers 403: send application/octet-stream, application/json… PUT and DELETE always
//     need a preflight.
//   - With Config.Token every request but /healthz and the dashboard's static files needs
//     "Authorization: Bearer <token>" (compared in constant time); the SSE endpoints also
//     accept ?token=, because a browser's EventSource cannot send headers — such URLs end up
//     in logs and histories, so prefer the header elsewhere. The dashboard takes ?token= once,
//     keeps it in the tab's sessionStorage and sends it as a header.
//   - Limits: Serve reads headers within Config.HeaderTimeout (at most 64 KiB of them); a
//     body must arrive within Config.BodyTimeout (408 and the connection closed; event
//     streams take no body and are not bounded so) and hold at most Config.MaxBodyBytes
//     (413); a key at most Config.MaxKeyBytes (414).
//
// # Registry
//
// Every Config.Heartbeat the node writes its Record (id, address, version, start time, per
// map its applied seq, digest, keys and lag, per channel its head) to Redis with a TTL of
// Config.TTL and lists itself in an index set; ListNodes reads the live records, Agreement
// compares the replicas. A node that stops heartbeating is late, then, once its record has
// expired after the TTL, gone: listed as such for Config.GoneAfter. Close removes it at once.
// The layout is in PROTOCOL.md, "Node registry".
//
// # Concurrency and life
//
// A Node is safe for concurrent use. New starts one heartbeat goroutine; each SSE stream
// runs one producer goroutine beside its handler. Close ends every stream, stops the
// heartbeat, deregisters and closes the replicas, and returns once all of them have ended.
package node
