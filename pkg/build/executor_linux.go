package build

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"golang.org/x/sync/errgroup"

	"github.com/berthsh/berth/internal/flock"
	"github.com/berthsh/berth/pkg/build/buildctx"
	"github.com/berthsh/berth/pkg/build/dockerfile"
	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/reference"
	"github.com/berthsh/berth/pkg/registry"
	"github.com/berthsh/berth/pkg/rootfs"
	"github.com/berthsh/berth/pkg/runtime"
	"github.com/berthsh/berth/pkg/store"
	"github.com/berthsh/berth/pkg/store/archive"
)

// historyComment marks history entries of Dockerfile steps, as BuildKit's.
const historyComment = "buildkit.dockerfile.v0"

// layerRef is one layer of an image being built.
type layerRef struct {
	desc   v1.Descriptor
	diffID v1.Hash
}

// baseImage is an image from the store used as a base or COPY --from.
type baseImage struct {
	img    store.Image
	id     v1.Hash
	cf     *v1.ConfigFile
	layers []layerRef
}

// stageState is a stage being built: its image so far.
type stageState struct {
	name    string
	cf      *v1.ConfigFile // the base's config file (history, author, ...)
	cb      *dockerfile.ConfigBuilder
	history []v1.History
	layers  []layerRef
	dirs    []string // unpacked layer directories, parallel to layers
	key     string   // cache key of the stage's state
	author  string
	// platform is the stage's platform: FROM --platform, the base stage's,
	// or the build's.
	platform v1.Platform
}

// builder runs one build.
type builder struct {
	s        *store.Store
	opts     Options
	root     string
	tmp      string // ROOT/build/tmp/<id>, removed at the end
	layers   *runtime.LayerCache
	cache    *buildCache
	bctx     *buildctx.Context
	plan     *dockerfile.BuildPlan
	epoch    time.Time
	platform v1.Platform
	network  string

	total    int
	stepBase []int
	results  []*stageState
	bases    map[string]*baseImage

	mu      sync.Mutex
	seq     int
	mounts  map[string]bool // mounted views, for cleanup
	locks   map[string]*sync.Mutex
	emitMu  sync.Mutex
	cleanup bool
	tmpLock *flock.Lock
	useLock *flock.Lock // shared hold on the cache against Prune
}

// Build builds the Dockerfile in opts.ContextDir and stores the image under
// opts.Tags. Nothing is named unless the whole build succeeds; mounts,
// containers and temporary files are removed whatever happens.
func Build(ctx context.Context, s *store.Store, opts Options) (Result, error) {
	b, err := newBuilder(s, opts)
	if err != nil {
		return Result{}, err
	}
	res, err := b.build(ctx)
	if cerr := b.close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return Result{}, fmt.Errorf("build: %w", err)
	}
	return res, nil
}

