package volume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/berthsh/berth/internal/flock"
	"github.com/berthsh/berth/pkg/errdefs"
)

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "volumes"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustCreate(t *testing.T, s *Store, name string, opts CreateOptions) Volume {
	t.Helper()
	v, err := s.Create(context.Background(), name, opts)
	if err != nil {
		t.Fatalf("create %q: %v", name, err)
	}
	return v
}

// dirNames lists a directory's entries.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// volumeDirs lists the store's entries other than the lock file.
func volumeDirs(t *testing.T, s *Store) []string {
	t.Helper()
	var out []string
	for _, n := range dirNames(t, s.Dir()) {
		if n != lockName {
			out = append(out, n)
		}
	}
	return out
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"ab", true},
		{"my_vol.1-x", true},
		{"0a", true},
		{strings.Repeat("f", 64), true},
		{"a", false},
		{"", false},
		{".ab", false},
		{"_ab", false},
		{"-ab", false},
		{"a/b", false},
		{"../etc", false},
		{"/abs/path", false},
		{"a b", false},
		{"a:b", false},
		{"ünï", false},
	}
	for _, tt := range tests {
		err := ValidateName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalidArgument", tt.name, err)
		}
	}
}

func TestCreateLayout(t *testing.T) {
	s := openStore(t)
	v := mustCreate(t, s, "data", CreateOptions{Labels: map[string]string{"team": "web"}})
	want := filepath.Join(s.Dir(), "data", "_data")
	if v.Mountpoint != want || v.Name != "data" || v.Driver != "local" || v.Scope != "local" || v.CreatedAt.IsZero() {
		t.Errorf("created volume = %+v", v)
	}
	fi, err := os.Stat(want)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
		t.Fatalf("data directory: %v %v", fi, err)
	}
	b, err := os.ReadFile(filepath.Join(s.Dir(), "data", "volume.json"))
	if err != nil {
		t.Fatal(err)
	}
	var onDisk Volume
	if err := json.Unmarshal(b, &onDisk); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(onDisk, v) {
		t.Errorf("volume.json = %+v, want %+v", onDisk, v)
	}
	got, err := s.Get(context.Background(), "data")
	if err != nil || !reflect.DeepEqual(got, v) {
		t.Errorf("Get = %+v, %v; want %+v", got, err, v)
	}

	anon := mustCreate(t, s, "", CreateOptions{})
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(anon.Name) {
		t.Errorf("random name %q is not 64 hex digits", anon.Name)
	}
	if _, err := os.Stat(anon.Mountpoint); err != nil {
		t.Error(err)
	}
	if got := volumeDirs(t, s); !reflect.DeepEqual(got, []string{anon.Name, "data"}) && !reflect.DeepEqual(got, []string{"data", anon.Name}) {
		t.Errorf("store holds %v", got)
	}
}

func TestCreateIdempotenceAndConflict(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	labels := map[string]string{"a": "1"}
	opts := map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=10m"}
	first := mustCreate(t, s, "vol", CreateOptions{Labels: labels, DriverOpts: opts})

	tests := []struct {
		desc    string
		name    string
		opts    CreateOptions
		wantErr error
	}{
		{"same labels and options", "vol", CreateOptions{Labels: map[string]string{"a": "1"}, DriverOpts: opts}, nil},
		{"no labels or options asked", "vol", CreateOptions{}, nil},
		{"explicit local driver", "vol", CreateOptions{Driver: "local"}, nil},
		{"other label value", "vol", CreateOptions{Labels: map[string]string{"a": "2"}}, errdefs.ErrConflict},
		{"extra label", "vol", CreateOptions{Labels: map[string]string{"a": "1", "b": "2"}}, errdefs.ErrConflict},
		{"other options", "vol", CreateOptions{DriverOpts: map[string]string{"type": "none", "device": "/x", "o": "bind"}}, errdefs.ErrConflict},
		{"invalid name", "a", CreateOptions{}, errdefs.ErrInvalidArgument},
		{"path as name", "/srv/data", CreateOptions{}, errdefs.ErrInvalidArgument},
		{"unknown driver", "new", CreateOptions{Driver: "nfs"}, errdefs.ErrNotImplemented},
		{"unknown option", "new", CreateOptions{DriverOpts: map[string]string{"foo": "bar"}}, errdefs.ErrInvalidArgument},
		{"type without device", "new", CreateOptions{DriverOpts: map[string]string{"type": "tmpfs"}}, errdefs.ErrInvalidArgument},
		{"size option", "new", CreateOptions{DriverOpts: map[string]string{"size": "1g"}}, errdefs.ErrNotImplemented},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			v, err := s.Create(ctx, tt.name, tt.opts)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Create = %+v, %v; want %v", v, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(v, first) {
				t.Errorf("Create returned %+v, want the existing %+v", v, first)
			}
		})
	}
	if got := volumeDirs(t, s); !reflect.DeepEqual(got, []string{"vol"}) {
		t.Errorf("store holds %v, want only vol", got)
	}

	// A directory that is not a volume is not taken over.
	if err := os.Mkdir(filepath.Join(s.Dir(), "stray"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "stray", CreateOptions{}); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("Create over a stray directory = %v, want ErrConflict", err)
	}
}

