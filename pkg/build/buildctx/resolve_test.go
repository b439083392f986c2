package buildctx

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/berthsh/berth/pkg/errdefs"
)

func TestDockerignore(t *testing.T) {
	files := tree{
		"Dockerfile":           "FROM scratch\n",
		"app.py":               "print()",
		"README.md":            "# hi",
		"docs/a.md":            "a",
		"docs/keep.md":         "k",
		"src/pkg/__pycache__/": "",
		"src/pkg/mod.py":       "m",
		"src/pkg/mod.pyc":      "c",
		"deep/x/y/z.pyc":       "c",
		".venv/bin/python":     "elf",
		".git/HEAD":            "ref",
	}
	tests := []struct {
		name        string
		ignore      string // .dockerignore
		dfIgnore    string // Dockerfile.dockerignore, if not empty
		visible     []string
		invisible   []string
		dockerfile2 bool // Dockerfile listed: still readable
	}{
		{
			name:      "no ignore file",
			visible:   []string{"app.py", ".venv/bin/python", "Dockerfile"},
			invisible: nil,
		},
		{
			name:      "plain names and directories",
			ignore:    ".venv\n.git\n# comment\n\nREADME.md\n",
			visible:   []string{"app.py", "docs/a.md"},
			invisible: []string{".venv/bin/python", ".venv", ".git/HEAD", "README.md"},
		},
		{
			name:      "double star",
			ignore:    "**/*.pyc\n",
			visible:   []string{"src/pkg/mod.py"},
			invisible: []string{"src/pkg/mod.pyc", "deep/x/y/z.pyc"},
		},
		{
			name:      "exception",
			ignore:    "*.md\ndocs\n!docs/keep.md\n",
			visible:   []string{"docs/keep.md", "app.py"},
			invisible: []string{"README.md", "docs/a.md"},
		},
		{
			name:      "last match wins",
			ignore:    "!app.py\napp.py\n",
			invisible: []string{"app.py"},
		},
		{
			name:        "Dockerfile and ignore file can be excluded but the Dockerfile is read",
			ignore:      "Dockerfile\n.dockerignore\n",
			invisible:   []string{"Dockerfile", ".dockerignore"},
			dockerfile2: true,
		},
		{
			name:      "Dockerfile.dockerignore takes precedence",
			ignore:    "app.py\n",
			dfIgnore:  "README.md\n",
			visible:   []string{"app.py"},
			invisible: []string{"README.md"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, files)
			if tt.ignore != "" {
				writeTree(t, dir, tree{".dockerignore": tt.ignore})
			}
			if tt.dfIgnore != "" {
				writeTree(t, dir, tree{"Dockerfile.dockerignore": tt.dfIgnore})
			}
			c, err := Open(dir, "")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if tt.dfIgnore != "" && c.IgnoreFile() != filepath.Join(dir, "Dockerfile.dockerignore") {
				t.Errorf("IgnoreFile() = %q", c.IgnoreFile())
			}
			for _, p := range tt.visible {
				if _, err := c.Resolve([]string{p}); err != nil {
					t.Errorf("Resolve(%q): %v", p, err)
				}
			}
			for _, p := range tt.invisible {
				_, err := c.Resolve([]string{p})
				if !errors.Is(err, errdefs.ErrNotFound) {
					t.Errorf("Resolve(%q) = %v, want not found", p, err)
				}
			}
			df, err := c.Dockerfile()
			if err != nil || string(df) != "FROM scratch\n" {
				t.Errorf("Dockerfile() = %q, %v", df, err)
			}
		})
	}
}

func TestDockerignoreNextToDockerfile(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, tree{"a": "", "b": "", ".dockerignore": "a\n", "build/prod.Dockerfile": "FROM x", "build/prod.Dockerfile.dockerignore": "b\n"})
	c, err := Open(dir, filepath.Join(dir, "build/prod.Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.IgnorePatterns(); !reflect.DeepEqual(got, []string{"b"}) {
		t.Errorf("patterns = %q, want [b]", got)
	}
	if _, err := c.Resolve([]string{"a"}); err != nil {
		t.Errorf("a: %v", err)
	}
	if _, err := c.Resolve([]string{"b"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("b: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, tree{"f": ""})
	if _, err := Open(filepath.Join(dir, "missing"), ""); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing dir: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "f"), ""); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("file as context: %v", err)
	}
	writeTree(t, dir, tree{".dockerignore": "!\n"})
	if _, err := Open(dir, ""); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad pattern: %v", err)
	}
}

func sourcePaths(ss []Source) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Path)
	}
	return out
}