func newBuilder(s *store.Store, opts Options) (*builder, error) {
	if s == nil {
		return nil, fmt.Errorf("build: no image store: %w", errdefs.ErrInvalidArgument)
	}
	if opts.Root == "" {
		return nil, fmt.Errorf("build: no state root directory given: %w", errdefs.ErrInvalidArgument)
	}
	if opts.ContextDir == "" {
		return nil, fmt.Errorf("build: no build context directory given: %w", errdefs.ErrInvalidArgument)
	}
	for _, t := range opts.Tags {
		if t.IsZero() || t.Digest() != "" {
			return nil, fmt.Errorf("build: tag %q: a name with a digest cannot be a tag: %w", t.Familiar(), errdefs.ErrInvalidArgument)
		}
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	b := &builder{s: s, opts: opts, root: root, bases: map[string]*baseImage{}, mounts: map[string]bool{}, locks: map[string]*sync.Mutex{}}
	switch opts.Network {
	case "", "default", "host":
		b.network = "host"
	case "none":
		b.network = "none"
	default:
		return nil, fmt.Errorf("build: network %q is not supported (use \"host\" or \"none\"): %w", opts.Network, errdefs.ErrInvalidArgument)
	}
	b.platform = opts.Platform
	if b.platform.OS == "" && b.platform.Architecture == "" {
		b.platform = v1.Platform{OS: "linux", Architecture: goruntime.GOARCH}
		if goruntime.GOARCH == "arm" {
			b.platform.Variant = "v7"
		}
	}
	if b.platform.OS == "" || b.platform.Architecture == "" {
		return nil, fmt.Errorf("build: platform %q needs an OS and an architecture: %w", b.platform.String(), errdefs.ErrInvalidArgument)
	}
	b.epoch = time.Unix(0, 0).UTC()
	if opts.SourceDateEpoch != nil {
		b.epoch = opts.SourceDateEpoch.UTC().Truncate(time.Second)
	}
	return b, nil
}

func (b *builder) build(ctx context.Context) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	content, name, dfPath, err := b.readDockerfile()
	if err != nil {
		return Result{}, err
	}
	f, err := dockerfile.Parse(bytes.NewReader(content), name)
	if err != nil {
		return Result{}, err
	}
	b.bctx, err = buildctx.OpenWithDefaultIgnore(b.opts.ContextDir, dfPath, b.opts.DefaultDockerignore)
	if err != nil {
		return Result{}, err
	}
	planOpts := dockerfile.PlanOptions{BuildArgs: b.opts.BuildArgs, Target: b.opts.Target, TargetPlatform: &b.platform}
	plan, err := dockerfile.Plan(f, planOpts)
	if err != nil {
		return Result{}, err
	}

	lease, err := b.s.Lease(ctx)
	if err != nil {
		return Result{}, err
	}
	defer lease.Release()
	if b.layers, err = runtime.OpenLayerCache(filepath.Join(b.root, "layers")); err != nil {
		return Result{}, err
	}
	buildDir := filepath.Join(b.root, "build")
	tmpRoot := filepath.Join(buildDir, "tmp")
	if err := os.MkdirAll(tmpRoot, 0o700); err != nil {
		return Result{}, fmt.Errorf("create build directory: %w", err)
	}
	// Prune waits for running builds and builds for a running Prune.
	if b.useLock, err = flock.Acquire(ctx, filepath.Join(buildDir, pruneLockName), false); err != nil {
		return Result{}, fmt.Errorf("build cache: %w", err)
	}
	// The lock comes first, so that a directory whose lock nobody holds
	// belongs to a build that died.
	tmpName := "build-" + randomID()
	if b.tmpLock, err = flock.Acquire(ctx, filepath.Join(tmpRoot, tmpName+".lock"), true); err != nil {
		return Result{}, err
	}
	b.tmp = filepath.Join(tmpRoot, tmpName)
	if err := os.Mkdir(b.tmp, 0o700); err != nil {
		return Result{}, fmt.Errorf("create build directory: %w", err)
	}
	b.cleanup = true
	sweepStale(ctx, tmpRoot)
	if b.cache, err = openCache(buildDir); err != nil {
		return Result{}, err
	}

	// Resolve the images the plan uses, then plan again with their configs
	// so that expansion sees their environment (and ONBUILD triggers, which
	// may name more images).
	planOpts.BaseConfigs = map[string]dockerfile.BaseConfig{}
	for round := 0; ; round++ {
		missing := false
		for _, ref := range planImages(plan) {
			if b.bases[ref] != nil {
				continue
			}
			if round >= 3 {
				return Result{}, fmt.Errorf("ONBUILD triggers of base images keep naming new images (%s): %w", ref, errdefs.ErrInvalidArgument)
			}
			want, err := b.imagePlatform(plan, ref)
			if err != nil {
				return Result{}, err
			}
			bi, err := b.resolveImage(ctx, ref, want)
			if err != nil {
				return Result{}, err
			}
			b.bases[ref] = bi
			c := bi.cf.Config
			planOpts.BaseConfigs[ref] = dockerfile.BaseConfig{Env: c.Env, Shell: c.Shell, WorkingDir: c.WorkingDir, OnBuild: c.OnBuild}
			missing = true
		}
		if !missing {
			break
		}
		if plan, err = dockerfile.Plan(f, planOpts); err != nil {
			return Result{}, err
		}
	}
	b.plan = plan

	b.stepBase = make([]int, len(plan.Stages))
	for i, st := range plan.Stages {
		b.stepBase[i] = b.total
		if st.Needed {
			b.total += len(st.Steps)
		}
	}
	b.results = make([]*stageState, len(plan.Stages))
	for _, wave := range plan.Waves {
		g, gctx := errgroup.WithContext(ctx)
		for _, i := range wave {
			g.Go(func() error { return b.runStage(gctx, i) })
		}
		if err := g.Wait(); err != nil {
			// Keep what the finished steps taught the cache.
			_ = b.cache.save(context.WithoutCancel(ctx))
			if ctx.Err() != nil {
				return Result{}, ctx.Err()
			}
			return Result{}, err
		}
	}
	if err := b.cache.save(ctx); err != nil {
		return Result{}, err
	}
	res, err := b.writeImage(ctx, b.results[plan.Target])
	if err != nil {
		return Result{}, err
	}
	for _, w := range plan.Warnings {
		res.Warnings = append(res.Warnings, w.String())
	}
	if w := plan.UnusedBuildArgsWarning(); w != "" {
		res.Warnings = append(res.Warnings, w)
	}
	return res, nil
}

