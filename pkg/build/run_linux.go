package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berthsh/berth/pkg/build/buildctx"
	"github.com/berthsh/berth/pkg/build/dockerfile"
	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/rootfs"
	"github.com/berthsh/berth/pkg/runtime"
)

// runHostname is the host name RUN steps see, as with BuildKit.
const runHostname = "buildkitsandbox"

// outputLines is how many lines of output a failed RUN reports.
const outputLines = 20

// destroyTimeout bounds the clean-up of a RUN container.
const destroyTimeout = 30 * time.Second

// run runs a RUN step in a container on the stage's file system and turns
// its changes into a layer.
func (b *builder) run(ctx context.Context, st *stageState, step dockerfile.Step, ev Event) (bool, error) {
	text := dockerfile.CreatedBy(step)
	args, script, _ := step.RunArgs()
	network := b.network
	switch step.Network() {
	case "none":
		network = "none"
	case "host":
		network = "host"
	}
	if step.Security() == "insecure" {
		return false, fmt.Errorf("RUN --security=insecure is not supported: %w", errdefs.ErrNotImplemented)
	}
	mounts := step.Mounts()
	var mountKey []string
	for k, m := range mounts {
		mk, err := b.mountKey(ctx, m, b.mountSource(step, k))
		if err != nil {
			return false, err
		}
		mountKey = append(mountKey, mk)
	}
	scriptData := ""
	if script != nil {
		scriptData = script.Name + "\x00" + script.Data
	}
	key := cacheKey(st.key, "run", text, step.Original, strings.Join(args, "\x00"), scriptData,
		joinEnv(step.BuildEnv), network, st.cb.Config.User, step.Workdir, strings.Join(mountKey, "\x00"))
	if e, ok := b.lookup(ctx, key); ok {
		return true, b.addResult(ctx, st, key, text, *e, true)
	}
	if err := b.canRun(st); err != nil {
		return false, err
	}
	e, err := b.sandbox(ctx, st, step, runSpec{args: args, script: script, network: network, mounts: mounts}, ev)
	if err != nil {
		return false, err
	}
	return false, b.addResult(ctx, st, key, text, e, false)
}

type runSpec struct {
	args    []string
	script  *dockerfile.InlineFile
	network string
	mounts  []*instructions.Mount
}

