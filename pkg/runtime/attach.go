package runtime

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/berthsh/berth/pkg/errdefs"
)

// defaultDetachKeys is docker's detach sequence, ctrl-p ctrl-q.
const defaultDetachKeys = "ctrl-p,ctrl-q"

// parseDetachKeys reads docker's --detach-keys ("ctrl-p,ctrl-q", "a,b").
func parseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		s = defaultDetachKeys
	}
	var out []byte
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case strings.HasPrefix(k, "ctrl-") && len(k) == 6:
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				out = append(out, c-'a'+1)
			case c == '@':
				out = append(out, 0)
			case c >= '[' && c <= '_':
				out = append(out, c-'['+27)
			default:
				return nil, fmt.Errorf("invalid detach key %q: %w", k, errdefs.ErrInvalidArgument)
			}
		default:
			return nil, fmt.Errorf("invalid detach keys %q: use a comma-separated list such as ctrl-p,ctrl-q: %w", s, errdefs.ErrInvalidArgument)
		}
	}
	return out, nil
}

// errDetached ends stdin forwarding when the detach keys were typed.
var errDetached = errors.New("detached")

// pumpStreams relays an attach or exec connection: frames to s.Stdout and
// s.Stderr, s.Stdin and s.Resize to the supervisor. It returns the exit
// code when the supervisor sent one.
func pumpStreams(ctx context.Context, conn net.Conn, br *bufio.Reader, s AttachStreams) (code int, gotExit bool, err error) {
	defer conn.Close()
	fw := &frameWriter{w: conn}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	var keys []byte
	if s.Tty && s.Stdin != nil {
		if keys, err = parseDetachKeys(s.DetachKeys); err != nil {
			return 0, false, err
		}
	}
	detached := make(chan struct{})
	if s.Stdin != nil {
		go func() {
			err := copyStdin(streamWriter{fw, streamStdin}, s.Stdin, keys)
			if errors.Is(err, errDetached) {
				close(detached)
				_ = conn.Close()
				return
			}
			_ = fw.frame(streamClose, nil)
		}()
	}
	done := make(chan struct{})
	defer close(done)
	if s.Resize != nil {
		go func() {
			for {
				select {
				case sz, ok := <-s.Resize:
					if !ok {
						return
					}
					_ = fw.frame(streamResize, resizePayload(sz.Width, sz.Height))
				case <-done:
					return
				}
			}
		}()
	}
	for {
		stream, p, rerr := readFrame(br)
		if rerr != nil {
			select {
			case <-detached:
				return 0, false, nil
			default:
			}
			if ctx.Err() != nil {
				return 0, false, ctx.Err()
			}
			return 0, false, nil
		}
		switch stream {
		case streamStdout:
			if s.Stdout != nil {
				_, _ = s.Stdout.Write(p)
			}
		case streamStderr:
			w := s.Stderr
			if s.Tty {
				w = s.Stdout
			}
			if w != nil {
				_, _ = w.Write(p)
			}
		case streamExit:
			if len(p) == 4 {
				return int(int32(binary.BigEndian.Uint32(p))), true, nil
			}
		}
	}
}

// copyStdin forwards r to w, watching for the detach key sequence.
func copyStdin(w io.Writer, r io.Reader, keys []byte) error {
	buf := make([]byte, 32<<10)
	matched := 0
	for {
		n, err := r.Read(buf)
		if n > 0 {
			out := buf[:n]
			if len(keys) > 0 {
				var pass []byte
				for _, b := range buf[:n] {
					if b == keys[matched] {
						matched++
						if matched == len(keys) {
							if len(pass) > 0 {
								if _, werr := w.Write(pass); werr != nil {
									return werr
								}
							}
							return errDetached
						}
						continue
					}
					if matched > 0 {
						pass = append(pass, keys[:matched]...)
						matched = 0
					}
					pass = append(pass, b)
				}
				out = pass
			}
			if len(out) > 0 {
				if _, werr := w.Write(out); werr != nil {
					return werr
				}
			}
		}
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}