// planImages are the images the needed stages use, as bases or sources.
func planImages(plan *dockerfile.BuildPlan) []string {
	var images []string
	for _, st := range plan.Stages {
		if !st.Needed {
			continue
		}
		if st.Base.Kind == dockerfile.BaseImage {
			images = append(images, st.Base.Image)
		}
		images = append(images, st.Images...)
		for _, step := range st.Steps {
			for _, src := range append([]dockerfile.Source{step.From}, step.MountSources...) {
				if src.Kind == dockerfile.SourceImage {
					images = append(images, src.Image)
				}
			}
		}
	}
	slices.Sort(images)
	return slices.Compact(images)
}

// readDockerfile returns the Dockerfile's content, its name for messages
// and the path that locates its ignore file.
func (b *builder) readDockerfile() (content []byte, name, path string, err error) {
	path = b.opts.Dockerfile
	if b.opts.DockerfileContent != nil {
		name = "Dockerfile"
		if path != "" && path != "-" {
			name = filepath.Base(path)
		} else {
			path = ""
		}
		return b.opts.DockerfileContent, name, path, nil
	}
	if path == "" {
		path = filepath.Join(b.opts.ContextDir, "Dockerfile")
	}
	content, err = os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, "", "", fmt.Errorf("Dockerfile %s: no such file (give its path with -f): %w", path, errdefs.ErrNotFound)
		}
		return nil, "", "", fmt.Errorf("read Dockerfile: %w", err)
	}
	return content, filepath.Base(path), path, nil
}

// close unmounts what is still mounted and removes the temporary files.
func (b *builder) close() error {
	var errs []error
	b.mu.Lock()
	mounts := make([]string, 0, len(b.mounts))
	for m := range b.mounts {
		mounts = append(mounts, m)
	}
	b.mu.Unlock()
	// Deeper mounts first.
	slices.SortFunc(mounts, func(a, b string) int { return len(b) - len(a) })
	for _, m := range mounts {
		if err := rootfs.Unmount(m); err != nil {
			errs = append(errs, err)
		}
	}
	if b.bctx != nil {
		b.bctx.Close()
	}
	// Never remove through a mount that is still there.
	if b.cleanup && len(errs) == 0 {
		if err := rootfs.RemoveAll(b.tmp); err != nil {
			errs = append(errs, fmt.Errorf("remove build directory: %w", err))
		} else {
			os.Remove(b.tmp + ".lock")
		}
	}
	b.tmpLock.Unlock()
	b.useLock.Unlock()
	return errors.Join(errs...)
}

