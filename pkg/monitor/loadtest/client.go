package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// client is one worker's HTTP/1.1 connection: the request is serialized
// once and written again and again on a kept-alive connection, and
// responses are parsed straight off it. This skips net/http's Transport
// and its per-request hand-offs between goroutines and header maps,
// which cost the generator about half its throughput (wrk works the
// same way).
type client struct {
	o       *Options
	req     []byte // the whole request, head and body
	method  string
	addr    string // host:port to dial
	tlsName string // server name for https, "" for http

	conn net.Conn
	br   *bufio.Reader
	// deadline is the connection's read and write deadline.
	deadline time.Time
	// stopWatch ends the watch that aborts the connection's I/O when
	// the run's context is cancelled.
	stopWatch func() bool
}

// newClient prepares a worker's client for o's request.
func newClient(o *Options) (*client, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(o.Method, o.URL, nil)
	if err != nil {
		return nil, err
	}
	if o.Header != nil {
		req.Header = o.Header.Clone()
		if h := req.Header.Get("Host"); h != "" {
			req.Host = h
			req.Header.Del("Host")
		}
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "berth-loadtest")
	}
	if len(o.Body) > 0 {
		req.ContentLength = int64(len(o.Body))
		req.Body = io.NopCloser(bytes.NewReader(o.Body))
	}
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		return nil, err
	}
	c := &client{o: o, req: buf.Bytes(), method: req.Method}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	c.addr = net.JoinHostPort(u.Hostname(), port)
	if u.Scheme == "https" {
		c.tlsName = u.Hostname()
	}
	return c, nil
}

// close drops the connection.
func (c *client) close() {
	if c.conn == nil {
		return
	}
	c.stopWatch()
	c.conn.Close()
	c.conn, c.br = nil, nil
}

// dial opens a connection; ctx cancels its I/O for as long as it lives.
func (c *client) dial(ctx context.Context, deadline time.Time) error {
	d := net.Dialer{Deadline: deadline, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return err
	}
	if c.tlsName != "" {
		tc := tls.Client(conn, &tls.Config{ServerName: c.tlsName, NextProtos: []string{"http/1.1"}})
		hctx, cancel := context.WithDeadline(ctx, deadline)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			conn.Close()
			return err
		}
		conn = tc
	}
	c.conn, c.deadline = conn, time.Time{}
	if c.br == nil {
		c.br = bufio.NewReaderSize(conn, 16<<10)
	} else {
		c.br.Reset(conn)
	}
	c.stopWatch = context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	return nil
}

// do sends the request once and reads the whole answer. It returns the
// status code (0 without an answer), the body's length, and any error.
// A kept-alive connection the server closed while idle is retried once
// on a new connection, as net/http does.
func (c *client) do(ctx context.Context) (int, int64, error) {
	deadline := time.Now().Add(c.o.Timeout)
	for attempt := 0; ; attempt++ {
		reused := c.conn != nil
		if !reused {
			if err := c.dial(ctx, deadline); err != nil {
				return 0, 0, err
			}
		}
		code, n, sent, err := c.roundTrip(ctx, deadline)
		if err != nil {
			c.close()
			if reused && !sent && attempt == 0 && ctx.Err() == nil && time.Now().Before(deadline) {
				continue
			}
		}
		return code, n, err
	}
}

// roundTrip writes the request and reads the response on the open
// connection. sent reports whether any byte of an answer arrived.
func (c *client) roundTrip(ctx context.Context, deadline time.Time) (code int, n int64, sent bool, err error) {
	// Moving the connection's deadline costs a timer update; it is
	// moved only when the request needs more time than it leaves, and
	// then a little further, so a request gets between Timeout and
	// Timeout plus 1%.
	if deadline.After(c.deadline) {
		c.deadline = deadline.Add(c.o.Timeout / 100)
		if err := c.conn.SetDeadline(c.deadline); err != nil {
			return 0, 0, false, err
		}
	}
	// Checked after setting the deadline: a cancellation that came
	// before it would otherwise be undone by it.
	if err := ctx.Err(); err != nil {
		return 0, 0, false, err
	}
	if _, err := c.conn.Write(c.req); err != nil {
		return 0, 0, false, err
	}
	if _, err := c.br.Peek(1); err != nil {
		return 0, 0, false, err
	}
	code, n, keep, err := c.readResponse()
	if err == nil && !keep {
		c.close()
	}
	return code, n, true, err
}

