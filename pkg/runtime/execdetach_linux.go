package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthsh/berth/pkg/errdefs"
)

// ExecDetached starts a process in the running container idOrName and
// returns once it runs (docker exec -d). Its output is discarded; the
// container's supervisor reaps it.
func (m *Manager) ExecDetached(ctx context.Context, idOrName string, opts ExecOptions) error {
	c, err := m.Get(ctx, idOrName)
	if err != nil {
		return err
	}
	if !c.State.Running || c.State.Restarting {
		return fmt.Errorf("container %s is not running: %w", c.ShortID(), errdefs.ErrConflict)
	}
	if c.State.Paused {
		return fmt.Errorf("container %s is paused, unpause the container before exec: %w", c.ShortID(), errdefs.ErrConflict)
	}
	if _, err := callSupervisor(ctx, c.Dir, request{Op: opExec, Exec: &opts, Detach: true}); err != nil {
		if errors.Is(err, errNoSupervisor) {
			return fmt.Errorf("container %s is not running: %w", c.ShortID(), errdefs.ErrConflict)
		}
		return fmt.Errorf("exec in container %s: %w", c.ShortID(), err)
	}
	return nil
}

// execDetached starts sp in c with no client attached and reaps it in the
// background.
func (s *supervisor) execDetached(ctx context.Context, c *RuncContainer, sp *specs.Process) response {
	var p *Process
	var err error
	if sp.Terminal {
		var console *os.File
		p, console, err = c.ExecTerminal(ctx, sp)
		if err == nil {
			go func() {
				_, _ = io.Copy(io.Discard, console)
				_ = console.Close()
			}()
		}
	} else {
		p, err = c.Exec(ctx, sp, Stdio{})
	}
	if err != nil {
		return errResponse(err)
	}
	go func() {
		if _, err := p.Wait(context.Background()); err != nil {
			s.logf("exec -d: %v", err)
		}
	}()
	return response{OK: true}
}