func TestGetNotFound(t *testing.T) {
	s := openStore(t)
	for _, name := range []string{"nope", "../volumes", "a", ""} {
		if _, err := s.Get(context.Background(), name); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", name, err)
		}
	}
}

func TestGetCorrupt(t *testing.T) {
	s := openStore(t)
	mustCreate(t, s, "bad", CreateOptions{})
	if err := os.WriteFile(filepath.Join(s.Dir(), "bad", "volume.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(context.Background(), "bad"); !errors.Is(err, errdefs.ErrDataCorrupt) {
		t.Errorf("Get = %v, want ErrDataCorrupt", err)
	}
	// A damaged volume can still be removed.
	if err := s.Remove(context.Background(), "bad", RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
}

// users maps volume names to the containers using them.
func users(m map[string][]string) InUseFunc {
	return func(name string) []string { return m[name] }
}

func TestList(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	mustCreate(t, s, "a1", CreateOptions{Labels: map[string]string{"app": "web"}})
	mustCreate(t, s, "a2", CreateOptions{Labels: map[string]string{"app": "db", "tier": "back"}})
	mustCreate(t, s, "b1", CreateOptions{Labels: map[string]string{AnonymousLabel: ""}})
	mustCreate(t, s, "bb", CreateOptions{})
	inUse := users(map[string][]string{"a2": {"c1"}})

	tests := []struct {
		filters []string
		want    []string
	}{
		{nil, []string{"a1", "a2", "b1", "bb"}},
		{[]string{"name=a"}, []string{"a1", "a2"}},
		{[]string{"name=^b"}, []string{"b1", "bb"}},
		{[]string{"name=b1"}, []string{"b1"}},
		{[]string{"name=a1", "name=bb"}, []string{"a1", "bb"}},
		{[]string{"name=zz"}, nil},
		{[]string{"label=app"}, []string{"a1", "a2"}},
		{[]string{"label=app=web"}, []string{"a1"}},
		{[]string{"label=app", "label=tier=back"}, []string{"a2"}},
		{[]string{"label!=app"}, []string{"b1", "bb"}},
		{[]string{"label=" + AnonymousLabel}, []string{"b1"}},
		{[]string{"dangling=true"}, []string{"a1", "b1", "bb"}},
		{[]string{"dangling=0"}, []string{"a2"}},
		{[]string{"driver=local"}, []string{"a1", "a2", "b1", "bb"}},
		{[]string{"driver=nfs"}, nil},
		{[]string{"name=a", "dangling=true"}, []string{"a1"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.filters, ","), func(t *testing.T) {
			f, err := ParseListFilter(tt.filters)
			if err != nil {
				t.Fatal(err)
			}
			vols, err := s.List(ctx, ListOptions{Filter: f, InUse: inUse})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range vols {
				got = append(got, v.Name)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("List(%v) = %v, want %v", tt.filters, got, tt.want)
			}
		})
	}
}

func TestParseFilterErrors(t *testing.T) {
	for _, args := range [][]string{
		{"foo=bar"},
		{"noequals"},
		{"dangling=maybe"},
		{"dangling=true", "dangling=false"},
		{"name=("},
		{"label="},
	} {
		if _, err := ParseListFilter(args); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseListFilter(%v) = %v, want ErrInvalidArgument", args, err)
		}
	}
	for _, args := range [][]string{{"dangling=true"}, {"name=x"}, {"until=24h"}} {
		if _, err := ParsePruneFilter(args); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParsePruneFilter(%v) = %v, want ErrInvalidArgument", args, err)
		}
	}
	f, err := ParsePruneFilter([]string{"label=a", "label!=b=c"})
	if err != nil || !reflect.DeepEqual(f.Labels, []string{"a"}) || !reflect.DeepEqual(f.NotLabels, []string{"b=c"}) {
		t.Errorf("ParsePruneFilter = %+v, %v", f, err)
	}
}