// sandbox runs the command and returns the layer of its changes.
func (b *builder) sandbox(ctx context.Context, st *stageState, step dockerfile.Step, rs runSpec, ev Event) (cacheEntry, error) {
	// The sandbox joins its cgroup once its root is mounted: start the
	// kernel's grace period for that now.
	go runtime.WarmCgroupAttach()
	dir, err := b.tempDir("run")
	if err != nil {
		return cacheEntry{}, err
	}
	upper, work, rootfsDir := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "rootfs")
	for _, d := range []string{upper, work, rootfsDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return cacheEntry{}, err
		}
	}
	if err := os.Chmod(upper, 0o755); err != nil {
		return cacheEntry{}, err
	}
	lowers := dedupe(st.dirs)
	if len(lowers) == 0 {
		empty := filepath.Join(dir, "empty")
		if err := os.Mkdir(empty, 0o755); err != nil {
			return cacheEntry{}, err
		}
		lowers = []string{empty}
	}
	b.trackMount(rootfsDir, true)
	if err := rootfs.MountOverlay(ctx, rootfsDir, lowers, upper, work); err != nil {
		b.trackMount(rootfsDir, false)
		return cacheEntry{}, err
	}
	mounted := true
	unmount := func() error {
		if !mounted {
			return nil
		}
		if err := rootfs.Unmount(rootfsDir); err != nil {
			return err
		}
		mounted = false
		b.trackMount(rootfsDir, false)
		return nil
	}
	defer unmount()

	workdir := step.Workdir
	if workdir == "" {
		workdir = "/"
	}
	if wd, err := securejoin.SecureJoin(rootfsDir, workdir); err != nil {
		return cacheEntry{}, err
	} else if err := os.MkdirAll(wd, 0o755); err != nil {
		return cacheEntry{}, fmt.Errorf("create working directory %s: %w", workdir, err)
	}

	opts := runtime.CreateOptions{
		Cmd:         rs.args,
		Env:         append(append([]string(nil), step.BuildEnv...), b.plan.ProxyEnv...),
		WorkingDir:  workdir,
		User:        st.cb.Config.User,
		Hostname:    runHostname,
		HostNetwork: rs.network == "host",
	}
	files := map[string]string{
		"hosts":    "127.0.0.1\tlocalhost " + runHostname + "\n::1\tlocalhost ip6-localhost ip6-loopback\n",
		"hostname": runHostname + "\n",
	}
	if rs.network == "host" {
		if rc, err := os.ReadFile("/etc/resolv.conf"); err == nil {
			files["resolv.conf"] = string(rc)
		}
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return cacheEntry{}, err
		}
	}
	opts.HostsPath = filepath.Join(dir, "hosts")
	opts.HostnamePath = filepath.Join(dir, "hostname")
	if _, ok := files["resolv.conf"]; ok {
		opts.ResolvConfPath = filepath.Join(dir, "resolv.conf")
	}
	var releases []func()
	defer func() {
		for i := len(releases) - 1; i >= 0; i-- {
			releases[i]()
		}
	}()
	for k, m := range rs.mounts {
		if m.Type == instructions.MountTypeSecret && m.Env != nil {
			kv, err := b.secretEnv(m)
			if err != nil {
				return cacheEntry{}, err
			}
			if kv != "" {
				opts.Env = append(opts.Env, kv)
			}
			if m.Target == "" {
				continue // only the variable
			}
		}
		rm, release, err := b.runMount(ctx, workdir, m, b.mountSource(step, k))
		if err != nil {
			return cacheEntry{}, err
		}
		if release != nil {
			releases = append(releases, release)
		}
		if rm != nil {
			opts.Mounts = append(opts.Mounts, *rm)
		}
	}
	if rs.script != nil {
		p := filepath.Join(dir, "script")
		if err := os.WriteFile(p, []byte(rs.script.Data), 0o755); err != nil {
			return cacheEntry{}, err
		}
		opts.Mounts = append(opts.Mounts, runtime.Mount{Type: runtime.MountTypeBind, Source: p, Target: path.Join(rs.script.Dir, rs.script.Name), ReadOnly: true})
	}

	spec, err := runtime.CreateSpec(&v1.Config{}, rootfsDir, opts)
	if err != nil {
		return cacheEntry{}, err
	}
	// Mount points the container creates in the root file system must not
	// end up in the layer.
	var stubs []string
	for _, m := range spec.Mounts {
		if s := firstMissing(rootfsDir, m.Destination); s != "" {
			stubs = append(stubs, s)
		}
	}

	out := &outputWriter{emit: func(line []byte) {
		o := ev
		o.Output = line
		b.emit(o)
	}}
	status, err := b.runContainer(ctx, spec, out)
	out.flush()
	if err != nil {
		return cacheEntry{}, err
	}
	for i := len(stubs) - 1; i >= 0; i-- {
		removeStub(stubs[i])
	}
	if err := unmount(); err != nil {
		return cacheEntry{}, err
	}
	for _, stub := range stubs {
		rel, err := filepath.Rel(rootfsDir, stub)
		if err == nil {
			pruneCopyUps(upper, lowers, filepath.Dir(rel))
		}
	}
	if status.Code != 0 {
		return cacheEntry{}, &RunError{Command: strings.Join(rs.args, " "), ExitCode: status.Code, Output: out.tail()}
	}
	epoch := b.epoch
	return b.storeLayer(ctx, func(w io.Writer) error {
		return rootfs.Diff(ctx, upper, w, rootfs.DiffOptions{SourceDateEpoch: &epoch})
	})
}

