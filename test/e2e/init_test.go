package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/berthsh/berth/internal/testutil"
)

// TestRunInit checks --init with the real binary as the container's
// /sbin/docker-init: the command is not PID 1, and SIGTERM, which a shell
// or sleep as PID 1 would ignore, reaches it, so stop is prompt and the
// exit code is 143. Without --init the same stop waits for the timeout.
func TestRunInit(t *testing.T) {
	testutil.RequiresRoot(t)
	b := newBerth(t)
	t.Cleanup(func() {
		// t.Context is already done in cleanups.
		b.run(context.Background(), nil, "system", "reset", "-f")
	})
	b.ok(t, "import", testutil.BaseTarball(t, testutil.BaseMinimal), "mini:1")

	if pid := strings.TrimSpace(b.ok(t, "run", "--rm", "mini:1", "sh", "-c", "echo $$")); pid != "1" {
		t.Fatalf("without --init the command is PID %q, want 1", pid)
	}
	if pid := strings.TrimSpace(b.ok(t, "run", "--rm", "--init", "mini:1", "sh", "-c", "echo $$")); pid == "1" || pid == "" {
		t.Fatalf("with --init the command is PID %q, want another", pid)
	}

	b.ok(t, "run", "-d", "--init", "--name", "with-init", "mini:1", "sleep", "300")
	start := time.Now()
	b.ok(t, "stop", "-t", "20", "with-init")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("stop with --init took %v: SIGTERM did not reach the command", d)
	}
	if code := strings.TrimSpace(b.ok(t, "inspect", "-f", "{{.State.ExitCode}}", "with-init")); code != "143" {
		t.Errorf("exit code with --init: %s, want 143", code)
	}

	b.ok(t, "run", "-d", "--name", "no-init", "mini:1", "sleep", "300")
	start = time.Now()
	b.ok(t, "stop", "-t", "2", "no-init")
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("stop without --init took only %v: the check above proves nothing", d)
	}
	if code := strings.TrimSpace(b.ok(t, "inspect", "-f", "{{.State.ExitCode}}", "no-init")); code != "137" {
		t.Errorf("exit code without --init: %s, want 137", code)
	}
}
