package runtime

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthsh/berth/internal/testutil"
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

// Exit records: a full ID is found without reading the others, a name or
// prefix by scanning; pruning removes only expired records.
func TestExitRecords(t *testing.T) {
	m := &Manager{root: t.TempDir()}
	if err := os.MkdirAll(filepath.Join(m.containersDir(), exitRecordDir), 0o700); err != nil {
		t.Fatal(err)
	}
	id := func(i int) string { return fmt.Sprintf("%04x%060x", i+1, 0) }
	for i := range 200 {
		if err := m.writeExitRecord(id(i), fmt.Sprintf("name%d", i), i%256); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		key    string
		wantID string
		code   int
		found  bool
	}{
		{key: id(150), wantID: id(150), code: 150, found: true},
		{key: "name42", wantID: id(42), code: 42, found: true},
		{key: id(7)[:6], wantID: id(7), code: 7, found: true},
		{key: fmt.Sprintf("%064x", 9999), found: false},
		{key: "nosuch", found: false},
	} {
		r, ok := m.findExitRecord(tc.key)
		if ok != tc.found || (ok && (r.ID != tc.wantID || r.ExitCode != tc.code)) {
			t.Errorf("findExitRecord(%q) = %+v, %v; want ID %s code %d found %v", tc.key, r, ok, tc.wantID, tc.code, tc.found)
		}
	}
	// A record whose file name and content disagree is not trusted.
	other := filepath.Join(m.containersDir(), exitRecordDir, id(300))
	if err := os.WriteFile(other, []byte(`{"Id":"`+id(1)+`","ExitCode":3}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if r, ok := m.findExitRecord(id(300)); ok {
		t.Errorf("mismatched record found: %+v", r)
	}

	old := time.Now().Add(-exitRecordTTL - time.Minute)
	for i := range 50 {
		if err := os.Chtimes(filepath.Join(m.containersDir(), exitRecordDir, id(i)), old, old); err != nil {
			t.Fatal(err)
		}
	}
	m.pruneExitRecords()
	if _, ok := m.findExitRecord(id(10)); ok {
		t.Error("an expired record survived pruning")
	}
	if _, ok := m.findExitRecord(id(60)); !ok {
		t.Error("a fresh record was pruned")
	}
}

// cleanLeftovers leaves a recently renamed .rm-* or .tmp-* directory to
// the process working on it, and deletes old ones.
func TestCleanLeftoversAge(t *testing.T) {
	m := &Manager{root: t.TempDir()}
	dirs := []string{".rm-" + strings.Repeat("d", 64), ".tmp-" + strings.Repeat("e", 64)}
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(m.containersDir(), d, "upper"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	m.cleanLeftovers()
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(m.containersDir(), d)); err != nil {
			t.Errorf("%s removed while fresh: %v", d, err)
		}
	}
	testutil.RequiresRoot(t) // unmounting (a no-op here) needs root
	defer func(a time.Duration) { leftoverAge = a }(leftoverAge)
	leftoverAge = -time.Hour
	m.cleanLeftovers()
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(m.containersDir(), d)); !os.IsNotExist(err) {
			t.Errorf("%s not removed once old: %v", d, err)
		}
	}
}
