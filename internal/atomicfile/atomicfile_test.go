package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		write func(string, []byte, os.FileMode) error
	}{
		{"WriteFile", WriteFile},
		{"WriteFileNoDirSync", WriteFileNoDirSync},
		{"WriteFileNoSync", WriteFileNoSync},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			p := filepath.Join(dir, "state.json")
			for _, content := range []string{"one", "two, longer"} {
				if err := tc.write(p, []byte(content), 0o640); err != nil {
					t.Fatal(err)
				}
				got, err := os.ReadFile(p)
				if err != nil || string(got) != content {
					t.Fatalf("read %q, %v; want %q", got, err, content)
				}
			}
			fi, _ := os.Stat(p)
			if fi.Mode().Perm() != 0o640 {
				t.Errorf("mode %v, want 0640", fi.Mode().Perm())
			}
			if left, _ := filepath.Glob(TempPattern(p)); len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
			if err := tc.write(filepath.Join(dir, "missing", "x"), nil, 0o644); err == nil {
				t.Error("write into a missing directory succeeded")
			}
			// The rename fails (path is a non-empty directory): the error is
			// returned and the temporary file removed.
			sub := filepath.Join(dir, "sub")
			if err := os.MkdirAll(filepath.Join(sub, "child"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := tc.write(sub, []byte("x"), 0o644); err == nil {
				t.Error("write over a non-empty directory succeeded")
			}
			if left, _ := filepath.Glob(TempPattern(sub)); len(left) != 0 {
				t.Errorf("temporary files left after a failed rename: %v", left)
			}
		})
	}
}
