package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// epollSupported reports whether this OS has the epoll engine.
const epollSupported = true

// The epoll engine (EngineEpoll) does closed-loop load the way wrk does:
// a few OS threads, each with its own epoll instance and its share of
// the connections on non-blocking sockets. A connection's next request
// is written as soon as its answer is complete, and answers are read
// when epoll says they are there, so a request costs a write, a read and
// a share of an epoll_wait (Go's net package adds a read that finds
// nothing, parking the goroutine, and waking it). Each thread counts
// into its own tally, merged into the run at the end; it publishes its
// completions for Progress every progressFlush.

// progressFlush is how often a thread publishes its counts while it runs.
const progressFlush = 10 * time.Millisecond

// maxWait bounds one epoll_wait, so a huge timeout needs no special case.
const maxWait = time.Second

// readBufSize is each connection's read buffer: a response head, or a
// chunk-size line, must fit.
const readBufSize = 16 << 10

// errNeedMore is what econn.line returns when the line has not fully
// arrived yet.
var errNeedMore = errors.New("need more data")

// epollLoad is the epoll engine of one run: its threads and their
// connections, set up before the clock starts.
type epollLoad struct {
	r       *run
	threads []*ethread
	stopped atomic.Bool // the run was cancelled
}

// ethread is one OS thread of the epoll engine and the connections it
// owns. Only its own goroutine touches it while the run goes on.
type ethread struct {
	e      *epollLoad
	r      *run
	req    []byte
	family int
	sa     unix.Sockaddr
	raddr  net.Addr // for error messages
	tmo    error    // the error of a request that timed out
	end    time.Time

	epfd, wakefd int
	conns        []econn
	events       []unix.EpollEvent
	// pending lists connections to act on without waiting for epoll:
	// start their next request, or retry this one; spare is the other
	// buffer pending swaps with.
	pending, spare []int32
	active         int       // connections not yet retired
	nextCheck      time.Time // the earliest deadline in flight (zero: none)
	lastFlush      time.Time

	t tally
}

// Connection states.
const (
	stIdle       = iota // retired: no more requests
	stPending           // in ethread.pending
	stConnecting        // connect in progress (waiting for EPOLLOUT)
	stWriting           // request partly written (waiting for EPOLLOUT)
	stReading           // waiting for (the rest of) the answer
)

// Body framings.
const (
	bodyNone = iota
	bodyLength
	bodyChunked
	bodyToEOF
)

// Chunked body states.
const (
	chunkSize = iota
	chunkData
	chunkEnd
	chunkTrailer
)

// econn is one connection of the epoll engine and the request on it.
type econn struct {
	idx   int32
	gen   int32 // counts connects, to ignore events of a closed socket
	fd    int
	state uint8
	out   bool // watching EPOLLOUT instead of EPOLLIN

	sched    time.Time // when the request was started
	deadline time.Time
	reused   bool // the request went out on a kept-alive connection
	retried  bool
	retry    bool // pending: retry the request rather than start one
	off      int  // bytes of the request written

	buf    []byte
	r, w   int // unparsed bytes are buf[r:w]
	pos    int // parse position of line
	eof    bool
	got    bool // a byte of the answer arrived
	inHead bool
	code   int
	keep   bool
	mode   uint8
	cstate uint8
	left   int64 // bytes of the body or chunk still to come
	n      int64 // body bytes so far
}

// tally is what one thread measured.
type tally struct {
	hist                          *Histogram
	status                        [maxStatus]uint64
	errs                          [numErrorKinds]uint64
	errSample                     [numErrorKinds]string
	completed, failed, bytes      uint64
	non2xx, unfinished            uint64
	lastDone                      int64
	publishedDone, publishedFails uint64
}

