package buildctx

import (
	"errors"
	"testing"

	"github.com/berthsh/berth/pkg/errdefs"
)

func TestOpenWithDefaultIgnore(t *testing.T) {
	def := []byte("# generated\n.venv\n__pycache__\n")
	tests := []struct {
		name        string
		files       tree
		wantFile    string // suffix of IgnoreFile
		wantExclude map[string]bool
	}{
		{
			name:        "no ignore file uses the default",
			files:       tree{"app.py": "", ".venv/x": ""},
			wantFile:    "(generated .dockerignore)",
			wantExclude: map[string]bool{".venv": true, "__pycache__": true, "app.py": false},
		},
		{
			name:        "the project's own file wins",
			files:       tree{"app.py": "", ".dockerignore": "secret.txt\n"},
			wantFile:    "/.dockerignore",
			wantExclude: map[string]bool{".venv": false, "secret.txt": true, "app.py": false},
		},
		{
			name:        "an empty project file still wins",
			files:       tree{".dockerignore": ""},
			wantFile:    "/.dockerignore",
			wantExclude: map[string]bool{".venv": false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, tt.files)
			c, err := OpenWithDefaultIgnore(dir, "", def)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := c.IgnoreFile(); len(got) < len(tt.wantFile) || got[len(got)-len(tt.wantFile):] != tt.wantFile {
				t.Errorf("IgnoreFile() = %q, want suffix %q", got, tt.wantFile)
			}
			for p, want := range tt.wantExclude {
				if got := c.Excluded(p); got != want {
					t.Errorf("Excluded(%q) = %t, want %t", p, got, want)
				}
			}
		})
	}
}

func TestOpenWithDefaultIgnoreBadPattern(t *testing.T) {
	_, err := OpenWithDefaultIgnore(t.TempDir(), "", []byte("[\n"))
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("err = %v, want ErrInvalidArgument", err)
	}
}