// sweepStale removes what builds that died (killed, or the machine went
// down) left in tmpRoot: their containers, mounts and files. A directory
// is stale when nobody holds its lock.
func sweepStale(ctx context.Context, tmpRoot string) {
	entries, err := os.ReadDir(tmpRoot)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "build-") {
			continue
		}
		dir := filepath.Join(tmpRoot, e.Name())
		l, err := flock.TryAcquire(dir+".lock", true)
		if err != nil || l == nil {
			continue
		}
		if cleanStale(ctx, dir) {
			os.Remove(dir + ".lock")
		}
		l.Unlock()
	}
}

func cleanStale(ctx context.Context, dir string) bool {
	stateRoot := filepath.Join(dir, "libcontainer")
	ids, _ := os.ReadDir(stateRoot)
	for _, id := range ids {
		if c, err := runtime.Load(ctx, stateRoot, id.Name()); err == nil {
			dctx, cancel := context.WithTimeout(ctx, destroyTimeout)
			err := c.Destroy(dctx)
			cancel()
			if err != nil {
				return false
			}
		}
	}
	mounts := mountsUnder(dir)
	slices.SortFunc(mounts, func(a, b string) int { return len(b) - len(a) })
	for _, m := range mounts {
		if rootfs.Unmount(m) != nil {
			return false
		}
	}
	return rootfs.RemoveAll(dir) == nil
}

// mountsUnder lists the mount points at or below dir.
func mountsUnder(dir string) []string {
	// Not /proc/self: that is the main thread's view, and libcontainer may
	// leave the main thread in a container's mount namespace (a goroutine
	// that locked it to join one and ended there).
	data, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		return nil
	}
	unescape := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		mp := unescape.Replace(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out
}

// resolveImage finds an image in the store, pulling it when it is missing
// or Options.Pull is set.
func (b *builder) resolveImage(ctx context.Context, ref string, want v1.Platform) (*baseImage, error) {
	r, err := reference.Parse(ref)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	img, err := b.s.Get(ctx, r.String())
	if err == nil && !b.opts.Pull {
		// The store keeps one platform of an image: one of another
		// platform has to be pulled for this one.
		if cf, _, cerr := b.s.ConfigFile(ctx, img); cerr == nil && !platformMatches(cf, want) {
			pr, perr := registry.Pull(ctx, b.s, r, registry.PullOptions{Platform: &want})
			if perr != nil {
				return nil, fmt.Errorf("image %s in the store is %s, not %s as FROM --platform or --platform asks, and pulling it for %s failed (pull or load that platform first, or drop --platform): %w",
					r.Familiar(), configPlatform(cf), want.String(), want.String(), perr)
			}
			img = pr.Image
		}
	}
	if b.opts.Pull || errors.Is(err, errdefs.ErrNotFound) {
		pr, perr := registry.Pull(ctx, b.s, r, registry.PullOptions{Platform: &want})
		switch {
		case perr != nil && err != nil:
			return nil, fmt.Errorf("image %s is not in the store and could not be pulled (load or import it first): %w", r.Familiar(), perr)
		case perr != nil:
			return nil, fmt.Errorf("pull %s: %w", r.Familiar(), perr)
		}
		img = pr.Image
	} else if err != nil {
		return nil, fmt.Errorf("image %s: %w", r.Familiar(), err)
	}
	cf, id, err := b.s.ConfigFile(ctx, img)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", r.Familiar(), err)
	}
	m, err := b.s.Manifest(ctx, img)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", r.Familiar(), err)
	}
	if len(m.Layers) != len(cf.RootFS.DiffIDs) {
		return nil, fmt.Errorf("image %s: manifest has %d layers but config lists %d diff IDs: %w", r.Familiar(), len(m.Layers), len(cf.RootFS.DiffIDs), errdefs.ErrDataCorrupt)
	}
	if !platformMatches(cf, want) {
		return nil, fmt.Errorf("image %s is %s, not %s: %w", r.Familiar(), configPlatform(cf), want.String(), errdefs.ErrNotFound)
	}
	bi := &baseImage{img: img, id: id, cf: cf}
	for k, d := range m.Layers {
		bi.layers = append(bi.layers, layerRef{desc: d, diffID: cf.RootFS.DiffIDs[k]})
	}
	return bi, nil
}

