package loadtest

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestReadResponse(t *testing.T) {
	// Each response is followed by a second one, which must parse too:
	// the first must have been consumed exactly.
	const next = "HTTP/1.1 204 No Content\r\n\r\n"
	tests := []struct {
		name     string
		method   string
		resp     string
		code     int
		n        int64
		keep     bool
		wantErr  error
		noFollow bool
	}{
		{"content length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhello", 200, 5, true, nil, false},
		{"header case", "GET", "HTTP/1.1 201 Created\r\ncontent-length:3\r\n\r\nabc", 201, 3, true, nil, false},
		{"chunked with trailer", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n", 200, 11, true, nil, false},
		{"chunked", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 200, 3, true, nil, false},
		{"head has no body", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 200, 0, true, nil, false},
		{"304 has no body", "GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", 304, 0, true, nil, false},
		{"interim answer", "POST", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\nno", 503, 2, true, nil, false},
		{"connection close", "GET", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", 200, 2, false, nil, false},
		{"http/1.0", "GET", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, 2, false, nil, false},
		{"http/1.0 keep-alive", "GET", "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok", 200, 2, true, nil, false},
		{"body to the end", "GET", "HTTP/1.1 200 OK\r\n\r\nuntil close", 200, 11, false, nil, true},
		{"bare LF", "GET", "HTTP/1.1 200 OK\nContent-Length: 1\n\nx", 200, 1, true, nil, false},
		{"short body", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 200, 3, false, io.ErrUnexpectedEOF, true},
		{"not http", "GET", "SSH-2.0-OpenSSH\r\n", 0, 0, false, errMalformed, true},
		{"bad length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 200, 0, false, errMalformed, true},
		{"bad header", "GET", "HTTP/1.1 200 OK\r\nnocolon\r\n\r\n", 200, 0, false, errMalformed, true},
		{"cut in headers", "GET", "HTTP/1.1 200 OK\r\nContent-Le", 200, 0, false, io.ErrUnexpectedEOF, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.resp
			if !tc.noFollow {
				in += next
			}
			c := &client{method: tc.method, br: bufio.NewReaderSize(strings.NewReader(in), 64)}
			code, n, keep, err := c.readResponse()
			if code != tc.code || n != tc.n || keep != tc.keep || !errors.Is(err, tc.wantErr) {
				t.Fatalf("readResponse = %d, %d, %v, %v; want %d, %d, %v, %v", code, n, keep, err, tc.code, tc.n, tc.keep, tc.wantErr)
			}
			if tc.noFollow {
				return
			}
			if code, _, _, err := c.readResponse(); code != 204 || err != nil {
				t.Errorf("the next response: %d, %v", code, err)
			}
		})
	}
	long := &client{method: "GET", br: bufio.NewReaderSize(strings.NewReader("HTTP/1.1 200 OK\r\nX: "+strings.Repeat("a", 100)+"\r\n\r\n"), 32)}
	if _, _, _, err := long.readResponse(); !errors.Is(err, errMalformed) {
		t.Errorf("long header line: %v", err)
	}
}

// TestServerBehaviours runs the generator against net/http's server in
// ways that exercise the connection handling: chunked bodies, a server
// closing every connection, and one closing idle connections.
func TestServerBehaviours(t *testing.T) {
	chunked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "part one ")
		w.(http.Flusher).Flush()
		io.WriteString(w, "part two")
	}))
	t.Cleanup(chunked.Close)
	closing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	}))
	t.Cleanup(closing.Close)
	idle := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	idle.Config.IdleTimeout = 20 * time.Millisecond
	idle.Start()
	t.Cleanup(idle.Close)

	for _, tc := range []struct {
		name string
		o    Options
		body uint64
	}{
		{"chunked", Options{URL: chunked.URL, Concurrency: 2, Requests: 50}, 17},
		{"connection close", Options{URL: closing.URL, Concurrency: 2, Requests: 50}, 3},
		// At 10/s a connection is idle for 100 ms between requests, and
		// the server has closed it by then: the request is retried on a
		// new connection rather than failed.
		{"idle close", Options{URL: idle.URL, Rate: 10, Concurrency: 1, Duration: 600 * time.Millisecond}, 2},
	} {
		engines := closedLoopEngines()
		if tc.o.Rate > 0 {
			engines = []Engine{EngineGoroutines}
		}
		for _, e := range engines {
			t.Run(tc.name+"/"+string(e), func(t *testing.T) {
				res := mustRunOn(t, e, tc.o)
				if res.Requests == 0 || res.Failed != 0 || res.Bytes != tc.body*res.Requests {
					t.Errorf("%d requests, %d failed (%+v), %d bytes", res.Requests, res.Failed, res.Errors, res.Bytes)
				}
			})
		}
	}
}

// TestClientDoesNotAllocate checks that a request and its answer cost no
// allocation once the connection is open, against a canned server that
// allocates nothing itself.
func TestClientDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		buf := make([]byte, 4096)
		resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello")
		for {
			if _, err := conn.Read(buf); err != nil {
				return
			}
			if _, err := conn.Write(resp); err != nil {
				return
			}
		}
	}()
	o := Options{URL: "http://" + ln.Addr().String() + "/", Duration: time.Second}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	cl, err := newClient(&o)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.close()
	ctx := context.Background()
	if code, _, err := cl.do(ctx); code != 200 || err != nil {
		t.Fatalf("first request: %d %v", code, err)
	}
	allocs := testing.AllocsPerRun(200, func() {
		if code, n, err := cl.do(ctx); code != 200 || n != 5 || err != nil {
			t.Fatalf("request: %d %d %v", code, n, err)
		}
	})
	if allocs > 0 {
		t.Errorf("%.1f allocations per request", allocs)
	}
}
