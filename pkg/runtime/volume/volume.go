package volume

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthsh/berth/internal/atomicfile"
	"github.com/berthsh/berth/internal/flock"
	"github.com/berthsh/berth/pkg/errdefs"
)

const (
	// DriverLocal is the only volume driver: a directory on the host.
	DriverLocal = "local"
	// ScopeLocal is the scope of every volume (docker's "local"; "global"
	// is for swarm).
	ScopeLocal = "local"
	// AnonymousLabel marks a volume created for a container without a
	// name (docker's label). Prune removes only such volumes unless All
	// is set.
	AnonymousLabel = "com.docker.volume.anonymous"

	dataDir    = "_data"
	metaFile   = "volume.json"
	lockName   = ".lock"
	tmpPrefix  = ".tmp-"
	rmPrefix   = ".rm-"
	seedPrefix = ".seed-"
)

// nameRE is docker's rule for local volume names.
var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// ValidateName reports whether name may name a volume, wrapping
// errdefs.ErrInvalidArgument when not.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed (at least 2 characters); if you intended to pass a host directory, use an absolute path: %w",
			name, errdefs.ErrInvalidArgument)
	}
	return nil
}

// Volume is a volume's metadata, as kept in volume.json.
type Volume struct {
	Name   string
	Driver string
	// Mountpoint is the absolute host path of the data directory, the
	// source of the container's bind mount.
	Mountpoint string
	CreatedAt  time.Time
	Labels     map[string]string `json:",omitempty"`
	// Options are the driver options (docker's -o type=…,device=…,o=…).
	// Mounting a volume that has them is the caller's business.
	Options map[string]string `json:",omitempty"`
	Scope   string
	// Seeded is set once Seed has copied image content into the volume.
	Seeded bool `json:",omitempty"`
}

// CreateOptions are the settings of a new volume.
type CreateOptions struct {
	// Driver is "" or "local".
	Driver string
	Labels map[string]string
	// DriverOpts are the local driver's options: type, device and o
	// (mount(8)'s type, source and options); type and device go together.
	DriverOpts map[string]string
}

// InUseFunc returns the IDs of the containers that use the named volume,
// none when it is unused. A nil InUseFunc means no volume is in use.
type InUseFunc func(name string) []string

func (f InUseFunc) users(name string) []string {
	if f == nil {
		return nil
	}
	return f(name)
}

// ListOptions select volumes for List.
type ListOptions struct {
	Filter Filter
	// InUse decides the dangling filter.
	InUse InUseFunc
}

// RemoveOptions control Remove.
type RemoveOptions struct {
	// Force makes removing a volume that does not exist succeed. As with
	// docker, it does not allow removing a volume in use.
	Force bool
	InUse InUseFunc
}

// PruneOptions control Prune.
type PruneOptions struct {
	// All prunes every unused volume; otherwise only anonymous ones
	// (labelled AnonymousLabel), as docker 23 and later do.
	All bool
	// Filter further narrows the volumes pruned (label filters).
	Filter Filter
	InUse  InUseFunc
}

// Store is a directory of volumes.
type Store struct {
	dir string
}

// Open opens the volume store in dir, creating the directory if needed,
// and deletes what killed processes left behind when no other process is
// working in it.
func Open(ctx context.Context, dir string) (*Store, error) {
	if dir == "" {
		return nil, fmt.Errorf("open volume store: empty directory: %w", errdefs.ErrInvalidArgument)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open volume store %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("open volume store: %w", classifyFSError(err))
	}
	s := &Store{dir: abs}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l, err := flock.TryAcquire(s.path(lockName), true)
	if err != nil {
		return nil, fmt.Errorf("open volume store: %w", err)
	}
	if l != nil {
		s.cleanLeftovers()
		l.Unlock()
	}
	return s, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.dir}, elem...)...)
}

// cleanLeftovers deletes volumes half created or half removed by killed
// processes. The caller holds the store lock.
func (s *Store) cleanLeftovers() {
	entries, _ := os.ReadDir(s.dir)
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, tmpPrefix) || strings.HasPrefix(n, rmPrefix) {
			os.RemoveAll(s.path(n))
		}
	}
}

func (s *Store) lock(ctx context.Context) (*flock.Lock, error) {
	return flock.Acquire(ctx, s.path(lockName), true)
}

func noSuchVolume(name string) error {
	return fmt.Errorf("no such volume: %s: %w", name, errdefs.ErrNotFound)
}

