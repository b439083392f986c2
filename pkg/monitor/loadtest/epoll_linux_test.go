package loadtest

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthsh/berth/pkg/errdefs"
)

// TestEpollParseIncremental feeds answers to the epoll engine's parser
// one byte at a time, as a slow network would, followed by a second
// answer that must parse too.
func TestEpollParseIncremental(t *testing.T) {
	const next = "HTTP/1.1 204 No Content\r\n\r\n"
	tests := []struct {
		name    string
		method  string
		resp    string
		eof     bool // the server closes after resp
		code    int
		n       int64
		keep    bool
		wantErr error
	}{
		{"content length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, 200, 5, true, nil},
		{"chunked with extension and trailer", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Sum: 1\r\n\r\n", false, 200, 15, true, nil},
		{"head has no body", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", false, 200, 0, true, nil},
		{"interim answer", "POST", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\nno", false, 503, 2, true, nil},
		{"connection close", "GET", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", false, 200, 2, false, nil},
		{"body to the end", "GET", "HTTP/1.0 200 OK\r\n\r\nuntil close", true, 200, 11, false, nil},
		{"short body", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", true, 200, 3, false, io.ErrUnexpectedEOF},
		{"cut chunked", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", true, 200, 3, false, io.ErrUnexpectedEOF},
		{"closed before answering", "GET", "", true, 0, 0, false, io.EOF},
		{"bad chunk size", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false, 200, 0, false, errMalformed},
		{"chunk without line end", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", false, 200, 1, false, errMalformed},
		{"not http", "GET", "SSH-2.0-OpenSSH\r\n", false, 0, 0, false, errMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.resp
			if tc.wantErr == nil && !tc.eof {
				in += next
			}
			c := &econn{buf: make([]byte, 256), inHead: true}
			var done bool
			var err error
			for i := 0; i < len(in) && !done && err == nil; i++ {
				c.buf[c.w] = in[i]
				c.w++
				done, err = c.advance(tc.method)
			}
			if !done && err == nil && tc.eof {
				c.eof = true
				done, err = c.advance(tc.method)
			}
			if !errors.Is(err, tc.wantErr) || (err == nil) != done {
				t.Fatalf("advance = %v, %v; want done, %v", done, err, tc.wantErr)
			}
			if c.code != tc.code || c.n != tc.n || (err == nil && c.keep != tc.keep) {
				t.Fatalf("code %d, %d bytes, keep %v; want %d, %d, %v", c.code, c.n, c.keep, tc.code, tc.n, tc.keep)
			}
			if err != nil || tc.eof {
				return
			}
			// The answer was consumed exactly: the next one, all at
			// once, parses.
			if c.r != c.w {
				t.Fatalf("%d bytes left over", c.w-c.r)
			}
			c.w = c.r + copy(c.buf[c.r:], next)
			c.inHead, c.n = true, 0
			if done, err := c.advance("GET"); !done || err != nil || c.code != 204 {
				t.Errorf("the next answer: done %v, %v, code %d", done, err, c.code)
			}
		})
	}
	// A head that does not fit the buffer.
	c := &econn{buf: make([]byte, 32), inHead: true}
	c.w = copy(c.buf, "HTTP/1.1 200 OK\r\nX: "+strings.Repeat("a", 40))
	if _, err := c.advance("GET"); !errors.Is(err, errMalformed) {
		t.Errorf("long head: %v", err)
	}
}

// TestEpollManyConnections loads with many more connections than
// threads and checks each connection was used.
func TestEpollManyConnections(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	res := mustRunOn(t, EngineEpoll, Options{URL: srv.URL, Concurrency: 200, Threads: 3, Requests: 2000})
	if res.Requests != 2000 || res.Succeeded != 2000 || res.Bytes != 4000 {
		t.Errorf("%d requests, %d succeeded (%+v), %d bytes", res.Requests, res.Succeeded, res.Errors, res.Bytes)
	}
	if res.Threads != 3 {
		t.Errorf("%d threads, want 3", res.Threads)
	}
	var text strings.Builder
	if err := res.WriteText(&text); err != nil || !strings.Contains(text.String(), "(closed loop, epoll engine, 3 threads)") {
		t.Errorf("report (%v):\n%s", err, text.String())
	}
	if n := conns.Load(); n != 200 {
		t.Errorf("the server saw %d connections, want 200 (one per worker)", n)
	}
}

// rawServer accepts connections and hands each to serve.
func rawServer(t *testing.T, serve func(net.Conn)) (url string, accepted *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted = new(atomic.Int64)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			wg.Go(func() {
				defer conn.Close()
				serve(conn)
			})
		}
	})
	return "http://" + ln.Addr().String() + "/", accepted
}

// readRequest reads one request head off br.
func readRequest(br *bufio.Reader) error {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "\r\n" {
			return nil
		}
	}
}

// TestServerClosingConnections checks both engines against servers that
// close connections: one that closes a kept-alive connection after its
// first answer (the next request is retried on a new connection, not
// failed) and one that resets every connection before answering
// (counted as resets).
func TestServerClosingConnections(t *testing.T) {
	oneShot, accepted := rawServer(t, func(conn net.Conn) {
		if readRequest(bufio.NewReader(conn)) == nil {
			io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	resetting, _ := rawServer(t, func(conn net.Conn) {
		if readRequest(bufio.NewReader(conn)) == nil {
			conn.(*net.TCPConn).SetLinger(0)
		}
	})
	forEachEngine(t, func(t *testing.T, e Engine) {
		before := accepted.Load()
		res := mustRunOn(t, e, Options{URL: oneShot, Concurrency: 4, Requests: 100})
		if res.Requests != 100 || res.Succeeded != 100 || res.Bytes != 200 {
			t.Errorf("closing after one answer: %d requests, %d succeeded (%+v)", res.Requests, res.Succeeded, res.Errors)
		}
		if n := accepted.Load() - before; n < 100 {
			t.Errorf("%d connections for 100 requests on a server closing each", n)
		}

		res = mustRunOn(t, e, Options{URL: resetting, Concurrency: 4, Requests: 40})
		if res.Requests != 40 || res.Errors.Reset != 40 || res.Failed != 40 {
			t.Errorf("resetting: %d requests, %d failed, errors %+v", res.Requests, res.Failed, res.Errors)
		}
	})
}

// TestEpollSlowServerTimesOut checks that every request to a server
// slower than the timeout fails as a timeout, after about the timeout.
func TestEpollSlowServerTimesOut(t *testing.T) {
	srv := sleepServer(t, 5*time.Second, nil)
	res := mustRunOn(t, EngineEpoll, Options{URL: srv.URL, Concurrency: 8, Threads: 2, Requests: 24, Timeout: 50 * time.Millisecond})
	if res.Requests != 24 || res.Errors.Timeout != 24 || res.Failed != 24 {
		t.Errorf("%d requests, %d timeouts, %d failed: %+v", res.Requests, res.Errors.Timeout, res.Failed, res.Errors)
	}
	if res.Latency.Min < 50 || res.Latency.P50 > 1000 {
		t.Errorf("latency of timed-out requests %+v, want about 50 ms", res.Latency)
	}
	if !strings.Contains(res.Errors.Examples["timeout"], "50ms") {
		t.Errorf("timeout example %q", res.Errors.Examples["timeout"])
	}
}

// TestEpollCancelStops cancels a run whose requests the server never
// answers: Run must return without the answers, counting the requests
// in flight as unfinished.
func TestEpollCancelStops(t *testing.T) {
	release := make(chan struct{})
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for got.Load() < 6 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	res, err := Run(ctx, Options{Engine: EngineEpoll, URL: srv.URL, Concurrency: 6, Duration: time.Hour, Timeout: time.Hour})
	if !errors.Is(err, context.Canceled) || res == nil {
		t.Fatalf("Run = %v, %v", res, err)
	}
	if res.Requests != 0 || res.Unfinished != 6 {
		t.Errorf("%d requests, %d unfinished; want 0 and 6", res.Requests, res.Unfinished)
	}
}

// TestEpollBadOptions checks what the epoll engine refuses.
func TestEpollBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"rate", Options{URL: "http://x/", Rate: 10, Duration: time.Second}, "fixed-concurrency"},
		{"https", Options{URL: "https://x/", Duration: time.Second}, "http:// URLs only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Engine = EngineEpoll
			_, err := Run(context.Background(), tc.o)
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run = %v, want an invalid-argument error about %q", err, tc.want)
			}
		})
	}
	// Auto picks the goroutines engine for what epoll does not cover.
	srv := sleepServer(t, 0, nil)
	res := mustRun(t, Options{URL: srv.URL, Rate: 50, Requests: 5})
	if res.Engine != string(EngineGoroutines) {
		t.Errorf("auto ran %q for a fixed rate", res.Engine)
	}
	res = mustRun(t, Options{URL: srv.URL, Requests: 5})
	if res.Engine != string(EngineEpoll) {
		t.Errorf("auto ran %q for closed-loop http", res.Engine)
	}
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestEpollNoLeaks runs the epoll engine through keep-alive, closing,
// refused, timed-out and cancelled loads and checks that no file
// descriptor or goroutine is left behind.
func TestEpollNoLeaks(t *testing.T) {
	fds, goroutines := openFDs(t), runtime.NumGoroutine()
	func() {
		fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
		defer fast.Close()
		closing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
		}))
		defer closing.Close()
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		}))
		defer slow.Close()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		refused := "http://" + ln.Addr().String() + "/"
		ln.Close()

		mustRunOn(t, EngineEpoll, Options{URL: fast.URL, Concurrency: 20, Requests: 500})
		mustRunOn(t, EngineEpoll, Options{URL: closing.URL, Concurrency: 5, Requests: 50})
		mustRunOn(t, EngineEpoll, Options{URL: refused, Concurrency: 3, Requests: 30})
		mustRunOn(t, EngineEpoll, Options{URL: slow.URL, Concurrency: 3, Requests: 3, Timeout: 20 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if _, err := Run(ctx, Options{Engine: EngineEpoll, URL: slow.URL, Concurrency: 4, Duration: time.Hour}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("cancelled run: %v", err)
		}
	}()
	// The servers' side of the connections closes asynchronously.
	deadline := time.Now().Add(10 * time.Second)
	for (openFDs(t) > fds || runtime.NumGoroutine() > goroutines) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := openFDs(t); n > fds {
		t.Errorf("%d file descriptors open after the runs, %d before", n, fds)
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		t.Errorf("%d goroutines after the runs, %d before", n, goroutines)
	}
}
