package build

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/berthsh/berth/pkg/build/buildctx"
	"github.com/berthsh/berth/pkg/build/dockerfile"
	"github.com/berthsh/berth/pkg/errdefs"
)

// copySpec is what COPY and ADD have in common.
type copySpec struct {
	add      bool
	sd       instructions.SourcesAndDest
	chown    string
	chmod    string
	link     bool
	exclude  []string
	parents  bool
	checksum string
	unpack   *bool
}

// copy runs COPY or ADD: it plans the entries against the stage's current
// file system, keys them by content and writes (or reuses) their layer.
func (b *builder) copy(ctx context.Context, st *stageState, step dockerfile.Step, cs copySpec) (bool, error) {
	text := dockerfile.CreatedBy(step)
	src := b.bctx
	keepOwner := false
	alias := b.copyAlias(st, step, cs)
	if alias != "" {
		if key, e, ok := b.lookupAlias(ctx, alias); ok {
			return true, b.addResult(ctx, st, key, text, *e, true)
		}
	}
	switch step.From.Kind {
	case dockerfile.SourceStage, dockerfile.SourceImage:
		var dirs []string
		if step.From.Kind == dockerfile.SourceStage {
			other := b.results[step.From.Stage]
			if other == nil {
				return false, fmt.Errorf("internal error: source stage not built")
			}
			dirs = other.dirs
		} else {
			var err error
			if dirs, err = b.unpack(ctx, b.bases[step.From.Image].layers); err != nil {
				return false, err
			}
		}
		dir, release, err := b.view(ctx, dirs)
		if err != nil {
			return false, err
		}
		defer release()
		root, err := buildctx.NewRoot(dir)
		if err != nil {
			return false, err
		}
		defer root.Close()
		src = root
		keepOwner = true
	}

	target, release, err := b.view(ctx, st.dirs)
	if err != nil {
		return false, err
	}
	defer release()

	var sources []buildctx.Source
	for _, p := range cs.sd.SourcePaths {
		if cs.add && buildctx.IsURL(p) {
			d, err := buildctx.FetchURL(ctx, p, buildctx.FetchOptions{Checksum: cs.checksum, TempDir: b.tmp})
			if err != nil {
				return false, err
			}
			defer d.Close()
			sources = append(sources, d.Source)
			continue
		}
		if cs.add && isGitURL(p) {
			return false, fmt.Errorf("ADD of a git repository (%s) is not supported: %w", p, errdefs.ErrNotImplemented)
		}
		res, err := src.Resolve([]string{p})
		if err != nil {
			return false, err
		}
		sources = append(sources, res...)
	}
	for _, c := range cs.sd.SourceContents {
		sources = append(sources, buildctx.Inline(c.Path, []byte(c.Data)))
	}
	extract := cs.add && step.From.Kind == dockerfile.SourceContext && (cs.unpack == nil || *cs.unpack)
	entries, err := buildctx.Plan(ctx, sources, cs.sd.DestPath, buildctx.CopyOptions{
		Workdir:     step.Workdir,
		Chown:       cs.chown,
		Chmod:       cs.chmod,
		Link:        cs.link,
		KeepOwner:   keepOwner,
		Extract:     extract,
		Parents:     cs.parents,
		Exclude:     cs.exclude,
		Target:      buildctx.DirTarget(target),
		LookupUser:  func(name string) (int, error) { return lookupName(target, "/etc/passwd", name) },
		LookupGroup: func(name string) (int, error) { return lookupName(target, "/etc/group", name) },
	})
	if err != nil {
		return false, err
	}
	sum, err := buildctx.Checksum(ctx, entries)
	if err != nil {
		return false, err
	}
	key := cacheKey(st.key, "copy", text, sum)
	if alias != "" && !b.opts.NoCache {
		b.cache.put(alias, cacheEntry{Alias: key})
	}
	if e, ok := b.lookup(ctx, key); ok {
		return true, b.addResult(ctx, st, key, text, *e, true)
	}
	e, err := b.storeLayer(ctx, func(w io.Writer) error {
		return buildctx.WriteLayer(ctx, entries, w, buildctx.LayerOptions{SourceDateEpoch: b.epoch})
	})
	if err != nil {
		return false, err
	}
	return false, b.addResult(ctx, st, key, text, e, false)
}

// copyAlias is the shortcut key of a COPY --from step, or "" for other
// steps. The files such a step copies are fixed by the source's cache key
// (a stage's key follows the layers it produced; an image's is its ID),
// and the stage it copies into by its own key, so the step's inputs can be
// keyed without mounting either file system or reading a file: a rebuild
// whose earlier stages all hit the cache skips that work. The shortcut
// leads to the entry of the step's content key (instruction and checksum
// of the planned files), which the first run computed and recorded.
func (b *builder) copyAlias(st *stageState, step dockerfile.Step, cs copySpec) string {
	var src string
	switch step.From.Kind {
	case dockerfile.SourceStage:
		other := b.results[step.From.Stage]
		if other == nil {
			return ""
		}
		src = "stage\x00" + other.key
	case dockerfile.SourceImage:
		bi := b.bases[step.From.Image]
		if bi == nil {
			return ""
		}
		src = "image\x00" + bi.id.String()
	default:
		return ""
	}
	if cs.add {
		return "" // ADD may fetch URLs, whose content no key fixes
	}
	var contents []string
	for _, c := range cs.sd.SourceContents {
		contents = append(contents, c.Path, c.Data)
	}
	return cacheKey(st.key, "copy-from", src, dockerfile.CreatedBy(step), step.Original, step.Workdir,
		strings.Join(cs.sd.SourcePaths, "\x00"), strings.Join(contents, "\x00"), cs.sd.DestPath,
		cs.chown, cs.chmod, strconv.FormatBool(cs.link), strings.Join(cs.exclude, "\x00"),
		strconv.FormatBool(cs.parents))
}

