package cli

import (
	"strings"
	"testing"
)

// TestExecDetached checks that exec -d returns at once, leaves the process
// running in the container, and reports a command that cannot start.
func TestExecDetached(t *testing.T) {
	e := newCtrEnv(t)
	e.must("run", "-d", "--name", "bg", "mini:1", "sleep", "300")
	if out := e.must("exec", "-d", "bg", "sh", "-c", "echo started > /tmp/marker; sleep 30"); out != "" {
		t.Errorf("exec -d printed %q, want nothing", out)
	}
	eventually(t, "the detached process writes its marker", func() bool {
		out, _, code := e.berth("", "exec", "bg", "cat", "/tmp/marker")
		return code == 0 && strings.TrimSpace(out) == "started"
	})
	// The detached process is still running after exec -d returned.
	top := e.must("top", "bg")
	if !strings.Contains(top, "sleep 30") {
		t.Errorf("top does not show the detached process:\n%s", top)
	}
	_, errOut, code := e.berth("", "exec", "-d", "bg", "/no/such/command")
	if code != 127 || !strings.Contains(errOut, "/no/such/command") {
		t.Errorf("exec -d of a missing command: exit %d, %q; want 127 naming it", code, errOut)
	}
	e.must("stop", "-t", "0", "bg")
	if _, errOut, code := e.berth("", "exec", "-d", "bg", "true"); code == 0 || !strings.Contains(errOut, "not running") {
		t.Errorf("exec -d in a stopped container: exit %d, %q", code, errOut)
	}
}