// newEpollLoad sets up the epoll engine for r: it resolves the host and
// creates each thread's epoll instance. It fails for what the engine
// does not cover.
func newEpollLoad(ctx context.Context, r *run) (*epollLoad, error) {
	o := r.o
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, invalid("bad URL %q: %v", o.URL, err)
	}
	if u.Scheme != "http" {
		return nil, invalid("the epoll engine loads http:// URLs only: use the goroutines engine for %s", u.Scheme)
	}
	if o.Rate > 0 {
		return nil, invalid("the epoll engine does fixed-concurrency load only: use the goroutines engine for a fixed rate")
	}
	cl, err := newClient(o)
	if err != nil {
		return nil, invalid("bad request: %v", err)
	}
	host, portStr, err := net.SplitHostPort(cl.addr)
	if err != nil {
		return nil, invalid("bad address %q: %v", cl.addr, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, invalid("bad port %q in %q: give a number", portStr, o.URL)
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return nil, fmt.Errorf("epoll engine: resolve %s: %w", host, err)
	}
	// Like wrk, use the first address that accepts a connection (the
	// goroutines engine's dialer also falls back from one to the next).
	ip := ips[0].Unmap()
	if len(ips) > 1 {
		d := net.Dialer{Timeout: o.Timeout}
		for _, a := range ips {
			if conn, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(a.Unmap(), uint16(port)).String()); err == nil {
				conn.Close()
				ip = a.Unmap()
				break
			}
		}
	}
	family := unix.AF_INET
	// Each thread gets its own: unix.Connect writes into it.
	sockaddr := func() unix.Sockaddr { return &unix.SockaddrInet4{Port: int(port), Addr: ip.As4()} }
	if !ip.Is4() {
		if ip.Zone() != "" {
			return nil, invalid("the epoll engine does not load zoned IPv6 addresses (%s): use the goroutines engine", ip)
		}
		family = unix.AF_INET6
		sockaddr = func() unix.Sockaddr { return &unix.SockaddrInet6{Port: int(port), Addr: ip.As16()} }
	}
	raddr := net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port)))

	n := o.Threads
	if n == 0 {
		n = defaultThreads()
	}
	n = max(1, min(n, o.Concurrency))
	e := &epollLoad{r: r}
	tmo := fmt.Errorf("no complete answer within %s: %w", o.Timeout, os.ErrDeadlineExceeded)
	for i := range n {
		t := &ethread{e: e, r: r, req: cl.req, family: family, sa: sockaddr(), raddr: raddr, tmo: tmo, epfd: -1, wakefd: -1}
		t.t.hist = NewHistogram()
		e.threads = append(e.threads, t)
		if t.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
			e.close()
			return nil, fmt.Errorf("epoll engine: %w", os.NewSyscallError("epoll_create1", err))
		}
		if t.wakefd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
			e.close()
			return nil, fmt.Errorf("epoll engine: %w", os.NewSyscallError("eventfd", err))
		}
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: -1}
		if err := unix.EpollCtl(t.epfd, unix.EPOLL_CTL_ADD, t.wakefd, &ev); err != nil {
			e.close()
			return nil, fmt.Errorf("epoll engine: %w", os.NewSyscallError("epoll_ctl", err))
		}
		k := o.Concurrency / n
		if i < o.Concurrency%n {
			k++
		}
		t.conns = make([]econn, k)
		for j := range t.conns {
			t.conns[j] = econn{idx: int32(j), fd: -1, buf: make([]byte, readBufSize)}
		}
		t.events = make([]unix.EpollEvent, min(k+1, 256))
		t.pending = make([]int32, 0, k)
		t.spare = make([]int32, 0, k)
	}
	return e, nil
}

// defaultThreads is the number of threads when Options.Threads is 0:
// one per P (runtime.GOMAXPROCS) but one. With every P held by a thread
// of the engine, each epoll_wait that blocks has the runtime hand the P
// to another OS thread and take it back (sysmon then wakes every 20 µs
// to do it); with a P left idle it does not. On 2 CPUs one thread
// measured 9-10 µs of CPU per request against 12 µs for two, at the
// same throughput (bench/loadtest.sh).
func defaultThreads() int {
	return max(1, runtime.GOMAXPROCS(0)-1)
}

// close releases the threads' epoll instances and eventfds.
func (e *epollLoad) close() {
	for _, t := range e.threads {
		for i := range t.conns {
			t.closeFd(&t.conns[i])
		}
		if t.epfd >= 0 {
			unix.Close(t.epfd)
			t.epfd = -1
		}
		if t.wakefd >= 0 {
			unix.Close(t.wakefd)
			t.wakefd = -1
		}
	}
}