// unpack makes sure layers are unpacked and returns their directories.
func (b *builder) unpack(ctx context.Context, layers []layerRef) ([]string, error) {
	dirs := make([]string, 0, len(layers))
	for _, l := range layers {
		d, err := b.layers.UnpackLayer(ctx, b.s, l.desc, l.diffID)
		if err != nil {
			return nil, err
		}
		dirs = append(dirs, d)
	}
	return dirs, nil
}

func (b *builder) emit(ev Event) {
	if b.opts.Progress == nil {
		return
	}
	b.emitMu.Lock()
	defer b.emitMu.Unlock()
	b.opts.Progress(ev)
}

// tempDir makes a new directory in the build's temporary directory.
func (b *builder) tempDir(kind string) (string, error) {
	b.mu.Lock()
	b.seq++
	n := b.seq
	b.mu.Unlock()
	d := filepath.Join(b.tmp, fmt.Sprintf("%s-%d", kind, n))
	if err := os.Mkdir(d, 0o700); err != nil {
		return "", err
	}
	return d, nil
}

func (b *builder) trackMount(p string, on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if on {
		b.mounts[p] = true
	} else {
		delete(b.mounts, p)
	}
}

// view mounts the file system made of dirs (base first) read-only and
// returns its path and a function that unmounts and removes it.
func (b *builder) view(ctx context.Context, dirs []string) (string, func(), error) {
	d, err := b.tempDir("view")
	if err != nil {
		return "", nil, err
	}
	if len(dirs) == 0 {
		return d, func() { os.Remove(d) }, nil
	}
	b.trackMount(d, true)
	if err := rootfs.MountOverlay(ctx, d, dedupe(dirs), "", ""); err != nil {
		b.trackMount(d, false)
		os.Remove(d)
		return "", nil, err
	}
	return d, func() {
		if err := rootfs.Unmount(d); err == nil {
			b.trackMount(d, false)
			os.Remove(d)
		}
	}, nil
}

// dedupe keeps the topmost occurrence of a directory listed twice, as
// overlayfs refuses the same lower twice.
func dedupe(dirs []string) []string {
	seen := map[string]bool{}
	var out []string
	for i := len(dirs) - 1; i >= 0; i-- {
		if !seen[dirs[i]] {
			seen[dirs[i]] = true
			out = append(out, dirs[i])
		}
	}
	slices.Reverse(out)
	return out
}

// runStage builds stage i on top of its base.
func (b *builder) runStage(ctx context.Context, i int) error {
	ps := b.plan.Stages[i]
	st := &stageState{name: ps.DisplayName(), platform: b.platform}
	if ps.Base.Kind == dockerfile.BaseStage && b.results[ps.Base.Stage] != nil {
		st.platform = b.results[ps.Base.Stage].platform
	}
	if ps.Platform != "" {
		p, err := v1.ParsePlatform(ps.Platform)
		if err != nil {
			return fmt.Errorf("stage %s: FROM --platform=%s: %w", st.name, ps.Platform, errdefs.ErrInvalidArgument)
		}
		st.platform = *p
	}
	plat := st.platform.String()
	epoch := b.epoch.Format(time.RFC3339)
	switch ps.Base.Kind {
	case dockerfile.BaseScratch:
		// As BuildKit's empty image: working directory "/" (and PATH, below).
		st.cf = &v1.ConfigFile{Config: v1.Config{WorkingDir: "/"}}
		st.key = cacheKey("", "scratch", plat, epoch)
	case dockerfile.BaseStage:
		p := b.results[ps.Base.Stage]
		if p == nil {
			return fmt.Errorf("internal error: stage %s built before its base", st.name)
		}
		st.cf = p.cf.DeepCopy()
		st.cf.Config = p.cb.Config
		st.cf.Author = p.author
		st.history = slices.Clone(p.history)
		st.layers = slices.Clone(p.layers)
		st.dirs = slices.Clone(p.dirs)
		st.key = p.key
		st.author = p.author
	case dockerfile.BaseImage:
		bi := b.bases[ps.Base.Image]
		st.cf = bi.cf.DeepCopy()
		st.history = slices.Clone(bi.cf.History)
		st.layers = slices.Clone(bi.layers)
		st.author = bi.cf.Author
		dirs, err := b.unpack(ctx, bi.layers)
		if err != nil {
			return fmt.Errorf("stage %s: base image %s: %w", st.name, ps.Base.Name, err)
		}
		st.dirs = dirs
		st.key = cacheKey("", "image", bi.id.String(), plat, epoch)
	}
	if ps.Base.Kind != dockerfile.BaseStage {
		st.cf.Config.Env = withDefaultPath(st.cf.Config.Env, st.platform.OS)
	}
	st.cb = dockerfile.NewConfigBuilder(st.cf.Config)
	for k, step := range ps.Steps {
		if err := b.runStep(ctx, st, b.stepBase[i]+k+1, step); err != nil {
			return err
		}
	}
	b.results[i] = st
	return nil
}

