package buildctx

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tree describes files to create: "dir/" is a directory, "a -> b" a
// symbolic link, anything else a file with the given content.
type tree map[string]string

func writeTree(t *testing.T, dir string, files tree) {
	t.Helper()
	for name, content := range files {
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(filepath.Join(dir, name), 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if link, target, ok := strings.Cut(name, " -> "); ok {
			p := filepath.Join(dir, link)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o644); err != nil { // whatever the umask
			t.Fatal(err)
		}
	}
}

func openCtx(t *testing.T, files tree) (*Context, string) {
	t.Helper()
	dir := t.TempDir()
	writeTree(t, dir, files)
	c, err := Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, dir
}

type tarEntry struct {
	hdr  *tar.Header
	body string
}

func readTar(t *testing.T, b []byte) []tarEntry {
	t.Helper()
	var out []tarEntry
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarEntry{h, string(body)})
	}
}

func names(es []tarEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.hdr.Name)
	}
	return out
}

func entryPaths(es []Entry) []string {
	var out []string
	for _, e := range es {
		s := e.Path
		if e.Type == tar.TypeDir {
			s += "/"
		}
		if e.Archive {
			s += " (archive)"
		}
		out = append(out, s)
	}
	return out
}

// copyLayer resolves, plans and writes one COPY.
func copyLayer(t *testing.T, c *Context, srcs []string, dest string, opts CopyOptions, lo LayerOptions) ([]Entry, []byte) {
	t.Helper()
	ctx := context.Background()
	s, err := c.Resolve(srcs)
	if err != nil {
		t.Fatal(err)
	}
	es, err := Plan(ctx, s, dest, opts)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteLayer(ctx, es, &buf, lo); err != nil {
		t.Fatal(err)
	}
	return es, buf.Bytes()
}
