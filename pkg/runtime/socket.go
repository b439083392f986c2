package runtime

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/berthsh/berth/pkg/errdefs"
)

// The supervisor's socket protocol: one request per connection, a JSON
// line each way, then for attach and exec a stream of frames:
// [1 byte stream][4 bytes big-endian length][payload].

// Supervisor operations.
const (
	opAttach = "attach"
	opWait   = "wait"
	opStop   = "stop"
	opKill   = "kill"
	opExec   = "exec"
	opResize = "resize"
)

// Frame streams.
const (
	streamStdin  byte = 0
	streamStdout byte = 1
	streamStderr byte = 2
	streamExit   byte = 3 // payload: 4-byte big-endian exit code
	streamResize byte = 4 // payload: 2-byte width, 2-byte height
	streamClose  byte = 5 // client to supervisor: stdin ended
)

// maxFrame bounds a frame's payload.
const maxFrame = 1 << 20

type request struct {
	Op string `json:"op"`
	// Wait: the condition (WaitNextExit or WaitNotRunning).
	Condition string `json:"condition,omitempty"`
	// Stop, kill: the signal; stop: the timeout in milliseconds (<0: none).
	Signal    int   `json:"signal,omitempty"`
	TimeoutMS int64 `json:"timeoutMs,omitempty"`
	// Attach: which streams, and whether to replay recent output.
	Stdin  bool `json:"stdin,omitempty"`
	Stdout bool `json:"stdout,omitempty"`
	Stderr bool `json:"stderr,omitempty"`
	Logs   bool `json:"logs,omitempty"`
	// Exec: the process; Detach starts it in the background (exec -d):
	// the supervisor answers once it runs and discards its output.
	Exec   *ExecOptions `json:"exec,omitempty"`
	Detach bool         `json:"detach,omitempty"`
	// Resize.
	Width  uint16 `json:"width,omitempty"`
	Height uint16 `json:"height,omitempty"`
}

type response struct {
	OK       bool   `json:"ok,omitempty"`
	Error    string `json:"error,omitempty"`
	Kind     string `json:"kind,omitempty"`
	ExitCode int    `json:"exitCode,omitempty"`
	Tty      bool   `json:"tty,omitempty"`
}

var errKinds = []struct {
	kind string
	err  error
}{
	{"not_found", errdefs.ErrNotFound},
	{"conflict", errdefs.ErrConflict},
	{"invalid", errdefs.ErrInvalidArgument},
	{"permission", errdefs.ErrPermission},
	{"exists", errdefs.ErrAlreadyExists},
	{"unavailable", errdefs.ErrUnavailable},
	{"not_implemented", errdefs.ErrNotImplemented},
	{"corrupt", errdefs.ErrDataCorrupt},
}

func errResponse(err error) response {
	r := response{Error: err.Error()}
	for _, k := range errKinds {
		if errors.Is(err, k.err) {
			r.Kind = k.kind
			break
		}
	}
	return r
}

// remoteError is an error reported by a supervisor, classified again.
type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }

func (r response) err() error {
	if r.OK {
		return nil
	}
	if r.Error == "" {
		r.Error = "supervisor gave no answer"
	}
	e := &remoteError{msg: r.Error}
	for _, k := range errKinds {
		if k.kind == r.Kind {
			e.kind = k.err
		}
	}
	return e
}

// socketAddr returns a short path naming dir/name through an open
// directory descriptor (unix socket paths are limited to 108 bytes) and
// the descriptor, which must stay open while the path is used.
func socketAddr(dir, name string) (string, *os.File, error) {
	p := filepath.Join(dir, name)
	if len(p) < 100 {
		return p, nil, nil
	}
	d, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("/proc/self/fd/%d/%s", d.Fd(), name), d, nil
}

// errNoSupervisor means the container's supervisor does not answer.
var errNoSupervisor = errors.New("the container's supervisor is not running")

// dialSupervisor connects to the supervisor of the container in dir and
// sends req; it returns the connection, a reader positioned after the
// response line, and the response.
func dialSupervisor(ctx context.Context, dir string, req request) (net.Conn, *bufio.Reader, error) {
	addr, d, err := socketAddr(dir, supervisorSock)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", errNoSupervisor, err)
	}
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "unix", addr)
	if d != nil {
		d.Close()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", errNoSupervisor, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("%w: %v", errNoSupervisor, err)
	}
	br := bufio.NewReader(conn)
	resp, err := readResponse(br)
	if err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, fmt.Errorf("%w: %v", errNoSupervisor, err)
	}
	if err := resp.err(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, br, nil
}

// callSupervisor sends one request and returns its response, closing the
// connection.
func callSupervisor(ctx context.Context, dir string, req request) (response, error) {
	addr, d, err := socketAddr(dir, supervisorSock)
	if err != nil {
		return response{}, fmt.Errorf("%w: %v", errNoSupervisor, err)
	}
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "unix", addr)
	if d != nil {
		d.Close()
	}
	if err != nil {
		return response{}, fmt.Errorf("%w: %v", errNoSupervisor, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return response{}, fmt.Errorf("%w: %v", errNoSupervisor, err)
	}
	resp, err := readResponse(bufio.NewReader(conn))
	if err != nil {
		if ctx.Err() != nil {
			return response{}, ctx.Err()
		}
		return response{}, fmt.Errorf("%w: %v", errNoSupervisor, err)
	}
	return resp, resp.err()
}

func readResponse(br *bufio.Reader) (response, error) {
	line, err := br.ReadBytes('\n')
	if err != nil {
		return response{}, err
	}
	var r response
	if err := json.Unmarshal(line, &r); err != nil {
		return response{}, fmt.Errorf("bad response from supervisor: %w", err)
	}
	return r, nil
}

// frameWriter writes frames; safe for concurrent use.
type frameWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (f *frameWriter) frame(stream byte, p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(p) > 0 || stream == streamClose || stream == streamExit || stream == streamResize {
		n := min(len(p), maxFrame)
		hdr := make([]byte, 5, 5+n)
		hdr[0] = stream
		binary.BigEndian.PutUint32(hdr[1:], uint32(n))
		if _, err := f.w.Write(append(hdr, p[:n]...)); err != nil {
			return err
		}
		p = p[n:]
		if len(p) == 0 {
			break
		}
	}
	return nil
}

// streamWriter is an io.Writer sending frames of one stream.
type streamWriter struct {
	fw     *frameWriter
	stream byte
}

func (s streamWriter) Write(p []byte) (int, error) {
	if err := s.fw.frame(s.stream, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func readFrame(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("frame of %d bytes is too large: %w", n, errdefs.ErrDataCorrupt)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, err
	}
	return hdr[0], p, nil
}

func exitPayload(code int) []byte {
	return binary.BigEndian.AppendUint32(nil, uint32(int32(code)))
}

func resizePayload(w, h uint16) []byte {
	b := binary.BigEndian.AppendUint16(nil, w)
	return binary.BigEndian.AppendUint16(b, h)
}