func (b *builder) runStep(ctx context.Context, st *stageState, n int, step dockerfile.Step) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	text := step.Original
	ev := Event{Step: n, Total: b.total, Stage: st.name, Instruction: text}
	start := ev
	start.Started = true
	b.emit(start)
	t0 := time.Now()
	cached, err := b.exec(ctx, st, step, ev)
	done := ev
	done.Done, done.Cached, done.Duration, done.Err = true, cached, time.Since(t0), err
	b.emit(done)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var re *RunError
		if errors.As(err, &re) {
			return fmt.Errorf("stage %s, line %d: %w", st.name, step.Line, err)
		}
		return fmt.Errorf("stage %s, line %d: %s: %w", st.name, step.Line, text, err)
	}
	return nil
}

// exec runs one step; cached reports a cache hit.
func (b *builder) exec(ctx context.Context, st *stageState, step dockerfile.Step, ev Event) (cached bool, err error) {
	switch in := step.Instruction.(type) {
	case *instructions.RunCommand:
		return b.run(ctx, st, step, ev)
	case *instructions.CopyCommand:
		return b.copy(ctx, st, step, copySpec{
			sd: in.SourcesAndDest, chown: in.Chown, chmod: in.Chmod, link: in.Link,
			exclude: in.ExcludePatterns, parents: in.Parents,
		})
	case *instructions.AddCommand:
		return b.copy(ctx, st, step, copySpec{
			add: true, sd: in.SourcesAndDest, chown: in.Chown, chmod: in.Chmod, link: in.Link,
			exclude: in.ExcludePatterns, checksum: in.Checksum, unpack: in.Unpack,
		})
	case *instructions.WorkdirCommand:
		return b.workdir(ctx, st, step)
	case *instructions.MaintainerCommand:
		st.author = in.Maintainer
	}
	st.cb.Apply(step)
	text := dockerfile.CreatedBy(step)
	st.key = cacheKey(st.key, "config", text, step.Original)
	if text != "" {
		b.addHistory(st, text, true)
	}
	return false, nil
}

func (b *builder) addHistory(st *stageState, text string, empty bool) {
	st.history = append(st.history, v1.History{
		Created:    v1.Time{Time: b.epoch},
		CreatedBy:  text,
		Comment:    historyComment,
		EmptyLayer: empty,
	})
}

// lookup finds key in the cache, unless NoCache is set or the layer it
// names is gone from the store.
func (b *builder) lookup(ctx context.Context, key string) (*cacheEntry, bool) {
	if b.opts.NoCache {
		return nil, false
	}
	e, ok := b.cache.get(key)
	if !ok {
		return nil, false
	}
	if e.Layer != nil {
		if info, err := b.s.BlobInfo(ctx, e.Layer.Digest); err != nil || info.Size != e.Layer.Size {
			return nil, false
		}
	}
	return e, true
}

