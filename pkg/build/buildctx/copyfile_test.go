package buildctx

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestCopyFile(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o755, 0o777} {
		dst := filepath.Join(dir, "dst-"+mode.String())
		if err := CopyFile(src, dst, mode); err != nil {
			t.Fatalf("CopyFile(%v): %v", mode, err)
		}
		got, err := os.ReadFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "hello\n" {
			t.Errorf("content %q, want %q", got, "hello\n")
		}
		fi, err := os.Stat(dst)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("mode %v, want %v (the umask must not narrow it)", fi.Mode().Perm(), mode)
		}
	}
	// dst exists: refused, and the existing file is left alone.
	dst := filepath.Join(dir, "exists")
	if err := os.WriteFile(dst, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CopyFile(src, dst, 0o644); !errors.Is(err, fs.ErrExist) {
		t.Errorf("CopyFile onto an existing file: %v, want fs.ErrExist", err)
	}
	if got, _ := os.ReadFile(dst); string(got) != "old" {
		t.Errorf("existing file now %q, want it untouched", got)
	}
	if err := CopyFile(filepath.Join(dir, "missing"), filepath.Join(dir, "x"), 0o644); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("CopyFile of a missing file: %v, want fs.ErrNotExist", err)
	}
}