func TestRemove(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	v := mustCreate(t, s, "busy", CreateOptions{})
	if err := os.WriteFile(filepath.Join(v.Mountpoint, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "idle", CreateOptions{})
	inUse := users(map[string][]string{"busy": {"abc123", "def456"}})

	tests := []struct {
		desc    string
		name    string
		force   bool
		wantErr error
		wantMsg string
		gone    bool
	}{
		{desc: "in use", name: "busy", wantErr: errdefs.ErrConflict, wantMsg: "remove busy: volume is in use - [abc123, def456]"},
		{desc: "in use with force", name: "busy", force: true, wantErr: errdefs.ErrConflict},
		{desc: "missing", name: "nope", wantErr: errdefs.ErrNotFound},
		{desc: "missing with force", name: "nope", force: true},
		{desc: "invalid name with force", name: "../x", force: true},
		{desc: "invalid name", name: "../x", wantErr: errdefs.ErrNotFound},
		{desc: "unused", name: "idle", gone: true},
		{desc: "already removed", name: "idle", wantErr: errdefs.ErrNotFound, gone: true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			err := s.Remove(ctx, tt.name, RemoveOptions{Force: tt.force, InUse: inUse})
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Remove = %v, want %v", err, tt.wantErr)
			}
			if tt.wantMsg != "" && !strings.HasPrefix(err.Error(), tt.wantMsg) {
				t.Errorf("error %q, want it to start with %q", err, tt.wantMsg)
			}
			if tt.gone {
				if _, err := os.Lstat(filepath.Join(s.Dir(), tt.name)); !os.IsNotExist(err) {
					t.Errorf("%s still on disk: %v", tt.name, err)
				}
			}
		})
	}
	if _, err := os.Stat(filepath.Join(v.Mountpoint, "f")); err != nil {
		t.Errorf("the volume in use lost its data: %v", err)
	}
	if got := volumeDirs(t, s); !reflect.DeepEqual(got, []string{"busy"}) {
		t.Errorf("store holds %v, want [busy]", got)
	}
}

func writeData(t *testing.T, v Volume, name string, size int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(v.Mountpoint, name), make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	anon := map[string]string{AnonymousLabel: ""}
	writeData(t, mustCreate(t, s, "anon1", CreateOptions{Labels: anon}), "f", 1000)
	writeData(t, mustCreate(t, s, "anon2", CreateOptions{Labels: anon}), "f", 10)
	writeData(t, mustCreate(t, s, "named1", CreateOptions{}), "f", 300)
	mustCreate(t, s, "named2", CreateOptions{Labels: map[string]string{"keep": "yes"}})
	writeData(t, mustCreate(t, s, "used", CreateOptions{}), "f", 7)
	inUse := users(map[string][]string{"anon2": {"c1"}, "used": {"c2"}})

	steps := []struct {
		desc      string
		opts      PruneOptions
		want      []string
		reclaimed int64
	}{
		{"anonymous only", PruneOptions{}, []string{"anon1"}, 1000},
		{"again: nothing", PruneOptions{}, nil, 0},
		{"all but label!=keep", PruneOptions{All: true, Filter: Filter{NotLabels: []string{"keep"}}}, []string{"named1"}, 300},
		{"all with label=keep=no", PruneOptions{All: true, Filter: Filter{Labels: []string{"keep=no"}}}, nil, 0},
		{"all", PruneOptions{All: true}, []string{"named2"}, 0},
	}
	for _, st := range steps {
		st.opts.InUse = inUse
		got, reclaimed, err := s.Prune(ctx, st.opts)
		if err != nil {
			t.Fatalf("%s: %v", st.desc, err)
		}
		if !reflect.DeepEqual(got, st.want) || reclaimed != st.reclaimed {
			t.Errorf("%s: Prune = %v, %d; want %v, %d", st.desc, got, reclaimed, st.want, st.reclaimed)
		}
	}
	if got := volumeDirs(t, s); !reflect.DeepEqual(got, []string{"anon2", "used"}) {
		t.Errorf("after prune the store holds %v, want the volumes in use", got)
	}
}