// runContainer creates, starts, waits for and destroys one container.
func (b *builder) runContainer(ctx context.Context, spec *specs.Spec, out io.Writer) (runtime.ExitStatus, error) {
	id := "berth-build-" + randomID()
	stateRoot := filepath.Join(b.tmp, "libcontainer")
	c, err := runtime.Create(ctx, stateRoot, id, spec)
	if err != nil {
		return runtime.ExitStatus{}, err
	}
	destroy := func() error {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), destroyTimeout)
		defer cancel()
		return c.Destroy(dctx)
	}
	if err := c.Start(ctx, runtime.Stdio{Stdout: out, Stderr: out}); err != nil {
		_ = destroy()
		if errors.Is(err, errdefs.ErrNotFound) {
			return runtime.ExitStatus{}, fmt.Errorf("%w (is the command installed in the image?)", err)
		}
		return runtime.ExitStatus{}, err
	}
	status, err := c.Wait(ctx)
	if derr := destroy(); err == nil && derr != nil {
		err = derr
	}
	if ctx.Err() != nil {
		return runtime.ExitStatus{}, ctx.Err()
	}
	return status, err
}

// runMount turns a RUN --mount into a container mount.
func (b *builder) runMount(ctx context.Context, workdir string, m *instructions.Mount, src dockerfile.Source) (*runtime.Mount, func(), error) {
	target := m.Target
	if target != "" && !path.IsAbs(target) {
		target = path.Join(workdir, target)
	}
	switch m.Type {
	case instructions.MountTypeTmpfs:
		rm := &runtime.Mount{Type: runtime.MountTypeTmpfs, Target: target}
		if m.SizeLimit > 0 {
			rm.Options = append(rm.Options, "size="+strconv.FormatInt(m.SizeLimit, 10))
		}
		return rm, nil, nil
	case instructions.MountTypeCache:
		if m.From != "" {
			return nil, nil, fmt.Errorf("RUN --mount=type=cache,from=%s: seeding a cache mount is not supported: %w", m.From, errdefs.ErrNotImplemented)
		}
		id := m.CacheID
		if id == "" {
			id = target
		}
		sum := sha256.Sum256([]byte(id))
		host := filepath.Join(b.root, "build", "cache", hex.EncodeToString(sum[:16]))
		if err := os.MkdirAll(filepath.Dir(host), 0o700); err != nil {
			return nil, nil, err
		}
		if err := os.Mkdir(host, 0o755); err == nil {
			mode := os.FileMode(0o755)
			if m.Mode != nil {
				mode = os.FileMode(*m.Mode) & os.ModePerm
			}
			uid, gid := 0, 0
			if m.UID != nil {
				uid = int(*m.UID)
			}
			if m.GID != nil {
				gid = int(*m.GID)
			}
			if err := os.Chmod(host, mode); err != nil {
				return nil, nil, err
			}
			if err := os.Lchown(host, uid, gid); err != nil {
				return nil, nil, err
			}
		} else if !errors.Is(err, os.ErrExist) {
			return nil, nil, err
		}
		var release func()
		if m.CacheSharing == instructions.MountSharingLocked {
			mu := b.lockFor(host)
			mu.Lock()
			release = mu.Unlock
		}
		return &runtime.Mount{Type: runtime.MountTypeBind, Source: host, Target: target, ReadOnly: m.ReadOnly}, release, nil
	case instructions.MountTypeSecret:
		id := m.CacheID
		if id == "" && target != "" {
			id = path.Base(target)
		}
		if target == "" {
			target = "/run/secrets/" + id
		}
		src, ok := b.opts.Secrets[id]
		if !ok {
			if m.Required {
				return nil, nil, fmt.Errorf("secret %s is required but was not given (--secret id=%s,src=FILE): %w", id, id, errdefs.ErrInvalidArgument)
			}
			return nil, nil, nil
		}
		abs, err := filepath.Abs(src)
		if err != nil {
			return nil, nil, err
		}
		// As BuildKit: a copy owned by uid:gid (default root) with the
		// given mode (default 0400), whatever the source file's are.
		data, err := os.ReadFile(abs)
		if err != nil {
			return nil, nil, fmt.Errorf("secret %s: %w", id, err)
		}
		d, err := b.tempDir("secret")
		if err != nil {
			return nil, nil, err
		}
		f := filepath.Join(d, "secret")
		mode, uid, gid := os.FileMode(0o400), 0, 0
		if m.Mode != nil {
			mode = os.FileMode(*m.Mode) & os.ModePerm
		}
		if m.UID != nil {
			uid = int(*m.UID)
		}
		if m.GID != nil {
			gid = int(*m.GID)
		}
		remove := func() { os.RemoveAll(d) }
		if err := os.WriteFile(f, data, 0o600); err != nil {
			remove()
			return nil, nil, fmt.Errorf("secret %s: %w", id, err)
		}
		if err := errors.Join(os.Chmod(f, mode), os.Lchown(f, uid, gid)); err != nil {
			remove()
			return nil, nil, fmt.Errorf("secret %s: %w", id, err)
		}
		return &runtime.Mount{Type: runtime.MountTypeBind, Source: f, Target: target, ReadOnly: true}, remove, nil
	case instructions.MountTypeBind:
		return b.bindMount(ctx, target, m, src)
	}
	return nil, nil, fmt.Errorf("RUN --mount=type=%s is not supported: %w", m.Type, errdefs.ErrNotImplemented)
}

