package runtime

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A container whose state.json is corrupt is skipped by listings, with a
// warning naming it; one removed meanwhile (no files) is skipped quietly.
func TestAllSkipsUnreadable(t *testing.T) {
	m := &Manager{root: t.TempDir()}
	good, bad, gone := strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64)
	for id, state := range map[string]string{good: `{"Status":"exited"}`, bad: `{"Running": tru`} {
		dir := filepath.Join(m.containersDir(), id)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, configFile), []byte(`{"ID":"`+id+`","Name":"n`+id[:1]+`"}`), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, stateFile), []byte(state), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(m.containersDir(), gone), 0o700); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logged, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })

	cs, err := m.all()
	if err != nil || len(cs) != 1 || cs[0].Config.ID != good {
		t.Fatalf("all() = %d containers, %v; want just the readable one", len(cs), err)
	}
	if !strings.Contains(logged.String(), bad) || !strings.Contains(logged.String(), "corrupt") {
		t.Errorf("no warning naming the corrupt container:\n%s", logged.String())
	}
	if strings.Contains(logged.String(), gone) {
		t.Errorf("warning for a container removed meanwhile:\n%s", logged.String())
	}
}
