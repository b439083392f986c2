package buildctx

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/berthsh/berth/pkg/errdefs"
)

// Source is one resolved COPY or ADD source.
type Source struct {
	// Path is the source as written or as a wildcard matched it, cleaned
	// and relative to the root ("." for the root itself).
	Path string
	// Arg is the argument the source came from (a wildcard may give several
	// sources).
	Arg string
	// Name is the file name the source gets inside a directory destination.
	Name string

	ctx    *Context
	rel    string // Path with symbolic links resolved
	info   fs.FileInfo
	remote bool      // downloaded by FetchURL
	mtime  time.Time // Last-Modified of a download
	inline bool      // content in data
	data   []byte
}

// IsDir reports whether the source is a directory (its contents are copied).
func (s Source) IsDir() bool { return s.info != nil && s.info.IsDir() }

// Remote reports whether the source was downloaded from a URL.
func (s Source) Remote() bool { return s.remote }

// notFoundError is Docker's message for a source that does not exist.
type notFoundError struct {
	path string
	root bool // a NewRoot, not a build context
}

func (e *notFoundError) Error() string {
	if e.root {
		return fmt.Sprintf("file not found: stat %s: file does not exist", e.path)
	}
	return fmt.Sprintf("file not found in build context or excluded by .dockerignore: stat %s: file does not exist", e.path)
}

func (e *notFoundError) Unwrap() []error { return []error{errdefs.ErrNotFound, fs.ErrNotExist} }

func (c *Context) notFound(src string) error {
	return &notFoundError{path: src, root: c.chroot}
}

// Resolve resolves COPY/ADD source arguments (not URLs) against the root,
// expanding wildcards. Every argument must match at least one file that
// the ignore file does not exclude.
func (c *Context) Resolve(srcs []string) ([]Source, error) {
	var out []Source
	for _, src := range srcs {
		if src == "" {
			return nil, fmt.Errorf("empty source path: %w", errdefs.ErrInvalidArgument)
		}
		clean := cleanRel(src)
		if hasMeta(clean) {
			m, err := c.glob(src, clean)
			if err != nil {
				return nil, err
			}
			out = append(out, m...)
			continue
		}
		s, err := c.source(src, clean, clean)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// source resolves one existing path: written is the path as the user sees
// it, rel where to find it.
func (c *Context) source(src, written, rel string) (Source, error) {
	r, fi, err := c.resolve(src, rel, true)
	if err != nil {
		if isNotExist(err) {
			return Source{}, c.notFound(src)
		}
		if errors.Is(err, errdefs.ErrInvalidArgument) {
			return Source{}, err
		}
		return Source{}, fmt.Errorf("%s: %w", src, err)
	}
	if (c.Excluded(written) || c.Excluded(r)) && !(fi.IsDir() && c.pm != nil && c.pm.Exclusions()) {
		return Source{}, c.notFound(src)
	}
	name := path.Base(written)
	if written == "." {
		name = "."
	}
	return Source{Path: written, Arg: src, Name: name, ctx: c, rel: r, info: fi}, nil
}

func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir)
}

// hasMeta reports whether p holds filepath.Match wildcards.
func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// glob expands a cleaned wildcard path one segment at a time.
func (c *Context) glob(src, clean string) ([]Source, error) {
	type cand struct{ written, rel string }
	cur := []cand{{".", "."}}
	for _, seg := range splitPath(clean) {
		var next []cand
		for _, cd := range cur {
			if !hasMeta(seg) {
				next = append(next, cand{path.Join(cd.written, seg), path.Join(cd.rel, seg)})
				continue
			}
			if _, err := path.Match(seg, ""); err != nil {
				return nil, fmt.Errorf("%s: bad pattern: %w", src, errdefs.ErrInvalidArgument)
			}
			r, fi, err := c.resolve(src, cd.rel, true)
			if err != nil {
				if isNotExist(err) || errors.Is(err, errdefs.ErrInvalidArgument) {
					continue // nothing to list here, or a link leading out
				}
				return nil, err
			}
			if !fi.IsDir() {
				continue
			}
			names, err := c.readDirNames(r)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", src, err)
			}
			for _, n := range names {
				if ok, _ := path.Match(seg, n); ok {
					next = append(next, cand{path.Join(cd.written, n), path.Join(r, n)})
				}
			}
		}
		cur = next
	}
	var out []Source
	for _, cd := range cur {
		s, err := c.source(src, cd.written, cd.rel)
		if err != nil {
			var nf *notFoundError
			if errors.As(err, &nf) || errors.Is(err, errdefs.ErrInvalidArgument) {
				continue // a wildcard skips links that lead out, as missing
			}
			return nil, err
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, c.notFound(src)
	}
	return out, nil
}

// readDirNames lists a resolved directory, sorted.
func (c *Context) readDirNames(rel string) ([]string, error) {
	f, err := c.root.Open(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}
