package redistest

import (
	"bufio"
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

// do sends one command in RESP2 on a new connection and reads one reply;
// timeout bounds the whole exchange.
func (s *Server) do(timeout time.Duration, args ...string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("redistest: Do needs a command")
	}
	conn, err := net.DialTimeout("tcp", s.addr, timeout)
	if err != nil {
		return "", fmt.Errorf("redistest: %w", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return "", fmt.Errorf("redistest: %w", err)
	}
	if _, err := conn.Write(encodeCommand(args)); err != nil {
		return "", fmt.Errorf("redistest: %s: %w", args[0], err)
	}
	reply, err := readReply(bufio.NewReader(conn), 0)
	if err != nil {
		return "", fmt.Errorf("redistest: %s: %w", args[0], err)
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
	if depth > maxDepth {
		return "", errors.New("reply nested too deep")
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("malformed reply %q", line)
	}
	kind, body := line[0], line[1:]
	switch kind {
	case '+', ':':
		return body, nil
	case '-':
		return "", replyError(body)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return "", fmt.Errorf("malformed bulk length %q", body)
		}
		if n == -1 {
			return "", ErrNil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return "", fmt.Errorf("malformed array length %q", body)
		}
		if n == -1 {
			return "", ErrNil
		}
		elems := make([]string, 0, n)
		for range n {
			e, err := readReply(r, depth+1)
			switch {
			case errors.Is(err, ErrNil):
				e = "(nil)"
			case err != nil:
				var re replyError
				if !errors.As(err, &re) {
					return "", err
				}
				e = "(error) " + string(re)
			}
			elems = append(elems, e)
		}
		return "[" + strings.Join(elems, " ") + "]", nil
	default:
		return "", fmt.Errorf("unsupported reply type %q", kind)
	}
}

// isConnClosed reports whether err says the peer closed the connection, as
// Redis does instead of replying to SHUTDOWN.
func isConnClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}