// secretEnv reads a secret for RUN --mount=type=secret,env=NAME: it
// returns "NAME=content", or "" for a missing secret that is not required.
// An empty NAME means the secret's id.
func (b *builder) secretEnv(m *instructions.Mount) (string, error) {
	id := m.CacheID
	if id == "" && m.Target != "" {
		id = path.Base(m.Target)
	}
	name := *m.Env
	if name == "" {
		name = id
	}
	src, ok := b.opts.Secrets[id]
	if !ok {
		if m.Required {
			return "", fmt.Errorf("secret %s is required but was not given (--secret id=%s,src=FILE): %w", id, id, errdefs.ErrInvalidArgument)
		}
		return "", nil
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return "", fmt.Errorf("secret %s: %w", id, err)
	}
	return name + "=" + string(data), nil
}

// bindMount mounts a directory or file of the context or of a stage.
// Writes to a read-write bind mount of a directory go to a throwaway
// overlay.
func (b *builder) bindMount(ctx context.Context, target string, m *instructions.Mount, src dockerfile.Source) (*runtime.Mount, func(), error) {
	srcRoot := b.bctx.Dir()
	var release func()
	if src.Kind != dockerfile.SourceContext {
		var dirs []string
		switch src.Kind {
		case dockerfile.SourceStage:
			other := b.results[src.Stage]
			if other == nil {
				return nil, nil, fmt.Errorf("internal error: mount source stage not built")
			}
			dirs = other.dirs
		case dockerfile.SourceImage:
			var err error
			if dirs, err = b.unpack(ctx, b.bases[src.Image].layers); err != nil {
				return nil, nil, err
			}
		}
		v, rel, err := b.view(ctx, dirs)
		if err != nil {
			return nil, nil, err
		}
		srcRoot, release = v, rel
	}
	p, err := securejoin.SecureJoin(srcRoot, m.Source)
	if err != nil {
		if release != nil {
			release()
		}
		return nil, nil, err
	}
	if src.Kind == dockerfile.SourceContext && len(b.bctx.IgnorePatterns()) > 0 {
		// What .dockerignore excludes does not exist for the build.
		if p, release, err = b.filteredContext(p); err != nil {
			return nil, nil, fmt.Errorf("RUN --mount=type=bind source %s: %w", m.Source, err)
		}
	}
	fi, err := os.Stat(p)
	if err != nil {
		if release != nil {
			release()
		}
		return nil, nil, fmt.Errorf("RUN --mount=type=bind source %s: %w", m.Source, err)
	}
	if m.ReadOnly {
		return &runtime.Mount{Type: runtime.MountTypeBind, Source: p, Target: target, ReadOnly: true}, release, nil
	}
	if !fi.IsDir() {
		if release != nil {
			release()
		}
		return nil, nil, fmt.Errorf("RUN --mount=type=bind,rw of a file (%s) is not supported: %w", m.Source, errdefs.ErrNotImplemented)
	}
	od, err := b.tempDir("bind")
	if err != nil {
		return nil, nil, err
	}
	up, wk, mp := filepath.Join(od, "upper"), filepath.Join(od, "work"), filepath.Join(od, "merged")
	for _, d := range []string{up, wk, mp} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, nil, err
		}
	}
	b.trackMount(mp, true)
	if err := rootfs.MountOverlay(ctx, mp, []string{p}, up, wk); err != nil {
		b.trackMount(mp, false)
		if release != nil {
			release()
		}
		return nil, nil, err
	}
	return &runtime.Mount{Type: runtime.MountTypeBind, Source: mp, Target: target}, func() {
		if err := rootfs.Unmount(mp); err == nil {
			b.trackMount(mp, false)
		}
		if release != nil {
			release()
		}
	}, nil
}

