package buildctx

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/rootfs"
	"github.com/moby/patternmatcher"
)

// TargetFile describes a file in the file system a COPY writes into.
type TargetFile struct {
	// Mode holds the type and permission bits.
	Mode fs.FileMode
	// UID and GID own the file.
	UID, GID int
	// Linkname is the target of a symbolic link.
	Linkname string
}

// LstatFunc looks up an absolute, cleaned path in the target file system
// without following a final symbolic link. A missing path is an error
// wrapping fs.ErrNotExist.
type LstatFunc func(p string) (TargetFile, error)

// DirTarget looks paths up in dir, a flattened root file system. Plan only
// asks for paths whose parents it has resolved, so no symbolic link is
// followed on the host.
func DirTarget(dir string) LstatFunc {
	return func(p string) (TargetFile, error) {
		full := filepath.Join(dir, filepath.FromSlash(path.Clean("/"+p)))
		fi, err := os.Lstat(full)
		if err != nil {
			return TargetFile{}, err
		}
		_, _, _, uid, gid := statOf(fi)
		tf := TargetFile{Mode: fi.Mode(), UID: uid, GID: gid}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if tf.Linkname, err = os.Readlink(full); err != nil {
				return TargetFile{}, err
			}
		}
		return tf, nil
	}
}

// CopyOptions are the flags of a COPY or ADD instruction and what the
// builder knows about the stage it writes into.
type CopyOptions struct {
	// Workdir is the stage's working directory; relative destinations are
	// taken from it ("/" when empty).
	Workdir string
	// Chown is --chown: "user", "user:group", numeric or names.
	Chown string
	// Chmod is --chmod, an octal mode such as "755" or "0644".
	Chmod string
	// Link is --link: the destination is not looked up in the target.
	Link bool
	// KeepOwner keeps the owner of source files when Chown is empty
	// (COPY --from); otherwise files are owned by 0:0.
	KeepOwner bool
	// Extract makes local tar archives be extracted (ADD).
	Extract bool
	// Parents is --parents: each source keeps its path relative to the
	// root, or to a "/./" pivot in the argument ("src/./pkg/a.py" is
	// written at dest/pkg/a.py). The destination is a directory.
	Parents bool
	// Exclude holds --exclude patterns (patternmatcher syntax). They are
	// matched against the path of each file relative to the source
	// directory being copied, and against the name of a file source.
	Exclude []string
	// Target looks paths up in the stage's current file system; nil means
	// an empty one (FROM scratch).
	Target LstatFunc
	// LookupUser and LookupGroup resolve --chown names through the
	// stage's /etc/passwd and /etc/group.
	LookupUser  func(name string) (int, error)
	LookupGroup func(name string) (int, error)
}

// Entry is one file of a COPY or ADD layer.
type Entry struct {
	// Path is the destination in the image, relative to "/" ("app/main.py").
	Path string
	// Type is a tar type flag: tar.TypeReg, TypeDir, TypeSymlink, TypeLink,
	// TypeChar, TypeBlock or TypeFifo.
	Type byte
	// Mode holds the permission, set-ID and sticky bits (0o7777).
	Mode int64
	// UID and GID own the entry.
	UID, GID int
	// Size of a regular file's content.
	Size int64
	// Linkname is a symbolic link's target, or for a hard link the Path of
	// the entry it links to.
	Linkname string
	// ModTime is the source's modification time, written only with
	// LayerOptions.PreserveTimes.
	ModTime time.Time
	// Archive means Path is a directory into which the tar archive of the
	// source is extracted (ADD).
	Archive bool
	// Parent marks a directory written because an entry needs it rather
	// than because it was copied.
	Parent bool

	ctx      *Context
	rel      string
	dev, ino uint64
	nlink    uint64
	devMajor int64
	devMinor int64
	remote   bool
	inline   bool
	data     []byte
	ownerSet bool // archive entries get UID and GID
	modeSet  bool // archive entries get Mode
}