// run sends the load until end (zero: until the request limit) or until
// hard is cancelled, then merges the threads' tallies into the run.
func (e *epollLoad) run(hard context.Context, end time.Time) {
	woken := make(chan struct{})
	stop := context.AfterFunc(hard, func() {
		defer close(woken)
		e.stopped.Store(true)
		one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
		for _, t := range e.threads {
			unix.Write(t.wakefd, one)
		}
	})
	var wg sync.WaitGroup
	for _, t := range e.threads {
		t.end = end
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			t.loop()
		})
	}
	wg.Wait()
	if !stop() {
		<-woken // the eventfds must outlive the writes to them
	}
	for _, t := range e.threads {
		t.merge()
	}
}

// loop is one thread's event loop.
func (t *ethread) loop() {
	now := time.Now()
	t.lastFlush = now
	t.active = len(t.conns)
	for i := range t.conns {
		t.start(&t.conns[i], now)
	}
	for t.active > 0 {
		if t.e.stopped.Load() {
			t.abort()
			break
		}
		if len(t.pending) > 0 {
			now = time.Now()
			t.runPending(now)
			if t.active == 0 {
				break
			}
		}
		wait := int(maxWait / time.Millisecond)
		switch {
		case len(t.pending) > 0:
			wait = 0
		case !t.nextCheck.IsZero():
			d := min(t.nextCheck.Sub(now), maxWait)
			wait = max(0, int((d+time.Millisecond-1)/time.Millisecond))
		}
		// A poll that does not block first: when answers are waiting,
		// it skips the runtime's bookkeeping of a blocking system call
		// (handing the thread's P over, and taking it back).
		n, err := rawEpollWait(t.epfd, t.events, 0)
		if n == 0 && wait != 0 {
			n, err = unix.EpollWait(t.epfd, t.events, wait)
		}
		now = time.Now()
		if err != nil && err != unix.EINTR {
			// Cannot happen with a valid epoll fd; give up on the
			// requests in flight rather than spin.
			t.abort()
			break
		}
		for _, ev := range t.events[:max(n, 0)] {
			if ev.Fd < 0 {
				var b [8]byte
				unix.Read(t.wakefd, b[:])
				continue
			}
			c := &t.conns[ev.Fd]
			if c.gen != ev.Pad || c.fd < 0 {
				continue // an event of a socket closed since
			}
			t.handle(c, ev.Events, now)
		}
		if !t.nextCheck.IsZero() && !now.Before(t.nextCheck) {
			t.expire(now)
		}
		if now.Sub(t.lastFlush) >= progressFlush {
			t.flush(now)
		}
	}
	for i := range t.conns {
		t.closeFd(&t.conns[i])
	}
}

// mayStart reports whether another request may be sent at now.
func (t *ethread) mayStart(now time.Time) bool {
	r := t.r
	switch {
	case t.e.stopped.Load():
		return false
	case !t.end.IsZero() && !now.Before(t.end):
		return false
	case r.o.Requests > 0 && !now.Before(r.measureStart) && r.issued.Add(1) > r.o.Requests:
		return false
	}
	return true
}

// start sends c's next request, or retires c when the run is over.
func (t *ethread) start(c *econn, now time.Time) {
	if !t.mayStart(now) {
		t.closeFd(c)
		c.state = stIdle
		t.active--
		return
	}
	c.sched, c.deadline = now, now.Add(t.r.o.Timeout)
	c.retried, c.off = false, 0
	if t.nextCheck.IsZero() || c.deadline.Before(t.nextCheck) {
		t.nextCheck = c.deadline
	}
	if c.fd < 0 {
		t.open(c, now)
		return
	}
	c.reused = true
	t.send(c, now)
}

// open connects c (for a new request or a retry) and sends the request
// once connected.
func (t *ethread) open(c *econn, now time.Time) {
	c.reused, c.off = false, 0
	c.r, c.w, c.eof = 0, 0, false
	fd, err := unix.Socket(t.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.fail(c, t.opErr("dial", "socket", err), now)
		return
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	err = unix.Connect(fd, t.sa)
	connecting := err == unix.EINPROGRESS
	if err != nil && !connecting {
		unix.Close(fd)
		t.fail(c, t.opErr("dial", "connect", err), now)
		return
	}
	c.fd = fd
	c.gen++
	c.out = connecting
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: c.idx, Pad: c.gen}
	if connecting {
		ev.Events = unix.EPOLLOUT
	}
	if err := unix.EpollCtl(t.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		t.fail(c, t.opErr("dial", "epoll_ctl", err), now)
		return
	}
	if connecting {
		c.state = stConnecting
		return
	}
	t.send(c, now)
}

