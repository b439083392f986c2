package buildctx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// maxSymlinks bounds the symbolic links followed while resolving one path,
// as the kernel does (ELOOP).
const maxSymlinks = 40

// maxDockerfileSize bounds what Context.Dockerfile reads.
const maxDockerfileSize = 32 << 20

// Context is a directory that COPY and ADD read from: a build context
// (Open) or another root file system (NewRoot). It is safe for concurrent
// use. Close releases it.
type Context struct {
	dir        string // absolute, as given
	realDir    string // dir with symbolic links resolved
	root       *os.Root
	dockerfile string
	ignoreFile string
	patterns   []string
	pm         *patternmatcher.PatternMatcher // nil: nothing excluded
	chroot     bool                           // resolve links as inside a container

	mu        sync.Mutex
	hashes    map[fileKey]string
	hashReads int // files hashed (not from the cache), for tests
}

// Open opens the build context dir. dockerfilePath is the Dockerfile (a
// relative path is relative to the working directory, as with docker build
// -f); empty means "Dockerfile" inside dir. The ignore file is
// "<dockerfilePath>.dockerignore" when it exists, else dir/.dockerignore.
// Nothing else is read.
func Open(dir string, dockerfilePath string) (*Context, error) {
	return OpenWithDefaultIgnore(dir, dockerfilePath, nil)
}