// Plan computes the entries that copying sources to dest produces,
// following Docker's destination rules (see the package documentation).
// It reads metadata, and for ADD the first bytes of each file to detect
// archives, but no file content.
func Plan(ctx context.Context, sources []Source, dest string, opts CopyOptions) ([]Entry, error) {
	if dest == "" {
		return nil, fmt.Errorf("empty destination: %w", errdefs.ErrInvalidArgument)
	}
	if len(sources) == 0 {
		return nil, fmt.Errorf("no source files: %w", errdefs.ErrInvalidArgument)
	}
	uid, gid, chown, err := parseChown(opts.Chown, opts.LookupUser, opts.LookupGroup)
	if err != nil {
		return nil, err
	}
	chmod, hasChmod, err := parseChmod(opts.Chmod)
	if err != nil {
		return nil, err
	}
	slash := strings.HasSuffix(dest, "/") || dest == "." || dest == ".." || strings.HasSuffix(dest, "/.") || strings.HasSuffix(dest, "/..")
	args := map[string]bool{}
	for _, s := range sources {
		args[s.Arg] = true
	}
	if len(args) > 1 && !slash {
		return nil, fmt.Errorf("When using COPY with more than one source file, the destination must be a directory and end with a /: %w", errdefs.ErrInvalidArgument)
	}
	abs := dest
	if !path.IsAbs(abs) {
		abs = path.Join("/", opts.Workdir, dest)
	}
	abs = path.Clean(abs)

	lstat := opts.Target
	if opts.Link || lstat == nil {
		lstat = func(string) (TargetFile, error) { return TargetFile{}, fs.ErrNotExist }
	}
	canon, last, err := targetPath(lstat, abs)
	if err != nil {
		return nil, fmt.Errorf("destination %s: %w", dest, err)
	}
	isDir := slash || len(sources) > 1 || opts.Parents || (last != nil && last.Mode.IsDir())

	p := &planner{ctx: ctx, opts: opts, uid: uid, gid: gid, chown: chown, chmod: chmod, hasChmod: hasChmod, lstat: lstat}
	if len(opts.Exclude) > 0 {
		if p.exclude, err = patternmatcher.New(opts.Exclude); err != nil {
			return nil, fmt.Errorf("--exclude: %w: %w", errdefs.ErrInvalidArgument, err)
		}
	}
	destDir := canon
	for _, s := range sources {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		canon := destDir
		if opts.Parents && !s.remote && !s.inline {
			canon = path.Join(destDir, parentsPath(s))
			if !s.IsDir() {
				canon = path.Dir(canon)
			}
		}
		if !s.IsDir() && p.excluded(s.Name) {
			continue
		}
		switch {
		case s.remote:
			to := canon
			if isDir {
				if s.Name == "" || s.Name == "." || s.Name == "/" {
					return nil, fmt.Errorf("%s: cannot determine a file name from the URL; give a destination file name: %w", s.Arg, errdefs.ErrInvalidArgument)
				}
				to = path.Join(canon, s.Name)
			}
			if err := p.addFile(s, s.rel, to, s.info); err != nil {
				return nil, err
			}
		case s.IsDir():
			p.needDir(canon)
			if err := p.walk(s, s.rel, canon, ""); err != nil {
				return nil, err
			}
		default:
			if opts.Extract && !s.inline && s.info.Mode().IsRegular() {
				ok, err := s.ctx.isArchive(s.rel)
				if err != nil {
					return nil, fmt.Errorf("ADD %s: %w", s.Arg, err)
				}
				if ok {
					p.needDir(canon)
					e := p.entryFor(s, s.rel, canon, s.info)
					e.Archive, e.Type, e.Size = true, tar.TypeReg, s.info.Size()
					e.ownerSet, e.modeSet = p.chown, p.hasChmod
					if p.hasChmod {
						e.Mode = p.chmod
					}
					p.archives = append(p.archives, e)
					continue
				}
			}
			to := canon
			if isDir {
				to = path.Join(canon, s.Name)
			}
			if err := p.addFile(s, s.rel, to, s.info); err != nil {
				return nil, err
			}
		}
	}
	return p.finish()
}