// watchOut switches c's epoll interest between EPOLLOUT (on: while
// connecting or when the request did not fit the socket buffer) and
// EPOLLIN.
func (t *ethread) watchOut(c *econn, on bool, now time.Time) bool {
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: c.idx, Pad: c.gen}
	if on {
		ev.Events = unix.EPOLLOUT
	}
	if err := unix.EpollCtl(t.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev); err != nil {
		t.fail(c, t.opErr("write", "epoll_ctl", err), now)
		return false
	}
	c.out = on
	return true
}

// send writes (the rest of) c's request, then waits for the answer.
func (t *ethread) send(c *econn, now time.Time) {
	c.state = stWriting
	for c.off < len(t.req) {
		n, err := rawIO(unix.SYS_WRITE, c.fd, t.req[c.off:])
		switch {
		case err == unix.EAGAIN:
			if !c.out {
				t.watchOut(c, true, now)
			}
			return
		case err == unix.EINTR:
			continue
		case err != 0:
			t.fail(c, t.opErr("write", "write", err), now)
			return
		}
		c.off += n
	}
	if c.out && !t.watchOut(c, false, now) {
		return
	}
	c.state, c.inHead, c.got = stReading, true, false
	c.code, c.n = 0, 0
}

// handle acts on an epoll event of c.
func (t *ethread) handle(c *econn, events uint32, now time.Time) {
	switch c.state {
	case stConnecting:
		soerr, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err == nil && soerr != 0 {
			err = syscall.Errno(soerr)
		}
		if err != nil {
			t.fail(c, t.opErr("dial", "connect", err), now)
			return
		}
		if events&unix.EPOLLOUT != 0 {
			t.send(c, now)
		}
	case stWriting:
		t.send(c, now)
	case stReading:
		t.recv(c, now)
	}
}

// recv reads what arrived for c and parses it.
func (t *ethread) recv(c *econn, now time.Time) {
	if c.w == len(c.buf) {
		if c.r == 0 {
			t.fail(c, fmt.Errorf("%w: a line longer than %d bytes", errMalformed, len(c.buf)), now)
			return
		}
		c.w = copy(c.buf, c.buf[c.r:c.w])
		c.r = 0
	}
	n, err := rawIO(unix.SYS_READ, c.fd, c.buf[c.w:])
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		return // level-triggered: epoll says so again
	case err != 0:
		t.fail(c, t.opErr("read", "read", err), now)
		return
	case n == 0:
		c.eof = true
	default:
		c.w += n
		c.got = true
	}
	t.parse(c, now)
}

// parse goes on parsing c's answer with what arrived, and completes the
// request when it is all there.
func (t *ethread) parse(c *econn, now time.Time) {
	done, err := c.advance(t.r.o.Method)
	if err != nil {
		t.fail(c, err, now)
		return
	}
	if !done {
		return
	}
	now = time.Now()
	t.t.record(t.r.measureStart, c.sched, now, c.code, c.n, nil)
	if !c.keep || c.eof {
		t.closeFd(c)
	} else if c.r == c.w {
		c.r, c.w = 0, 0
	}
	// The next request goes out once every answer epoll reported has
	// been read, as with wrk: the server then gets its requests in a
	// burst and answers them in one, and fewer epoll_waits block.
	c.state, c.retry = stPending, false
	t.pending = append(t.pending, c.idx)
}

// advance parses what arrived of the answer to a request with method:
// the head with parseHead (again from its start until it is complete),
// then the body as it comes. done reports the answer complete.
func (c *econn) advance(method string) (done bool, err error) {
	if c.inHead {
		c.pos = c.r
		h, err := parseHead(c)
		if err == errNeedMore {
			return false, nil
		}
		c.code = h.code
		if err != nil {
			return false, err
		}
		c.r, c.inHead, c.keep = c.pos, false, h.keep
		switch {
		case !hasBody(method, h.code):
			c.mode = bodyNone
		case h.chunked:
			c.mode, c.cstate = bodyChunked, chunkSize
		case h.length >= 0:
			c.mode, c.left = bodyLength, h.length
		default:
			c.mode, c.keep = bodyToEOF, false
		}
	}
	return c.body()
}