// Create creates a volume, or returns the existing one of that name.
// An empty name gets a random 64-hex-digit name. Asking for labels or
// options different from those of an existing volume fails with
// errdefs.ErrConflict; asking for none returns the volume as it is.
func (s *Store) Create(ctx context.Context, name string, opts CreateOptions) (Volume, error) {
	if opts.Driver != "" && opts.Driver != DriverLocal {
		return Volume{}, fmt.Errorf("create %s: volume driver %q is not supported; berth has only the %q driver: %w",
			name, opts.Driver, DriverLocal, errdefs.ErrNotImplemented)
	}
	if name == "" {
		name = randomName()
	} else if err := ValidateName(name); err != nil {
		return Volume{}, fmt.Errorf("create %s: %w", name, err)
	}
	if err := validateOpts(opts.DriverOpts); err != nil {
		return Volume{}, fmt.Errorf("create %s: %w", name, err)
	}
	l, err := s.lock(ctx)
	if err != nil {
		return Volume{}, fmt.Errorf("create %s: %w", name, err)
	}
	defer l.Unlock()
	s.cleanLeftovers()

	existing, err := s.load(name)
	switch {
	case err == nil:
		if (len(opts.Labels) > 0 && !maps.Equal(opts.Labels, existing.Labels)) ||
			(len(opts.DriverOpts) > 0 && !maps.Equal(opts.DriverOpts, existing.Options)) {
			return Volume{}, fmt.Errorf("create %s: a volume of that name already exists with other labels or options; remove it first or pick another name: %w",
				name, errdefs.ErrConflict)
		}
		return existing, nil
	case !errors.Is(err, errdefs.ErrNotFound):
		return Volume{}, fmt.Errorf("create %s: %w", name, err)
	}
	if _, err := os.Lstat(s.path(name)); err == nil {
		return Volume{}, fmt.Errorf("create %s: %s exists but is not a volume (it has no %s); move it away: %w",
			name, s.path(name), metaFile, errdefs.ErrConflict)
	}

	v := Volume{
		Name:       name,
		Driver:     DriverLocal,
		Mountpoint: s.path(name, dataDir),
		CreatedAt:  time.Now().UTC().Truncate(time.Second),
		Labels:     cloneMap(opts.Labels),
		Options:    cloneMap(opts.DriverOpts),
		Scope:      ScopeLocal,
	}
	if err := s.build(v); err != nil {
		return Volume{}, fmt.Errorf("create %s: %w", name, classifyFSError(err))
	}
	return v, nil
}

// build makes v's directory under a temporary name and renames it into
// place. The caller holds the store lock.
func (s *Store) build(v Volume) (err error) {
	tmp, err := os.MkdirTemp(s.dir, tmpPrefix+v.Name+"-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(tmp, dataDir), 0o755); err != nil {
		return err
	}
	// Mkdir's mode is subject to the umask; the data directory must be
	// 0755 as with docker, or non-root container users cannot enter it.
	if err := os.Chmod(filepath.Join(tmp, dataDir), 0o755); err != nil {
		return err
	}
	if err := writeMeta(filepath.Join(tmp, metaFile), v); err != nil {
		return err
	}
	if err := atomicfile.SyncDir(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.path(v.Name)); err != nil {
		return err
	}
	return atomicfile.SyncDir(s.dir)
}

// validateOpts checks the local driver's options as docker does.
func validateOpts(opts map[string]string) error {
	for k := range opts {
		switch k {
		case "type", "device", "o":
		case "size":
			return fmt.Errorf("volume option \"size\" needs filesystem quotas, which berth does not support: %w", errdefs.ErrNotImplemented)
		default:
			return fmt.Errorf("invalid volume option %q: the local driver takes type, device and o: %w", k, errdefs.ErrInvalidArgument)
		}
	}
	if len(opts) > 0 && (opts["type"] == "" || opts["device"] == "") {
		return fmt.Errorf("volume options need both type and device (as for mount -t TYPE -o O DEVICE): %w", errdefs.ErrInvalidArgument)
	}
	return nil
}

func randomName() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return hex.EncodeToString(b)
}

func cloneMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

// Get returns the named volume, or an error wrapping errdefs.ErrNotFound.
func (s *Store) Get(ctx context.Context, name string) (Volume, error) {
	if err := ctx.Err(); err != nil {
		return Volume{}, err
	}
	if ValidateName(name) != nil {
		return Volume{}, noSuchVolume(name)
	}
	return s.load(name)
}

// load reads a volume's metadata; name is valid.
func (s *Store) load(name string) (Volume, error) {
	p := s.path(name, metaFile)
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return Volume{}, noSuchVolume(name)
		}
		return Volume{}, fmt.Errorf("read volume %s: %w", name, classifyFSError(err))
	}
	var v Volume
	if err := json.Unmarshal(b, &v); err != nil {
		return Volume{}, fmt.Errorf("read %s: %v; remove the volume with 'berth volume rm %s': %w", p, err, name, errdefs.ErrDataCorrupt)
	}
	// The directory is the truth about name and place; the store may have
	// been moved since the file was written.
	v.Name = name
	v.Mountpoint = s.path(name, dataDir)
	if v.Driver == "" {
		v.Driver = DriverLocal
	}
	if v.Scope == "" {
		v.Scope = ScopeLocal
	}
	return v, nil
}

// List returns the volumes that match opts.Filter, sorted by name.
func (s *Store) List(ctx context.Context, opts ListOptions) ([]Volume, error) {
	m, err := opts.Filter.matcher()
	if err != nil {
		return nil, err
	}
	all, err := s.all(ctx)
	if err != nil {
		return nil, err
	}
	var out []Volume
	for _, v := range all {
		if m.match(v, opts.InUse) {
			out = append(out, v)
		}
	}
	return out, nil
}