// mountSource is the planned source of a step's k-th mount.
func (b *builder) mountSource(step dockerfile.Step, k int) dockerfile.Source {
	if k < len(step.MountSources) {
		return step.MountSources[k]
	}
	return dockerfile.Source{}
}

// mountKey is what a RUN mount adds to the step's cache key: its options
// and, for a bind mount, what it shows (the checksum of the context files,
// or the key of the stage or the ID of the image it comes from). Secret
// contents are left out, as BuildKit does.
func (b *builder) mountKey(ctx context.Context, m *instructions.Mount, src dockerfile.Source) (string, error) {
	num := func(p *uint64) string {
		if p == nil {
			return "-"
		}
		return strconv.FormatUint(*p, 8)
	}
	str := func(p *string) string {
		if p == nil {
			return "-"
		}
		return *p
	}
	fields := []string{string(m.Type), m.From, m.Source, m.Target, strconv.FormatBool(m.ReadOnly),
		strconv.FormatInt(m.SizeLimit, 10), m.CacheID, string(m.CacheSharing), strconv.FormatBool(m.Required),
		str(m.Env), num(m.Mode), num(m.UID), num(m.GID)}
	if m.Type == instructions.MountTypeBind {
		switch src.Kind {
		case dockerfile.SourceContext:
			source := m.Source
			if source == "" {
				source = "."
			}
			srcs, err := b.bctx.Resolve([]string{source})
			if err != nil {
				return "", fmt.Errorf("RUN --mount=type=bind source %s: %w", source, err)
			}
			entries, err := buildctx.Plan(ctx, srcs, "/mount/", buildctx.CopyOptions{KeepOwner: true})
			if err != nil {
				return "", err
			}
			sum, err := buildctx.Checksum(ctx, entries)
			if err != nil {
				return "", err
			}
			fields = append(fields, sum)
		case dockerfile.SourceStage:
			other := b.results[src.Stage]
			if other == nil {
				return "", fmt.Errorf("internal error: mount source stage not built")
			}
			fields = append(fields, other.key)
		case dockerfile.SourceImage:
			fields = append(fields, b.bases[src.Image].id.String())
		}
	}
	return cacheKey("mount", fields...), nil
}

func (b *builder) lockFor(p string) *sync.Mutex {
	b.mu.Lock()
	defer b.mu.Unlock()
	mu, ok := b.locks[p]
	if !ok {
		mu = &sync.Mutex{}
		b.locks[p] = mu
	}
	return mu
}

// firstMissing is the host path of the first component of dest (a path in
// the container) that root lacks, or "" when it exists.
func firstMissing(root, dest string) string {
	cur := root
	for _, part := range strings.Split(strings.Trim(path.Clean(dest), "/"), "/") {
		if part == "" {
			continue
		}
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if err != nil {
			return cur
		}
		if !fi.IsDir() {
			return ""
		}
	}
	return ""
}

// removeStub removes a mount point the runtime created: an empty file, or
// a directory holding nothing but such mount points.
func removeStub(p string) {
	fi, err := os.Lstat(p)
	if err != nil {
		return
	}
	if fi.IsDir() {
		entries, err := os.ReadDir(p)
		if err != nil {
			return
		}
		for _, e := range entries {
			removeStub(filepath.Join(p, e.Name()))
		}
		_ = os.Remove(p)
		return
	}
	if fi.Mode().IsRegular() && fi.Size() == 0 {
		_ = os.Remove(p)
	}
}