// body consumes what arrived of c's body; done reports its end.
func (c *econn) body() (done bool, err error) {
	for {
		switch c.mode {
		case bodyNone:
			return true, nil
		case bodyToEOF:
			c.n += int64(c.w - c.r)
			c.r, c.w = 0, 0
			return c.eof, nil
		case bodyLength:
			c.take()
			if c.left == 0 {
				return true, nil
			}
			if c.eof {
				return false, io.ErrUnexpectedEOF
			}
			return false, nil
		}
		// Chunked.
		if c.cstate == chunkData {
			c.take()
			if c.left > 0 {
				if c.eof {
					return false, io.ErrUnexpectedEOF
				}
				return false, nil
			}
			c.cstate = chunkEnd
			continue
		}
		c.pos = c.r
		line, err := c.line()
		if err == errNeedMore {
			return false, nil
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return false, err
		}
		c.r = c.pos
		switch c.cstate {
		case chunkSize:
			size, err := parseChunkSize(line)
			if err != nil {
				return false, err
			}
			c.left, c.cstate = size, chunkData
			if size == 0 {
				c.cstate = chunkTrailer
			}
		case chunkEnd:
			if len(line) != 0 {
				return false, fmt.Errorf("%w: chunk data not followed by a line end", errMalformed)
			}
			c.cstate = chunkSize
		case chunkTrailer:
			if len(line) == 0 {
				return true, nil
			}
		}
	}
}

// take consumes what arrived of the c.left bytes of body still due.
func (c *econn) take() {
	k := min(c.left, int64(c.w-c.r))
	c.r += int(k)
	c.left -= k
	c.n += k
	if c.r == c.w {
		c.r, c.w = 0, 0
	}
}

// line returns the next line of the answer from c.pos, without its line
// end, or errNeedMore when it has not all arrived (parseHead's
// lineReader).
func (c *econn) line() ([]byte, error) {
	i := bytes.IndexByte(c.buf[c.pos:c.w], '\n')
	if i < 0 {
		switch {
		case c.eof && c.inHead && c.pos == c.r && c.w == c.r:
			return nil, io.EOF // closed before answering
		case c.eof:
			return nil, io.ErrUnexpectedEOF
		case c.r == 0 && c.w == len(c.buf):
			return nil, fmt.Errorf("%w: a line longer than %d bytes", errMalformed, len(c.buf))
		}
		return nil, errNeedMore
	}
	line := c.buf[c.pos : c.pos+i]
	c.pos += i + 1
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, nil
}

// parseChunkSize parses a chunk-size line (hex, maybe with extensions).
func parseChunkSize(line []byte) (int64, error) {
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimSpace(line)
	if len(line) == 0 || len(line) > 12 {
		return 0, fmt.Errorf("%w: chunk size %q", errMalformed, line)
	}
	var n int64
	for _, d := range line {
		switch {
		case '0' <= d && d <= '9':
			n = n<<4 | int64(d-'0')
		case 'a' <= d && d <= 'f':
			n = n<<4 | int64(d-'a'+10)
		case 'A' <= d && d <= 'F':
			n = n<<4 | int64(d-'A'+10)
		default:
			return 0, fmt.Errorf("%w: chunk size %q", errMalformed, line)
		}
	}
	return n, nil
}

// fail ends c's request with err: it is retried once on a new
// connection when a kept-alive connection turns out closed before any
// answer (as the goroutine engine and net/http do), and recorded as
// failed otherwise.
func (t *ethread) fail(c *econn, err error, now time.Time) {
	t.closeFd(c)
	c.state = stPending
	t.pending = append(t.pending, c.idx)
	if c.reused && !c.got && !c.retried && now.Before(c.deadline) && !t.e.stopped.Load() {
		c.retried, c.retry = true, true
		return
	}
	c.retry = false
	t.t.record(t.r.measureStart, c.sched, now, c.code, c.n, err)
}

// runPending starts or retries the requests of the pending connections.
func (t *ethread) runPending(now time.Time) {
	list := t.pending
	t.pending, t.spare = t.spare[:0], list
	for _, i := range list {
		c := &t.conns[i]
		if c.state != stPending {
			continue
		}
		if c.retry {
			c.retry = false
			t.open(c, now)
		} else {
			t.start(c, now)
		}
	}
}