type planner struct {
	ctx      context.Context
	opts     CopyOptions
	uid, gid int
	chown    bool
	chmod    int64
	hasChmod bool
	lstat    LstatFunc
	entries  []Entry
	archives []Entry
	dirs     map[string]struct{} // directories entries need
	exclude  *patternmatcher.PatternMatcher
}

// excluded reports whether --exclude patterns exclude rel.
func (p *planner) excluded(rel string) bool {
	if p.exclude == nil {
		return false
	}
	ok, err := p.exclude.MatchesOrParentMatches(filepath.FromSlash(rel))
	return err == nil && ok
}

// parentsPath is the path a source keeps with --parents: its path
// relative to the root, or to the "/./" pivot of its argument.
func parentsPath(s Source) string {
	arg := strings.TrimPrefix(filepath.ToSlash(s.Arg), "./")
	pivot, _, ok := strings.Cut(arg, "/./")
	if !ok {
		return s.Path
	}
	base := cleanRel(pivot)
	if base == "." {
		return s.Path
	}
	if rel, ok := strings.CutPrefix(s.Path, base+"/"); ok {
		return rel
	}
	return s.Path
}

func (p *planner) needDir(abs string) {
	if p.dirs == nil {
		p.dirs = map[string]struct{}{}
	}
	for d := abs; d != "/"; d = path.Dir(d) {
		if _, ok := p.dirs[d]; ok {
			break
		}
		p.dirs[d] = struct{}{}
	}
}

// entryFor fills in an entry for the source file rel at abs.
func (p *planner) entryFor(s Source, rel, abs string, fi fs.FileInfo) Entry {
	dev, ino, nlink, uid, gid := statOf(fi)
	e := Entry{Path: strings.TrimPrefix(abs, "/"), Mode: unixMode(fi.Mode()), ModTime: fi.ModTime(), ctx: s.ctx, rel: rel, dev: dev, ino: ino, nlink: nlink, remote: s.remote, inline: s.inline, data: s.data}
	if s.remote {
		e.ModTime = s.mtime
	}
	switch {
	case p.chown:
		e.UID, e.GID = p.uid, p.gid
	case p.opts.KeepOwner && !s.remote && !s.inline:
		e.UID, e.GID = uid, gid
	}
	return e
}

func (p *planner) addFile(s Source, rel, abs string, fi fs.FileInfo) error {
	if abs == "/" {
		return fmt.Errorf("%s: cannot copy a file to /: %w", s.Arg, errdefs.ErrInvalidArgument)
	}
	e := p.entryFor(s, rel, abs, fi)
	m := fi.Mode()
	switch {
	case m.IsRegular():
		e.Type, e.Size = tar.TypeReg, fi.Size()
		if s.remote {
			e.Mode = 0o600
		}
	case m.IsDir():
		e.Type = tar.TypeDir
	case m&fs.ModeSymlink != 0:
		target, err := s.ctx.root.Readlink(rel)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Arg, err)
		}
		e.Type, e.Linkname, e.Mode = tar.TypeSymlink, target, 0o777
	case m&fs.ModeNamedPipe != 0:
		e.Type = tar.TypeFifo
	case m&fs.ModeDevice != 0:
		e.Type = tar.TypeBlock
		if m&fs.ModeCharDevice != 0 {
			e.Type = tar.TypeChar
		}
		e.devMajor, e.devMinor = devNumbers(fi)
	default:
		return nil // sockets are not copied
	}
	if p.hasChmod && e.Type != tar.TypeSymlink {
		e.Mode = p.chmod
	}
	p.needDir(path.Dir(abs))
	p.entries = append(p.entries, e)
	return nil
}