// pruneCopyUps removes from upper the directory rel and its parents when
// overlayfs only copied them up to hold a mount point: empty, not opaque,
// with the mode and owner of the lower directory. Otherwise they would be
// in the layer.
func pruneCopyUps(upper string, lowers []string, rel string) {
	for ; rel != "." && rel != "/" && rel != ""; rel = filepath.Dir(rel) {
		p := filepath.Join(upper, rel)
		fi, err := os.Lstat(p)
		if err != nil || !fi.IsDir() {
			return
		}
		if entries, err := os.ReadDir(p); err != nil || len(entries) > 0 {
			return
		}
		for _, attr := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
			if n, _ := unix.Lgetxattr(p, attr, make([]byte, 8)); n > 0 {
				return
			}
		}
		var lower os.FileInfo
		for i := len(lowers) - 1; i >= 0 && lower == nil; i-- {
			lower, _ = os.Lstat(filepath.Join(lowers[i], rel))
		}
		if lower == nil || !lower.IsDir() || lower.Mode() != fi.Mode() || !sameOwner(lower, fi) {
			return
		}
		if os.Remove(p) != nil {
			return
		}
	}
}

func sameOwner(a, b os.FileInfo) bool {
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && sa.Uid == sb.Uid && sa.Gid == sb.Gid
}

// outputWriter splits a container's output into lines for events and
// keeps the last ones for errors.
type outputWriter struct {
	emit  func([]byte)
	mu    sync.Mutex
	buf   []byte
	lines []string
}

func (w *outputWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.line(w.buf[:i+1])
		w.buf = w.buf[i+1:]
	}
	// Very long lines are cut rather than buffered without bound.
	if len(w.buf) > 64<<10 {
		w.line(w.buf)
		w.buf = nil
	}
	return len(p), nil
}

func (w *outputWriter) line(l []byte) {
	c := append([]byte(nil), l...)
	w.lines = append(w.lines, string(c))
	if len(w.lines) > outputLines {
		w.lines = w.lines[len(w.lines)-outputLines:]
	}
	w.emit(c)
}

func (w *outputWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.line(append(w.buf, '\n'))
		w.buf = nil
	}
}

func (w *outputWriter) tail() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.lines...)
}

// filteredContext makes a copy of the context path p (a file or a
// directory) without what the ignore file excludes: hard links to the
// context's files where possible, copies otherwise. It returns the copy's
// path and a function that removes it.
func (b *builder) filteredContext(p string) (string, func(), error) {
	d, err := b.tempDir("ctx")
	if err != nil {
		return "", nil, err
	}
	remove := func() { os.RemoveAll(d) }
	out := filepath.Join(d, "src")
	root := b.bctx.Dir()
	if rel, err := filepath.Rel(root, p); err == nil && rel != "." && b.bctx.Excluded(filepath.ToSlash(rel)) {
		remove()
		return "", nil, fmt.Errorf("%s is excluded by %s: %w", filepath.ToSlash(rel), filepath.Base(b.bctx.IgnoreFile()), errdefs.ErrNotFound)
	}
	err = filepath.WalkDir(p, func(q string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, q)
		if err != nil {
			return err
		}
		// Directories are walked even when excluded: an exception ("!")
		// may bring back something below them.
		if q != p && b.bctx.Excluded(filepath.ToSlash(rel)) && !de.IsDir() {
			return nil
		}
		inner, err := filepath.Rel(p, q)
		if err != nil {
			return err
		}
		dst := filepath.Join(out, inner)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		switch {
		case de.IsDir():
			if q != p && b.bctx.Excluded(filepath.ToSlash(rel)) {
				// Made when something below is kept (MkdirAll above).
				return nil
			}
			if err := os.Mkdir(dst, fi.Mode().Perm()); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			if err := os.Chmod(dst, fi.Mode().Perm()); err != nil {
				return err
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(q)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, dst); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			if err := os.Link(q, dst); err != nil {
				if err := buildctx.CopyFile(q, dst, fi.Mode().Perm()); err != nil {
					return err
				}
			}
		default:
			return nil // sockets, devices: not part of a build context
		}
		if st != nil {
			return os.Lchown(dst, int(st.Uid), int(st.Gid))
		}
		return nil
	})
	if err != nil {
		remove()
		return "", nil, err
	}
	return out, remove, nil
}