func TestSize(t *testing.T) {
	s := openStore(t)
	v := mustCreate(t, s, "sz", CreateOptions{})
	writeData(t, v, "a", 100)
	if err := os.MkdirAll(filepath.Join(v.Mountpoint, "d", "e"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.Mountpoint, "d", "e", "b"), make([]byte, 50), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(v.Mountpoint, "a"), filepath.Join(v.Mountpoint, "d", "a-link")); err != nil {
		t.Fatal(err)
	}
	got, err := s.Size(context.Background(), "sz")
	if err != nil || got != 150 {
		t.Errorf("Size = %d, %v; want 150 (the hard link counted once)", got, err)
	}
	if _, err := s.Size(context.Background(), "nope"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Size of a missing volume = %v, want ErrNotFound", err)
	}
}

// TestLeftovers simulates processes killed while creating or removing a
// volume: their temporary directories are never listed, and are deleted
// by the next Open or Create (but not while another process holds the
// store lock).
func TestLeftovers(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "volumes")
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	plant := func() {
		// A create killed before its rename: a complete-looking volume
		// under the temporary name.
		half := filepath.Join(dir, tmpPrefix+"ghost-123")
		if err := os.MkdirAll(filepath.Join(half, dataDir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := writeMeta(filepath.Join(half, metaFile), Volume{Name: "ghost"}); err != nil {
			t.Fatal(err)
		}
		// A remove killed after its rename.
		if err := os.MkdirAll(filepath.Join(dir, rmPrefix+"old-456", dataDir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	plant()
	vols, err := s.List(ctx, ListOptions{})
	if err != nil || len(vols) != 0 {
		t.Errorf("List = %v, %v; want no volumes", vols, err)
	}
	if _, err := s.Get(ctx, "ghost"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Get(ghost) = %v, want ErrNotFound", err)
	}

	// Another process holds the lock: Open leaves the leftovers alone.
	held, err := flock.Acquire(ctx, filepath.Join(dir, lockName), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if got := len(volumeDirs(t, s)); got != 2 {
		t.Errorf("Open removed leftovers while the store was locked: %d left", got)
	}
	held.Unlock()

	if _, err := Open(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if got := volumeDirs(t, s); len(got) != 0 {
		t.Errorf("after Open the store holds %v, want nothing", got)
	}

	plant()
	mustCreate(t, s, "ghost", CreateOptions{})
	if got := volumeDirs(t, s); !reflect.DeepEqual(got, []string{"ghost"}) {
		t.Errorf("after Create the store holds %v, want [ghost]", got)
	}
}

func TestConcurrentCreate(t *testing.T) {
	s := openStore(t)
	const n = 8
	var wg sync.WaitGroup
	results := make([]Volume, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = s.Create(context.Background(), "shared", CreateOptions{Labels: map[string]string{"x": "y"}})
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("create %d: %v", i, errs[i])
		}
		if !reflect.DeepEqual(results[i], results[0]) {
			t.Errorf("create %d returned %+v, create 0 %+v", i, results[i], results[0])
		}
	}
	if got := volumeDirs(t, s); !reflect.DeepEqual(got, []string{"shared"}) {
		t.Errorf("store holds %v, want [shared]", got)
	}
}

// TestMain lets the test binary act as a second process for
// TestCrossProcessCreate.
func TestMain(m *testing.M) {
	if dir := os.Getenv("BERTH_VOLUME_TEST_CREATE"); dir != "" {
		s, err := Open(context.Background(), dir)
		if err == nil {
			var v Volume
			v, err = s.Create(context.Background(), "shared", CreateOptions{})
			if err == nil {
				fmt.Println(v.CreatedAt.UnixNano())
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestCrossProcessCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "volumes")
	const n = 4
	outs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "BERTH_VOLUME_TEST_CREATE="+dir)
			out, err := cmd.Output()
			outs[i], errs[i] = string(out), err
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("process %d: %v", i, errs[i])
		}
		if outs[i] != outs[0] {
			t.Errorf("process %d saw a volume created at %s, process 0 at %s", i, outs[i], outs[0])
		}
	}
	names := dirNames(t, dir)
	if !slices.Equal(names, []string{lockName, "shared"}) {
		t.Errorf("store holds %v", names)
	}
}