// errMalformed is the error for an answer that is not HTTP/1.x.
var errMalformed = errors.New("malformed HTTP response")

// readResponse reads one response off the connection and discards its
// body without allocating: only the status and the headers that frame
// the body (Content-Length, Transfer-Encoding, Connection) are looked
// at. keep reports whether the connection can carry another request.
func (c *client) readResponse() (code int, n int64, keep bool, err error) {
	h, err := parseHead(c)
	if err != nil {
		return h.code, 0, false, err
	}
	code, keep = h.code, h.keep
	switch {
	case !hasBody(c.method, code):
	case h.chunked:
		n, err = io.Copy(io.Discard, httputil.NewChunkedReader(c.br))
		for err == nil { // trailers, up to the empty line
			var line []byte
			if line, err = c.line(); len(line) == 0 {
				break
			}
		}
	case h.length >= 0:
		var got int
		got, err = c.br.Discard(int(h.length))
		n = int64(got)
	default: // the body runs to the end of the connection
		n, err = io.Copy(io.Discard, c.br)
		keep = false
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return code, n, keep && err == nil, err
}

// lineReader gives parseHead the lines of a response, without their
// line ends; a line is valid until the next call.
type lineReader interface {
	line() ([]byte, error)
}

// head is what parseHead learnt from a response's head.
type head struct {
	code    int
	keep    bool  // the connection may carry another request
	length  int64 // Content-Length, -1 when not given
	chunked bool
}

// parseHead reads a response's status line and headers, skipping interim
// (1xx) answers. Only the status and the headers that frame the body
// (Content-Length, Transfer-Encoding, Connection) are looked at. On a
// malformed header line, h.code is the status already read. Both engines
// use it: the goroutine one over a bufio.Reader, the epoll one over the
// bytes received so far (where it fails with errNeedMore until the whole
// head is there).
func parseHead(lr lineReader) (h head, err error) {
	for {
		line, err := lr.line()
		if err != nil {
			return head{}, err
		}
		// HTTP/1.1 200 OK
		if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
			return head{}, fmt.Errorf("%w: status line %q", errMalformed, line)
		}
		code := 0
		for _, d := range line[9:12] {
			if d < '0' || d > '9' {
				return head{}, fmt.Errorf("%w: status line %q", errMalformed, line)
			}
			code = code*10 + int(d-'0')
		}
		// HTTP/1.0 closes unless told otherwise.
		h = head{code: code, keep: line[7] != '0', length: -1}
		for {
			line, err := lr.line()
			if err != nil {
				return head{code: code}, err
			}
			if len(line) == 0 {
				break
			}
			name, value, ok := bytes.Cut(line, []byte(":"))
			if !ok {
				return head{code: code}, fmt.Errorf("%w: header line %q", errMalformed, line)
			}
			value = bytes.TrimSpace(value)
			switch {
			case asciiEqualFold(name, "Content-Length"):
				h.length = 0
				for _, d := range value {
					if d < '0' || d > '9' || h.length > 1<<50 {
						return head{code: code}, fmt.Errorf("%w: Content-Length %q", errMalformed, value)
					}
					h.length = h.length*10 + int64(d-'0')
				}
			case asciiEqualFold(name, "Transfer-Encoding"):
				h.chunked = asciiContainsFold(value, "chunked")
			case asciiEqualFold(name, "Connection"):
				if asciiContainsFold(value, "close") {
					h.keep = false
				} else if asciiContainsFold(value, "keep-alive") {
					h.keep = true
				}
			}
		}
		if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
			continue // an interim answer (100 Continue): the real one follows
		}
		return h, nil
	}
}

// hasBody reports whether the answer with code to method has a body.
func hasBody(method string, code int) bool {
	return method != http.MethodHead && code != http.StatusNoContent && code != http.StatusNotModified
}

// line reads one header line without its line end. The slice is valid
// until the next read.
func (c *client) line() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("%w: header line longer than %d bytes", errMalformed, c.br.Size())
	}
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, nil
}

// asciiEqualFold is strings.EqualFold for ASCII, without converting b.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

// asciiContainsFold reports whether s occurs in b, ignoring ASCII case.
func asciiContainsFold(b []byte, s string) bool {
	for i := 0; i+len(s) <= len(b); i++ {
		if asciiEqualFold(b[i:i+len(s)], s) {
			return true
		}
	}
	return false
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