func TestResolve(t *testing.T) {
	files := tree{
		"a.py": "", "b.py": "", "c.txt": "", ".hidden.py": "",
		"src/x.py": "", "src/y.py": "", "src/sub/z.py": "", "lib/w.py": "",
		"docs/": "", "weird[1].txt": "",
		"ignored.py": "", ".dockerignore": "ignored.py\n",
	}
	tests := []struct {
		srcs []string
		want []string
		err  string
	}{
		{srcs: []string{"a.py"}, want: []string{"a.py"}},
		{srcs: []string{"*.py"}, want: []string{".hidden.py", "a.py", "b.py"}},
		{srcs: []string{"?.py", "c.txt"}, want: []string{"a.py", "b.py", "c.txt"}},
		{srcs: []string{"*/*.py"}, want: []string{"lib/w.py", "src/x.py", "src/y.py"}},
		{srcs: []string{"src/[xy].py"}, want: []string{"src/x.py", "src/y.py"}},
		{srcs: []string{"weird\\[1\\].txt"}, want: []string{"weird[1].txt"}},
		{srcs: []string{"."}, want: []string{"."}},
		{srcs: []string{"./src/../a.py"}, want: []string{"a.py"}},
		{srcs: []string{"../a.py"}, want: []string{"a.py"}},
		{srcs: []string{"/../../src/x.py"}, want: []string{"src/x.py"}},
		{srcs: []string{"docs"}, want: []string{"docs"}},
		{srcs: []string{"nope.txt"}, err: "file not found in build context or excluded by .dockerignore: stat nope.txt: file does not exist"},
		{srcs: []string{"*.go"}, err: "file not found in build context or excluded by .dockerignore: stat *.go: file does not exist"},
		{srcs: []string{"ignored.py"}, err: "stat ignored.py: file does not exist"},
		{srcs: []string{"a.py/x"}, err: "stat a.py/x: file does not exist"},
		{srcs: []string{"src/[x.py"}, err: "bad pattern"},
	}
	c, _ := openCtx(t, files)
	for _, tt := range tests {
		t.Run(strings.Join(tt.srcs, ","), func(t *testing.T) {
			got, err := c.Resolve(tt.srcs)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p := sourcePaths(got); !reflect.DeepEqual(p, tt.want) {
				t.Errorf("got %q, want %q", p, tt.want)
			}
		})
	}
	_, err := c.Resolve([]string{"nope"})
	if !errors.Is(err, errdefs.ErrNotFound) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing source error %v does not wrap ErrNotFound", err)
	}
}

func TestResolveSymlinks(t *testing.T) {
	outside := t.TempDir()
	writeTree(t, outside, tree{"secret": "s"})
	dir := t.TempDir()
	writeTree(t, dir, tree{
		"real.txt":              "r",
		"sub/file":              "f",
		"link -> real.txt":      "",
		"dirlink -> sub":        "",
		"sub/up -> ../real.txt": "",
		"abs-in -> " + filepath.Join(dir, "real.txt"):     "",
		"esc -> ../" + filepath.Base(outside) + "/secret": "",
		"abs-out -> " + filepath.Join(outside, "secret"):  "",
		"deep -> sub/../../x":                             "",
		"loop1 -> loop2":                                  "", "loop2 -> loop1": "",
	})
	c, err := Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tests := []struct {
		src     string
		wantRel string
		wantN   int
		err     error
	}{
		{src: "link", wantRel: "real.txt"},
		{src: "dirlink/file", wantRel: "sub/file"},
		{src: "sub/up", wantRel: "real.txt"},
		{src: "abs-in", wantRel: "real.txt"},
		{src: "esc", err: errdefs.ErrInvalidArgument},
		{src: "abs-out", err: errdefs.ErrInvalidArgument},
		{src: "deep", err: errdefs.ErrInvalidArgument},
		{src: "loop1", err: errdefs.ErrInvalidArgument},
		{src: "*/file", wantRel: "sub/file", wantN: 2}, // dirlink/file and sub/file, not escdir/file
		{src: "esc*/file", err: errdefs.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			got, err := c.Resolve([]string{tt.src})
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				if tt.err == errdefs.ErrInvalidArgument && tt.src != "loop1" && !strings.Contains(err.Error(), "forbidden path outside the build context") {
					t.Errorf("err = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantN == 0 {
				tt.wantN = 1
			}
			if len(got) != tt.wantN {
				t.Fatalf("got %d sources: %v", len(got), sourcePaths(got))
			}
			for _, s := range got {
				if s.rel != tt.wantRel || s.Name != filepath.Base(tt.src) {
					t.Errorf("%s resolved to %q named %q", s.Path, s.rel, s.Name)
				}
			}
		})
	}

	// In a stage root, links resolve as in the container.
	r, err := NewRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	writeTree(t, dir, tree{"etc/passwd": "root", "p -> /etc/passwd": "", "q -> ../../../etc/passwd": ""})
	for _, src := range []string{"p", "q"} {
		got, err := r.Resolve([]string{src})
		if err != nil || got[0].rel != "etc/passwd" {
			t.Errorf("root %s: %v %v", src, got, err)
		}
	}
}