// addResult records a step's outcome (a layer, or none) in the stage and
// the cache, and moves the stage's key on by the result, so that later
// steps depend on what this one produced.
func (b *builder) addResult(ctx context.Context, st *stageState, key, text string, e cacheEntry, cached bool) error {
	if e.Layer != nil {
		l := layerRef{desc: *e.Layer, diffID: e.DiffID}
		dirs, err := b.unpack(ctx, []layerRef{l})
		if err != nil {
			return err
		}
		st.layers = append(st.layers, l)
		st.dirs = append(st.dirs, dirs[0])
		b.addHistory(st, text, false)
		st.key = cacheKey(key, "layer", e.DiffID.String())
	} else {
		b.addHistory(st, text, true)
		st.key = cacheKey(key, "nolayer")
	}
	if !cached {
		b.cache.put(key, e)
	}
	return nil
}

// storeLayer writes the tar that write produces into the store.
func (b *builder) storeLayer(ctx context.Context, write func(w io.Writer) error) (cacheEntry, error) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := write(pw)
		pw.CloseWithError(err)
		done <- err
	}()
	desc, diffID, err := archive.StoreLayer(ctx, b.s, pr)
	pr.CloseWithError(errors.New("layer writer stopped"))
	werr := <-done
	if err != nil {
		return cacheEntry{}, err
	}
	if werr != nil {
		return cacheEntry{}, werr
	}
	return cacheEntry{Layer: &desc, DiffID: diffID}, nil
}

// randomID is a short random hex string.
func randomID() string {
	var p [8]byte
	_, _ = rand.Read(p[:])
	return hex.EncodeToString(p[:])
}

// canRun reports whether RUN can execute for the stage's platform.
func (b *builder) canRun(st *stageState) error {
	if st.platform.OS != "linux" || st.platform.Architecture != goruntime.GOARCH {
		return fmt.Errorf("RUN for platform %s on a %s machine needs emulation, which berth does not do: %w", st.platform.String(), goruntime.GOARCH, errdefs.ErrNotImplemented)
	}
	return nil
}

// imagePlatform is the platform to resolve image ref for: that of the
// FROM --platform of the needed stages based on it, else the build's. Two
// stages asking for the same image on different platforms are refused.
func (b *builder) imagePlatform(plan *dockerfile.BuildPlan, ref string) (v1.Platform, error) {
	want, set := b.platform, ""
	for _, st := range plan.Stages {
		if !st.Needed || st.Base.Kind != dockerfile.BaseImage || st.Base.Image != ref || st.Platform == "" {
			continue
		}
		p, err := v1.ParsePlatform(st.Platform)
		if err != nil {
			return want, fmt.Errorf("FROM --platform=%s: %w", st.Platform, errdefs.ErrInvalidArgument)
		}
		if set != "" && set != p.String() {
			return want, fmt.Errorf("image %s is used for platforms %s and %s in one build, which berth does not support: %w", ref, set, p.String(), errdefs.ErrNotImplemented)
		}
		want, set = *p, p.String()
	}
	return want, nil
}

// platformMatches reports whether an image config is for platform want;
// an image that does not say is taken to match.
func platformMatches(cf *v1.ConfigFile, want v1.Platform) bool {
	if cf.OS == "" && cf.Architecture == "" {
		return true
	}
	if cf.OS != want.OS || cf.Architecture != want.Architecture {
		return false
	}
	return want.Variant == "" || cf.Variant == "" || cf.Variant == want.Variant
}

func configPlatform(cf *v1.ConfigFile) string {
	p := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
	return p.String()
}

func joinEnv(env []string) string { return strings.Join(env, "\x00") }

// defaultPath is the PATH BuildKit gives an image whose base sets none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// withDefaultPath appends PATH to env when it lacks one, as BuildKit does
// for every stage of a Linux image (FROM scratch included).
func withDefaultPath(env []string, os string) []string {
	if os == "windows" {
		return env
	}
	for _, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			return env
		}
	}
	return append(slices.Clone(env), "PATH="+defaultPath)
}