// expire fails the requests past their deadline and finds the next one.
func (t *ethread) expire(now time.Time) {
	t.nextCheck = time.Time{}
	for i := range t.conns {
		c := &t.conns[i]
		if c.state < stConnecting && !(c.state == stPending && c.retry) {
			continue
		}
		if !now.Before(c.deadline) {
			c.retried = true // no time left for one
			t.fail(c, t.tmo, now)
			continue
		}
		if t.nextCheck.IsZero() || c.deadline.Before(t.nextCheck) {
			t.nextCheck = c.deadline
		}
	}
}

// abort ends the thread's requests on cancellation: those in flight
// count as unfinished.
func (t *ethread) abort() {
	for i := range t.conns {
		c := &t.conns[i]
		inFlight := c.state >= stConnecting || c.state == stPending && c.retry
		if inFlight && !c.sched.Before(t.r.measureStart) {
			t.t.unfinished++
		}
		t.closeFd(c)
		c.state = stIdle
	}
	t.active = 0
}

// closeFd closes c's socket (which also takes it out of epoll).
func (t *ethread) closeFd(c *econn) {
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
	c.r, c.w, c.eof, c.out = 0, 0, false, false
}

// rawIO reads or writes (call is SYS_READ or SYS_WRITE) on a
// non-blocking socket. Such a call never blocks, so it is made without
// telling the runtime (as RawSyscall does), which costs much less than
// a system call that may block.
func rawIO(call uintptr, fd int, p []byte) (int, unix.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, e := unix.RawSyscall(call, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

// rawEpollWait is unix.EpollWait for a timeout of 0 (it does not block).
func rawEpollWait(epfd int, events []unix.EpollEvent, msec int) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(msec), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// opErr wraps a socket call's error as net does.
func (t *ethread) opErr(op, call string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Addr: t.raddr, Err: os.NewSyscallError(call, err)}
}

// flush publishes the thread's counts for Progress.
func (t *ethread) flush(now time.Time) {
	t.lastFlush = now
	r := t.r
	if d := t.t.completed - t.t.publishedDone; d > 0 {
		r.completed.Add(d)
		t.t.publishedDone = t.t.completed
	}
	if d := t.t.failed - t.t.publishedFails; d > 0 {
		r.failed.Add(d)
		t.t.publishedFails = t.t.failed
	}
}

// merge adds the thread's tally to the run's; the thread has ended.
func (t *ethread) merge() {
	r, s := t.r, &t.t
	t.flush(time.Now())
	r.hist.merge(s.hist)
	r.bytes.Add(s.bytes)
	r.non2xx.Add(s.non2xx)
	r.unfinished.Add(s.unfinished)
	for i, n := range s.status {
		if n > 0 {
			r.status[i].Add(n)
		}
	}
	for k, n := range s.errs {
		if n > 0 {
			r.errs[k].Add(n)
		}
		if s.errSample[k] != "" && r.errSample[k].Load() == nil {
			msg := s.errSample[k]
			r.errSample[k].CompareAndSwap(nil, &msg)
		}
	}
	for cur := r.lastDone.Load(); s.lastDone > cur && !r.lastDone.CompareAndSwap(cur, s.lastDone); cur = r.lastDone.Load() {
	}
}

// record counts one request started at sched and ended at done, as
// run.do does for the goroutine engine.
func (s *tally) record(measureStart, sched, done time.Time, code int, n int64, err error) {
	if sched.Before(measureStart) {
		return
	}
	s.hist.Record(done.Sub(sched))
	s.completed++
	s.bytes += uint64(n)
	ok := err == nil
	if code != 0 {
		if code < 200 || code > 299 {
			s.non2xx++
			ok = false
		}
		if code < 0 || code >= maxStatus {
			code = 0
		}
		s.status[code]++
	}
	if err != nil {
		k := classify(err)
		s.errs[k]++
		if s.errSample[k] == "" {
			s.errSample[k] = err.Error()
		}
	}
	if !ok {
		s.failed++
	}
	if at := int64(done.Sub(measureStart)); at > s.lastDone {
		s.lastDone = at
	}
}
