package cli

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// TestSystemReset runs a container with a published port, resets the data
// directory, and checks that nothing of it is left: the directory, the
// container's process, the network's bridge.
func TestSystemReset(t *testing.T) {
	e := newCtrEnv(t)
	e.must("run", "-d", "--name", "r1", "-p", "127.0.0.1::80", "mini:1", "sleep", "300")
	var bridges []string
	files, _ := filepath.Glob(filepath.Join(e.root, "networks", "*.json"))
	for _, f := range files {
		var st struct{ Network struct{ Bridge string } }
		if b, err := os.ReadFile(f); err == nil && json.Unmarshal(b, &st) == nil && st.Network.Bridge != "" {
			bridges = append(bridges, st.Network.Bridge)
		}
	}
	if len(bridges) == 0 {
		t.Fatal("no network state found after run")
	}
	if _, errOut, code := e.berth("", "system", "reset"); code == 0 {
		t.Fatalf("reset without -f and no confirmation succeeded: %s", errOut)
	}
	e.must("system", "reset", "-f")
	if _, err := os.Stat(e.root); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("data directory still there: %v", err)
	}
	for _, br := range bridges {
		if _, err := net.InterfaceByName(br); err == nil {
			t.Errorf("bridge %s survived the reset", br)
		}
	}
}
