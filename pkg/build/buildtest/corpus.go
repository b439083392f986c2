package buildtest

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/berthsh/berth/pkg/build/buildctx"
)

// ExpectFile is the name of a case's expectations in its directory; it is
// not part of the build context.
const ExpectFile = "expect.json"

// BaseImage is the name corpus Dockerfiles use for the base image (a Debian
// root file system with busybox, see SlimBase).
const BaseImage = "berth-test/base:1"

// Case is one Dockerfile of the corpus.
type Case struct {
	// Name is the directory's name ("07-copy-wildcards").
	Name string
	// Dir is the case's directory.
	Dir    string
	Expect Expect
}

// Expect is a case's expect.json.
type Expect struct {
	// Description says what the case covers.
	Description string `json:"description"`
	// Dockerfile is the Dockerfile's path in the context ("" is
	// "Dockerfile").
	Dockerfile string            `json:"dockerfile,omitempty"`
	BuildArgs  map[string]string `json:"buildArgs,omitempty"`
	Target     string            `json:"target,omitempty"`
	// Secrets are RUN --mount=type=secret contents by id; tests write each
	// to a file outside the context.
	Secrets map[string]string `json:"secrets,omitempty"`
	// Network is the RUN network ("" is the default).
	Network string `json:"network,omitempty"`
	// Error, when set, is a text the build error must contain: the build
	// must fail.
	Error string `json:"error,omitempty"`
	// Docker is why the case is left out of the differential test against
	// Docker 20.10's builder, "" when it is part of it.
	DockerSkip string `json:"dockerSkip,omitempty"`
	// Config holds the image config fields to check, by their JSON name
	// ("Cmd", "Env", "ExposedPorts", ...); null means empty or unset.
	Config map[string]json.RawMessage `json:"config,omitempty"`
	// Files are paths of the merged file tree and what they must be.
	Files map[string]File `json:"files,omitempty"`
	// Absent are paths that must not exist in the merged tree.
	Absent []string `json:"absent,omitempty"`
	// Whiteouts are paths some layer over the base must delete (a ".wh."
	// entry, or an opaque directory marker for "DIR/").
	Whiteouts []string `json:"whiteouts,omitempty"`
	// Layers, when set, is how many layers the build adds over the base.
	Layers *int `json:"layers,omitempty"`
}

// File is what a path must be; unset fields are not checked.
type File struct {
	// Type is "file", "dir" or "symlink".
	Type string `json:"type,omitempty"`
	// Mode is the permission bits in octal ("0644"), setuid and friends
	// included.
	Mode    string  `json:"mode,omitempty"`
	UID     *int    `json:"uid,omitempty"`
	GID     *int    `json:"gid,omitempty"`
	Content *string `json:"content,omitempty"`
	// Link is a symbolic link's target.
	Link string `json:"link,omitempty"`
}

// LoadCorpus reads every case under dir, in name order.
func LoadCorpus(dir string) ([]Case, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	var cases []Case
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		c := Case{Name: e.Name(), Dir: filepath.Join(dir, e.Name())}
		data, err := os.ReadFile(filepath.Join(c.Dir, ExpectFile))
		if err != nil {
			return nil, fmt.Errorf("corpus case %s: %w", c.Name, err)
		}
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c.Expect); err != nil {
			return nil, fmt.Errorf("corpus case %s: %s: %w", c.Name, ExpectFile, err)
		}
		cases = append(cases, c)
	}
	sort.Slice(cases, func(i, j int) bool { return cases[i].Name < cases[j].Name })
	return cases, nil
}

// WriteContext copies the case's files (all but expect.json) into dst, an
// empty directory: directories 0755, files 0644 or 0755 when executable by
// their owner in the checkout, symbolic links as they are.
func (c Case) WriteContext(dst string) error {
	return filepath.WalkDir(c.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(c.Dir, p)
		if err != nil {
			return err
		}
		if rel == "." || rel == ExpectFile {
			return nil
		}
		out := filepath.Join(dst, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, out)
		case d.IsDir():
			if err := os.Mkdir(out, 0o755); err != nil {
				return err
			}
			return os.Chmod(out, 0o755)
		default:
			info, err := d.Info()
			if err != nil {
				return err
			}
			mode := os.FileMode(0o644)
			if info.Mode()&0o100 != 0 {
				mode = 0o755
			}
			return buildctx.CopyFile(p, out, mode)
		}
	})
}

// DockerfilePath is the Dockerfile's path in a context written by
// WriteContext.
func (c Case) DockerfilePath(ctxDir string) string {
	if c.Expect.Dockerfile != "" {
		return filepath.Join(ctxDir, c.Expect.Dockerfile)
	}
	return filepath.Join(ctxDir, "Dockerfile")
}