// lookupAlias follows the shortcut alias to the entry it leads to and
// returns that entry's key, when both are in the cache (and the layer in
// the store).
func (b *builder) lookupAlias(ctx context.Context, alias string) (string, *cacheEntry, bool) {
	if b.opts.NoCache {
		return "", nil, false
	}
	a, ok := b.cache.get(alias)
	if !ok || a.Alias == "" {
		return "", nil, false
	}
	e, ok := b.lookup(ctx, a.Alias)
	if !ok || e.Alias != "" {
		return "", nil, false
	}
	return a.Alias, e, true
}

func isGitURL(s string) bool {
	return strings.HasPrefix(s, "git@") || strings.HasPrefix(s, "git://") ||
		(strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")) && strings.HasSuffix(s, ".git")
}

// workdir runs WORKDIR: the directory is created (owned by the current
// USER, as BuildKit does) when the stage's file system lacks it, in a
// layer of its own; otherwise the step only changes the config.
func (b *builder) workdir(ctx context.Context, st *stageState, step dockerfile.Step) (bool, error) {
	st.cb.Apply(step)
	text := dockerfile.CreatedBy(step)
	if step.EmptyLayer() {
		st.key = cacheKey(st.key, "config", text)
		b.addHistory(st, text, true)
		return false, nil
	}
	user := st.cb.Config.User
	key := cacheKey(st.key, "workdir", step.Workdir, user)
	if e, ok := b.lookup(ctx, key); ok {
		return true, b.addResult(ctx, st, key, text, *e, true)
	}
	view, release, err := b.view(ctx, st.dirs)
	if err != nil {
		return false, err
	}
	defer release()
	full, err := securejoin.SecureJoin(view, step.Workdir)
	if err != nil {
		return false, err
	}
	if fi, err := os.Stat(full); err == nil {
		if !fi.IsDir() {
			return false, fmt.Errorf("working directory %s exists and is not a directory: %w", step.Workdir, errdefs.ErrInvalidArgument)
		}
		return false, b.addResult(ctx, st, key, text, cacheEntry{}, false)
	}
	uid, gid := 0, 0
	if user != "" {
		if uid, gid, err = resolveUser(view, user); err != nil {
			return false, err
		}
	}
	rel, err := filepath.Rel(view, full)
	if err != nil {
		return false, err
	}
	var headers []*tar.Header
	cur := ""
	for _, part := range strings.Split(filepath.ToSlash(rel), "/") {
		cur = path.Join(cur, part)
		h := &tar.Header{Typeflag: tar.TypeDir, Name: cur + "/", Mode: 0o755, Uid: uid, Gid: gid, ModTime: b.epoch, Format: tar.FormatPAX}
		if fi, err := os.Lstat(filepath.Join(view, cur)); err == nil && fi.IsDir() {
			// Existing parents are written as they are.
			st, _ := fi.Sys().(*syscall.Stat_t)
			h.Mode = int64(fi.Mode().Perm())
			if fi.Mode()&fs.ModeSetuid != 0 {
				h.Mode |= 0o4000
			}
			if fi.Mode()&fs.ModeSetgid != 0 {
				h.Mode |= 0o2000
			}
			if fi.Mode()&fs.ModeSticky != 0 {
				h.Mode |= 0o1000
			}
			if st != nil {
				h.Uid, h.Gid = int(st.Uid), int(st.Gid)
			}
		}
		headers = append(headers, h)
	}
	e, err := b.storeLayer(ctx, func(w io.Writer) error {
		tw := tar.NewWriter(w)
		for _, h := range headers {
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
		}
		return tw.Close()
	})
	if err != nil {
		return false, err
	}
	return false, b.addResult(ctx, st, key, text, e, false)
}

// resolveUser turns "user[:group]" (names or numbers) into ids through the
// root file system's /etc/passwd and /etc/group.
func resolveUser(root, spec string) (uid, gid int, err error) {
	u, g, hasGroup := strings.Cut(spec, ":")
	if n, err := strconv.Atoi(u); err == nil {
		uid = n
		if fields, err := findEntry(root, "/etc/passwd", u, 2); err == nil && len(fields) > 3 {
			gid, _ = strconv.Atoi(fields[3])
		}
	} else {
		fields, err := findEntry(root, "/etc/passwd", u, 0)
		if err != nil || len(fields) < 4 {
			return 0, 0, fmt.Errorf("unable to find user %s: no matching entries in passwd file: %w", u, errdefs.ErrNotFound)
		}
		uid, _ = strconv.Atoi(fields[2])
		gid, _ = strconv.Atoi(fields[3])
	}
	if hasGroup {
		if gid, err = lookupName(root, "/etc/group", g); err != nil {
			return 0, 0, err
		}
	}
	return uid, gid, nil
}

// lookupName resolves a user or group name (or number) through file
// (/etc/passwd or /etc/group) in the root file system.
func lookupName(root, file, name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil {
		return n, nil
	}
	fields, err := findEntry(root, file, name, 0)
	if err != nil || len(fields) < 3 {
		what := "user"
		if strings.HasSuffix(file, "group") {
			what = "group"
		}
		return 0, fmt.Errorf("unable to find %s %s: no matching entries in %s: %w", what, name, file, errdefs.ErrNotFound)
	}
	return strconv.Atoi(fields[2])
}

// findEntry returns the fields of the first line of file whose field col
// is value.
func findEntry(root, file, value string, col int) ([]string, error) {
	p, err := securejoin.SecureJoin(root, file)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, ":")
		if len(fields) > col && fields[col] == value {
			return fields, nil
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return nil, fs.ErrNotExist
}