// OpenWithDefaultIgnore is Open, except that when neither ignore file
// exists and defaultIgnore is not nil, defaultIgnore (.dockerignore syntax)
// is used instead; IgnoreFile then reports "(generated .dockerignore)". It
// serves builds of generated Dockerfiles, whose generated ignore file must
// not override the project's own.
func OpenWithDefaultIgnore(dir string, dockerfilePath string, defaultIgnore []byte) (*Context, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("build context %s: directory does not exist: %w", dir, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("build context %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("build context %s: not a directory: %w", dir, errdefs.ErrInvalidArgument)
	}
	if dockerfilePath == "" {
		dockerfilePath = filepath.Join(abs, "Dockerfile")
	}
	if dockerfilePath, err = filepath.Abs(dockerfilePath); err != nil {
		return nil, fmt.Errorf("dockerfile %s: %w", dockerfilePath, err)
	}
	c, err := newContext(abs, false)
	if err != nil {
		return nil, err
	}
	c.dockerfile = dockerfilePath
	for _, name := range []string{dockerfilePath + ".dockerignore", filepath.Join(abs, ".dockerignore")} {
		f, err := os.Open(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		err = c.setIgnore(name, f)
		f.Close()
		if err != nil {
			c.Close()
			return nil, err
		}
		break
	}
	if c.ignoreFile == "" && defaultIgnore != nil {
		if err := c.setIgnore("(generated .dockerignore)", bytes.NewReader(defaultIgnore)); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// setIgnore reads the ignore file name (.dockerignore syntax) from r and
// makes it the context's.
func (c *Context) setIgnore(name string, r io.Reader) error {
	patterns, err := ignorefile.ReadAll(r)
	if err != nil {
		return fmt.Errorf("read %s: %w: %w", name, errdefs.ErrInvalidArgument, err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return fmt.Errorf("%s: bad pattern: %w: %w", name, errdefs.ErrInvalidArgument, err)
	}
	c.ignoreFile, c.patterns = name, patterns
	if len(patterns) > 0 {
		c.pm = pm
	}
	return nil
}

// NewRoot opens dir, the root file system of an earlier stage or image,
// for COPY --from. Nothing is excluded, and symbolic links are resolved as
// inside a container: absolute targets start at dir and ".." stops there.
func NewRoot(dir string) (*Context, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("root %s: %w", dir, err)
	}
	return newContext(abs, true)
}

func newContext(abs string, chroot bool) (*Context, error) {
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", abs, err)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", abs, err)
	}
	return &Context{dir: abs, realDir: real, root: root, chroot: chroot, hashes: map[fileKey]string{}}, nil
}

// Close releases the directory handle.
func (c *Context) Close() error { return c.root.Close() }

// Dir is the absolute path of the directory.
func (c *Context) Dir() string { return c.dir }

// DockerfilePath is the absolute path of the Dockerfile ("" for NewRoot).
func (c *Context) DockerfilePath() string { return c.dockerfile }

// IgnoreFile is the ignore file in use, "" when there is none.
func (c *Context) IgnoreFile() string { return c.ignoreFile }

// IgnorePatterns are the patterns read from the ignore file.
func (c *Context) IgnorePatterns() []string { return append([]string(nil), c.patterns...) }

// Dockerfile reads the Dockerfile. It is read even when the ignore file
// excludes it.
func (c *Context) Dockerfile() ([]byte, error) {
	if c.dockerfile == "" {
		return nil, fmt.Errorf("%s is not a build context: %w", c.dir, errdefs.ErrInvalidArgument)
	}
	f, err := os.Open(c.dockerfile)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("dockerfile %s: no such file: %w", c.dockerfile, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("dockerfile %s: %w", c.dockerfile, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxDockerfileSize+1))
	if err != nil {
		return nil, fmt.Errorf("dockerfile %s: %w", c.dockerfile, err)
	}
	if len(b) > maxDockerfileSize {
		return nil, fmt.Errorf("dockerfile %s: larger than %d bytes: %w", c.dockerfile, maxDockerfileSize, errdefs.ErrInvalidArgument)
	}
	return b, nil
}

// Excluded reports whether the ignore file excludes rel (a slash-separated
// path relative to the root).
func (c *Context) Excluded(rel string) bool {
	if c.pm == nil {
		return false
	}
	rel = cleanRel(rel)
	if rel == "." {
		return false
	}
	ok, err := c.pm.MatchesOrParentMatches(filepath.FromSlash(rel))
	return err == nil && ok
}

// cleanRel cleans p against the root: the result is relative, without
// "..", "." for the root itself.
func cleanRel(p string) string {
	p = path.Clean("/" + filepath.ToSlash(p))
	if p == "/" {
		return "."
	}
	return p[1:]
}

// errOutside is returned for a symbolic link leading out of a build context.
func (c *Context) errOutside(src string) error {
	return fmt.Errorf("%s: forbidden path outside the build context: %w", src, errdefs.ErrInvalidArgument)
}

// resolve follows symbolic links in rel (and in its last component when
// followLast) inside the root and returns the path with no links in it,
// with its Lstat information. src names the source in errors.
func (c *Context) resolve(src, rel string, followLast bool) (string, fs.FileInfo, error) {
	todo := splitPath(cleanRel(rel))
	cur := "."
	links := 0
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			if cur == "." {
				if !c.chroot {
					return "", nil, c.errOutside(src)
				}
				continue
			}
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, name)
		fi, err := c.root.Lstat(next)
		if err != nil {
			return "", nil, err
		}
		if fi.Mode()&fs.ModeSymlink != 0 && (len(todo) > 0 || followLast) {
			links++
			if links > maxSymlinks {
				return "", nil, fmt.Errorf("%s: too many levels of symbolic links: %w", src, errdefs.ErrInvalidArgument)
			}
			target, err := c.root.Readlink(next)
			if err != nil {
				return "", nil, err
			}
			if strings.HasPrefix(target, "/") {
				if !c.chroot {
					// An absolute link is only inside the context when it
					// names a path under the context directory on this host.
					r, err := filepath.Rel(c.realDir, filepath.Clean(target))
					if err != nil || r == ".." || strings.HasPrefix(r, "../") {
						if r2, err2 := filepath.Rel(c.dir, filepath.Clean(target)); err2 == nil && r2 != ".." && !strings.HasPrefix(r2, "../") {
							r, err = r2, nil
						} else {
							return "", nil, c.errOutside(src)
						}
					}
					target = "/" + filepath.ToSlash(r)
				}
				cur = "."
				todo = append(splitPath(target), todo...)
			} else {
				todo = append(splitPath(target), todo...)
			}
			continue
		}
		if len(todo) > 0 && !fi.IsDir() {
			return "", nil, &fs.PathError{Op: "stat", Path: next, Err: errNotDir}
		}
		cur = next
	}
	fi, err := c.root.Lstat(cur)
	if err != nil {
		return "", nil, err
	}
	return cur, fi, nil
}

var errNotDir = errors.New("not a directory")

func splitPath(p string) []string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