// walk adds the contents of the source directory rel under abs, skipping
// what the ignore file excludes. It reports whether anything was added.
func (p *planner) walk(s Source, rel, abs, sub string) error {
	_, err := p.walkDir(s, rel, abs, sub)
	return err
}

// walkDir adds the directory rel of s at abs; sub is rel relative to the
// source directory, for --exclude.
func (p *planner) walkDir(s Source, rel, abs, sub string) (bool, error) {
	if err := p.ctx.Err(); err != nil {
		return false, err
	}
	c := s.ctx
	names, err := c.readDirNames(rel)
	if err != nil {
		return false, fmt.Errorf("%s: %w", s.Arg, err)
	}
	added := false
	for _, n := range names {
		crel, cabs, csub := path.Join(rel, n), path.Join(abs, n), path.Join(sub, n)
		fi, err := c.root.Lstat(crel)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed meanwhile
			}
			return false, fmt.Errorf("%s: %w", s.Arg, err)
		}
		excluded := c.Excluded(crel)
		if p.excluded(csub) {
			if !fi.IsDir() || !p.exclude.Exclusions() {
				continue
			}
			excluded = true
		}
		if fi.IsDir() {
			if excluded && !((c.pm != nil && c.pm.Exclusions()) || (p.exclude != nil && p.exclude.Exclusions())) {
				continue
			}
			mark := len(p.entries)
			if err := p.addFile(s, crel, cabs, fi); err != nil {
				return false, err
			}
			kept, err := p.walkDir(s, crel, cabs, csub)
			if err != nil {
				return false, err
			}
			if excluded && !kept {
				p.entries = append(p.entries[:mark], p.entries[mark+1:]...)
				continue
			}
			added = true
			continue
		}
		if excluded {
			continue
		}
		if err := p.addFile(s, crel, cabs, fi); err != nil {
			return false, err
		}
		added = true
	}
	return added, nil
}

// finish adds the needed directories, removes entries overwritten by later
// ones, sorts, and turns repeated inodes into hard links.
func (p *planner) finish() ([]Entry, error) {
	byPath := make(map[string]int, len(p.entries))
	var out []Entry
	for _, e := range p.entries {
		if i, ok := byPath[e.Path]; ok {
			out[i] = e
			continue
		}
		byPath[e.Path] = len(out)
		out = append(out, e)
	}
	for d := range p.dirs {
		rel := strings.TrimPrefix(d, "/")
		if _, ok := byPath[rel]; ok {
			continue
		}
		e := Entry{Path: rel, Type: tar.TypeDir, Mode: 0o755, Parent: true}
		if p.chown {
			e.UID, e.GID = p.uid, p.gid
		}
		tf, err := p.lstat(d)
		switch {
		case err == nil && tf.Mode.IsDir():
			e.Mode, e.UID, e.GID = unixMode(tf.Mode), tf.UID, tf.GID
		case err == nil:
			return nil, fmt.Errorf("cannot copy to %s: %s exists and is not a directory: %w", d, d, errdefs.ErrInvalidArgument)
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("look up %s: %w", d, err)
		}
		out = append(out, e)
	}
	// Archives are extracted after the directory they go into, in the
	// order of the sources.
	out = append(out, p.archives...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return !out[i].Archive && out[j].Archive
	})
	type inode struct{ dev, ino uint64 }
	first := map[inode]string{}
	for i := range out {
		e := &out[i]
		if e.Type != tar.TypeReg || e.Archive || e.nlink < 2 || e.ino == 0 {
			continue
		}
		k := inode{e.dev, e.ino}
		if f, ok := first[k]; ok {
			e.Type, e.Linkname, e.Size = tar.TypeLink, f, 0
			continue
		}
		first[k] = e.Path
	}
	return out, nil
}

