package redistest

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// maxDepth bounds the nesting of arrays read by readReply.
const maxDepth = 16

// do sends one command in RESP2 on a new connection and returns its reply
// formatted as documented on Do; timeout bounds the whole exchange.
func (s *Server) do(timeout time.Duration, args ...string) (string, error) {
	v, err := s.doValue(timeout, args...)
	if err != nil {
		return "", err
	}
	return format(v), nil
}

// doValue sends one command in RESP2 on a new connection (TLS when the
// server speaks it), after AUTH when the server has a password, and returns the reply as readValue does;
// timeout bounds the whole exchange.
func (s *Server) doValue(timeout time.Duration, args ...string) (any, error) {
	if len(args) == 0 {
		return nil, errors.New("redistest: Do needs a command")
	}
	conn, err := net.DialTimeout("tcp", s.addr, timeout)
	if err != nil {
		return nil, fmt.Errorf("redistest: %w", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, fmt.Errorf("redistest: %w", err)
	}
	if s.tls != nil {
		conn = tls.Client(conn, s.tls)
		defer conn.Close()
	}
	var req []byte
	if s.opts.Password != "" {
		auth := []string{"AUTH", s.opts.Password}
		if s.user != "" {
			auth = []string{"AUTH", s.user, s.opts.Password}
		}
		req = encodeCommand(auth)
	}
	req = append(req, encodeCommand(args)...)
	if _, err := conn.Write(req); err != nil {
		return nil, fmt.Errorf("redistest: %s: %w", args[0], err)
	}
	r := bufio.NewReader(conn)
	if s.opts.Password != "" {
		if _, err := readValue(r, 0); err != nil {
			return nil, fmt.Errorf("redistest: AUTH: %w", err)
		}
	}
	reply, err := readValue(r, 0)
	if err != nil {
		return nil, fmt.Errorf("redistest: %s: %w", args[0], err)
	}
	return reply, nil
}

// encodeCommand encodes args as a RESP array of bulk strings.
func encodeCommand(args []string) []byte {
	b := make([]byte, 0, 64)
	b = fmt.Appendf(b, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b
}

// replyError is an error reply of Redis, e.g. "ERR unknown command".
type replyError string

func (e replyError) Error() string { return string(e) }

// readReply reads one RESP2 reply and formats it as documented on Do.
func readReply(r *bufio.Reader, depth int) (string, error) {
	v, err := readValue(r, depth)
	if err != nil {
		return "", err
	}
	return format(v), nil
}

// format renders a reply read by readValue as documented on Do.
func format(v any) string {
	switch v := v.(type) {
	case []any:
		elems := make([]string, len(v))
		for i, e := range v {
			elems[i] = format(e)
		}
		return "[" + strings.Join(elems, " ") + "]"
	case nil:
		return "(nil)"
	case replyError:
		return "(error) " + string(v)
	default:
		return v.(string)
	}
}

// readValue reads one RESP2 reply: a string (simple, bulk or integer), a
// []any of such values, nil for a nil element, or replyError for an error
// element. A top-level nil returns ErrNil and a top-level error reply
// returns its replyError as the error.
func readValue(r *bufio.Reader, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errors.New("reply nested too deep")
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, fmt.Errorf("malformed reply %q", line)
	}
	kind, body := line[0], line[1:]
	switch kind {
	case '+', ':':
		return body, nil
	case '-':
		return nil, replyError(body)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return nil, fmt.Errorf("malformed bulk length %q", body)
		}
		if n == -1 {
			return nil, ErrNil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return nil, fmt.Errorf("malformed array length %q", body)
		}
		if n == -1 {
			return nil, ErrNil
		}
		elems := make([]any, 0, n)
		for range n {
			e, err := readValue(r, depth+1)
			var re replyError
			switch {
			case errors.Is(err, ErrNil):
				e = nil
			case errors.As(err, &re):
				e = re
			case err != nil:
				return nil, err
			}
			elems = append(elems, e)
		}
		return elems, nil
	default:
		return nil, fmt.Errorf("unsupported reply type %q", kind)
	}
}

// isConnClosed reports whether err says the peer closed the connection, as
// Redis does instead of replying to SHUTDOWN.
func isConnClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}