// all returns every volume, sorted by name.
func (s *Store) all(ctx context.Context) ([]Volume, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", classifyFSError(err))
	}
	var out []Volume
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !e.IsDir() || ValidateName(e.Name()) != nil {
			continue
		}
		v, err := s.load(e.Name())
		if errors.Is(err, errdefs.ErrNotFound) {
			continue // not a volume (or removed meanwhile)
		}
		if err != nil {
			return nil, fmt.Errorf("list volumes: %w", err)
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// inUseError is docker's message for removing a volume containers use.
func inUseError(name string, users []string) error {
	return fmt.Errorf("remove %s: volume is in use - [%s]: %w", name, strings.Join(users, ", "), errdefs.ErrConflict)
}

// Remove deletes a volume and its data. A volume some container uses is
// not removed (errdefs.ErrConflict naming the containers), even with
// Force; Force only makes a missing volume no error.
func (s *Store) Remove(ctx context.Context, name string, opts RemoveOptions) error {
	if ValidateName(name) != nil {
		if opts.Force {
			return nil
		}
		return fmt.Errorf("remove %s: %w", name, noSuchVolume(name))
	}
	l, err := s.lock(ctx)
	if err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	defer l.Unlock()
	if _, err := os.Stat(s.path(name, metaFile)); err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			if opts.Force {
				return nil
			}
			return fmt.Errorf("remove %s: %w", name, noSuchVolume(name))
		}
		return fmt.Errorf("remove %s: %w", name, classifyFSError(err))
	}
	if users := opts.InUse.users(name); len(users) > 0 {
		return inUseError(name, users)
	}
	return s.removeLocked(ctx, name)
}

// removeLocked renames a volume's directory away and deletes it. The
// caller holds the store lock. It waits for a Seed of the volume to end.
func (s *Store) removeLocked(ctx context.Context, name string) error {
	vl, err := lockDir(ctx, s.path(name))
	if err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	defer vl.Unlock()
	gone := s.path(rmPrefix + name + "-" + randomName()[:12])
	if err := os.Rename(s.path(name), gone); err != nil {
		return fmt.Errorf("remove %s: %w", name, classifyFSError(err))
	}
	if err := atomicfile.SyncDir(s.dir); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("volume %s was removed, but deleting its data in %s failed (berth retries later): %w",
			name, gone, classifyFSError(err))
	}
	return nil
}

// Prune removes the volumes no container uses — only anonymous ones
// unless opts.All — that match opts.Filter's label filters. It returns
// the names removed, sorted, and the bytes their data took. On an error
// it still returns what it removed.
func (s *Store) Prune(ctx context.Context, opts PruneOptions) (removed []string, reclaimed int64, err error) {
	m, err := opts.Filter.matcher()
	if err != nil {
		return nil, 0, err
	}
	l, err := s.lock(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("prune volumes: %w", err)
	}
	defer l.Unlock()
	s.cleanLeftovers()
	all, err := s.all(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("prune volumes: %w", err)
	}
	var errs []error
	for _, v := range all {
		if _, anon := v.Labels[AnonymousLabel]; !opts.All && !anon {
			continue
		}
		if !m.match(v, opts.InUse) || len(opts.InUse.users(v.Name)) > 0 {
			continue
		}
		size, err := s.Size(ctx, v.Name)
		if err != nil {
			if ctx.Err() != nil {
				return removed, reclaimed, ctx.Err()
			}
			size = 0 // still remove it; the size is only reported
		}
		if err := s.removeLocked(ctx, v.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, v.Name)
		reclaimed += size
	}
	if len(errs) > 0 {
		return removed, reclaimed, fmt.Errorf("prune volumes: %w", errors.Join(errs...))
	}
	return removed, reclaimed, nil
}

// Size returns the bytes the volume's data takes: the sizes of the files
// under its data directory, each hard-linked file counted once.
func (s *Store) Size(ctx context.Context, name string) (int64, error) {
	if ValidateName(name) != nil {
		return 0, noSuchVolume(name)
	}
	root := s.path(name, dataDir)
	if _, err := os.Lstat(root); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, noSuchVolume(name)
		}
		return 0, fmt.Errorf("size of volume %s: %w", name, classifyFSError(err))
	}
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	var total int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // deleted while we walk
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			k := inode{uint64(st.Dev), uint64(st.Ino)}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		total += fi.Size()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("size of volume %s: %w", name, classifyFSError(err))
	}
	return total, nil
}

// writeMeta writes v to path atomically.
func writeMeta(path string, v Volume) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o644)
}

// classifyFSError marks permission errors so the CLI can say what to do.
func classifyFSError(err error) error {
	if errors.Is(err, fs.ErrPermission) && !errors.Is(err, errdefs.ErrPermission) {
		return fmt.Errorf("%w: %w", err, errdefs.ErrPermission)
	}
	return err
}

// lockDir takes an exclusive lock on the existing directory path (not
// following a symlink), waiting until ctx is done.
func lockDir(ctx context.Context, path string) (*flock.Lock, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, classifyFSError(err))
	}
	return flock.AcquireFile(ctx, f, true)
}