// targetPath resolves p (absolute, clean) in the target: symbolic links
// in existing components are followed as inside a container; from the
// first missing component on the rest is appended as it is. last describes
// the resolved path when it exists.
func targetPath(lstat LstatFunc, p string) (string, *TargetFile, error) {
	todo := splitPath(p)
	cur := "/"
	var last *TargetFile
	for links := 0; len(todo) > 0; {
		name := todo[0]
		todo = todo[1:]
		if name == "." {
			continue
		}
		if name == ".." {
			cur, last = path.Dir(cur), nil
			continue
		}
		next := path.Join(cur, name)
		tf, err := lstat(next)
		if errors.Is(err, fs.ErrNotExist) {
			return path.Join(append([]string{next}, todo...)...), nil, nil
		}
		if err != nil {
			return "", nil, err
		}
		if tf.Mode&fs.ModeSymlink != 0 {
			if links++; links > maxSymlinks {
				return "", nil, fmt.Errorf("too many levels of symbolic links: %w", errdefs.ErrInvalidArgument)
			}
			if strings.HasPrefix(tf.Linkname, "/") {
				cur = "/"
			}
			todo = append(splitPath(tf.Linkname), todo...)
			continue
		}
		if len(todo) > 0 && !tf.Mode.IsDir() {
			return "", nil, fmt.Errorf("%s is not a directory: %w", next, errdefs.ErrInvalidArgument)
		}
		cur, last = next, &tf
	}
	if last == nil && cur != "/" {
		tf, err := lstat(cur)
		if err != nil {
			return "", nil, err
		}
		last = &tf
	}
	if cur == "/" {
		last = &TargetFile{Mode: fs.ModeDir | 0o755}
	}
	return cur, last, nil
}

func unixMode(m fs.FileMode) int64 {
	v := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}

// parseChown parses --chown. A user without a group uses the user's
// number as the group, as Docker documents.
func parseChown(s string, user, group func(string) (int, error)) (uid, gid int, set bool, err error) {
	if s == "" {
		return 0, 0, false, nil
	}
	u, g, hasGroup := strings.Cut(s, ":")
	if uid, err = lookupID(u, "user", user); err != nil {
		return 0, 0, false, fmt.Errorf("--chown=%s: %w", s, err)
	}
	gid = uid
	if hasGroup {
		if gid, err = lookupID(g, "group", group); err != nil {
			return 0, 0, false, fmt.Errorf("--chown=%s: %w", s, err)
		}
	}
	return uid, gid, true, nil
}

func lookupID(name, kind string, lookup func(string) (int, error)) (int, error) {
	if name == "" {
		return 0, fmt.Errorf("empty %s: %w", kind, errdefs.ErrInvalidArgument)
	}
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return int(n), nil
	}
	if lookup == nil {
		return 0, fmt.Errorf("cannot look up %s %q: the stage has no %s database; use a numeric ID: %w", kind, name, kind, errdefs.ErrInvalidArgument)
	}
	id, err := lookup(name)
	if err != nil {
		return 0, fmt.Errorf("unknown %s %q: %w", kind, name, err)
	}
	return id, nil
}

// parseChmod parses an octal --chmod.
func parseChmod(s string) (int64, bool, error) {
	if s == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o7777 {
		return 0, false, fmt.Errorf("--chmod=%s: not an octal mode such as 755: %w", s, errdefs.ErrInvalidArgument)
	}
	return int64(n), true, nil
}

// isArchive reports whether the file rel is a tar archive, plain or
// compressed. xz is refused.
func (c *Context) isArchive(rel string) (bool, error) {
	f, err := c.root.Open(rel)
	if err != nil {
		return false, err
	}
	defer f.Close()
	d, err := rootfs.Decompress(f)
	if err != nil {
		if errors.Is(err, errdefs.ErrNotImplemented) {
			return false, fmt.Errorf("xz-compressed archives are not supported; decompress it first or use COPY: %w", errdefs.ErrNotImplemented)
		}
		return false, nil
	}
	defer d.Close()
	_, err = tar.NewReader(d).Next()
	return err == nil, nil
}
