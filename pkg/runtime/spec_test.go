package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthsh/berth/pkg/errdefs"
)

// fakeRootfs makes a directory with /etc/passwd and /etc/group.
func fakeRootfs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, "etc", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("passwd", "root:x:0:0:root:/root:/bin/sh\n"+
		"app:x:1000:1001:App:/home/app:/bin/sh\n"+
		"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
	write("group", "root:x:0:\n"+
		"staff:x:50:app\n"+
		"appgrp:x:1001:\n"+
		"audio:x:29:\n"+
		"nogroup:x:65534:\n")
	return dir
}

func mustSpec(t *testing.T, img *v1.Config, root string, opts CreateOptions) *specs.Spec {
	t.Helper()
	s, err := CreateSpec(img, root, opts)
	if err != nil {
		t.Fatalf("CreateSpec: %v", err)
	}
	return s
}

func TestCreateSpecCommand(t *testing.T) {
	root := fakeRootfs(t)
	img := &v1.Config{Entrypoint: []string{"/entry"}, Cmd: []string{"default", "args"}}
	tests := []struct {
		name string
		img  *v1.Config
		opts CreateOptions
		want []string
	}{
		{"image defaults", img, CreateOptions{}, []string{"/entry", "default", "args"}},
		{"cmd replaces image cmd", img, CreateOptions{Cmd: []string{"mine"}}, []string{"/entry", "mine"}},
		{"entrypoint resets image cmd", img, CreateOptions{Entrypoint: []string{"/bin/sh"}, EntrypointSet: true}, []string{"/bin/sh"}},
		{"entrypoint and cmd", img, CreateOptions{Entrypoint: []string{"/bin/sh"}, EntrypointSet: true, Cmd: []string{"-c", "x"}}, []string{"/bin/sh", "-c", "x"}},
		{"empty entrypoint", img, CreateOptions{EntrypointSet: true, Cmd: []string{"ls"}}, []string{"ls"}},
		{"cmd only image", &v1.Config{Cmd: []string{"python3"}}, CreateOptions{}, []string{"python3"}},
		{"no image config", nil, CreateOptions{Cmd: []string{"true"}}, []string{"true"}},
		{"init", img, CreateOptions{Init: true, InitPath: "/usr/libexec/berth-init"}, []string{InitPathInContainer, "--", "/entry", "default", "args"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustSpec(t, tt.img, root, tt.opts)
			if !reflect.DeepEqual(s.Process.Args, tt.want) {
				t.Errorf("args = %q, want %q", s.Process.Args, tt.want)
			}
		})
	}
}

func TestCreateSpecEnv(t *testing.T) {
	root := fakeRootfs(t)
	tests := []struct {
		name string
		img  []string
		opts CreateOptions
		want []string
	}{
		{"defaults", nil, CreateOptions{}, []string{"PATH=" + DefaultPath, "HOME=/root"}},
		{"image path replaces default in place", []string{"A=1", "PATH=/venv/bin:/usr/bin"}, CreateOptions{Hostname: "h"},
			[]string{"PATH=/venv/bin:/usr/bin", "HOSTNAME=h", "A=1", "HOME=/root"}},
		{"user overrides image", []string{"A=1", "B=2"}, CreateOptions{Env: []string{"B=3", "C="}},
			[]string{"PATH=" + DefaultPath, "A=1", "B=3", "C=", "HOME=/root"}},
		{"tty and explicit home", nil, CreateOptions{Tty: true, Env: []string{"HOME=/x"}},
			[]string{"PATH=" + DefaultPath, "TERM=xterm", "HOME=/x"}},
		{"home of the user", nil, CreateOptions{User: "app"}, []string{"PATH=" + DefaultPath, "HOME=/home/app"}},
		{"value with equals sign", nil, CreateOptions{Env: []string{"URL=a=b"}}, []string{"PATH=" + DefaultPath, "URL=a=b", "HOME=/root"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustSpec(t, &v1.Config{Env: tt.img, Cmd: []string{"x"}}, root, tt.opts)
			if !reflect.DeepEqual(s.Process.Env, tt.want) {
				t.Errorf("env = %q, want %q", s.Process.Env, tt.want)
			}
		})
	}
}

func TestCreateSpecUser(t *testing.T) {
	root := fakeRootfs(t)
	tests := []struct {
		name     string
		imgUser  string
		opts     CreateOptions
		uid, gid uint32
		sgids    []uint32
	}{
		{"root by default", "", CreateOptions{}, 0, 0, nil},
		{"name", "", CreateOptions{User: "app"}, 1000, 1001, []uint32{50}},
		{"name and group drops supplementary groups", "", CreateOptions{User: "app:audio"}, 1000, 29, nil},
		{"numeric passthrough", "", CreateOptions{User: "4242:4343"}, 4242, 4343, nil},
		{"numeric known uid", "", CreateOptions{User: "65534"}, 65534, 65534, nil},
		{"image user", "app", CreateOptions{}, 1000, 1001, []uint32{50}},
		{"option beats image", "app", CreateOptions{User: "0"}, 0, 0, nil},
		{"group add", "", CreateOptions{User: "app", GroupAdd: []string{"audio", "777"}}, 1000, 1001, []uint32{29, 50, 777}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustSpec(t, &v1.Config{User: tt.imgUser, Cmd: []string{"x"}}, root, tt.opts)
			u := s.Process.User
			if u.UID != tt.uid || u.GID != tt.gid || !reflect.DeepEqual(u.AdditionalGids, tt.sgids) {
				t.Errorf("user = %d:%d %v, want %d:%d %v", u.UID, u.GID, u.AdditionalGids, tt.uid, tt.gid, tt.sgids)
			}
		})
	}
}

func TestCreateSpecUserNoPasswd(t *testing.T) {
	root := t.TempDir()
	s := mustSpec(t, nil, root, CreateOptions{Cmd: []string{"x"}, User: "12:34"})
	if s.Process.User.UID != 12 || s.Process.User.GID != 34 {
		t.Errorf("user = %+v, want 12:34", s.Process.User)
	}
	if _, err := CreateSpec(nil, root, CreateOptions{Cmd: []string{"x"}, User: "app"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("named user without /etc/passwd: err = %v, want ErrInvalidArgument", err)
	}
}

func TestCreateSpecUserSymlinkStaysInRoot(t *testing.T) {
	// /etc/passwd pointing at an absolute path must be read inside the
	// root, not from the host.
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "alt"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "alt", "passwd"), []byte("root:x:0:0::/inside:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/alt/passwd", filepath.Join(root, "etc", "passwd")); err != nil {
		t.Fatal(err)
	}
	s := mustSpec(t, nil, root, CreateOptions{Cmd: []string{"x"}})
	if !slices.Contains(s.Process.Env, "HOME=/inside") {
		t.Errorf("env %q: want HOME=/inside read through the in-root symlink", s.Process.Env)
	}
}

func TestCreateSpecCapabilities(t *testing.T) {
	root := fakeRootfs(t)
	def := sortedUnique(DefaultCapabilities)
	tests := []struct {
		name string
		opts CreateOptions
		want func(t *testing.T, caps []string)
	}{
		{"default", CreateOptions{}, func(t *testing.T, caps []string) {
			if !reflect.DeepEqual(caps, def) {
				t.Errorf("caps = %v, want %v", caps, def)
			}
		}},
		{"add and drop", CreateOptions{CapAdd: []string{"net_admin"}, CapDrop: []string{"CAP_CHOWN", "mknod"}}, func(t *testing.T, caps []string) {
			if !slices.Contains(caps, "CAP_NET_ADMIN") || slices.Contains(caps, "CAP_CHOWN") || slices.Contains(caps, "CAP_MKNOD") || len(caps) != len(def)-1 {
				t.Errorf("caps = %v", caps)
			}
		}},
		{"drop all add one", CreateOptions{CapDrop: []string{"ALL"}, CapAdd: []string{"kill"}}, func(t *testing.T, caps []string) {
			if !reflect.DeepEqual(caps, []string{"CAP_KILL"}) {
				t.Errorf("caps = %v", caps)
			}
		}},
		{"drop all", CreateOptions{CapDrop: []string{"all"}}, func(t *testing.T, caps []string) {
			if caps == nil || len(caps) != 0 {
				t.Errorf("caps = %#v, want empty", caps)
			}
		}},
		{"add all drop one", CreateOptions{CapAdd: []string{"ALL"}, CapDrop: []string{"sys_admin"}}, func(t *testing.T, caps []string) {
			if slices.Contains(caps, "CAP_SYS_ADMIN") || !slices.Contains(caps, "CAP_NET_ADMIN") || !slices.Contains(caps, "CAP_CHOWN") {
				t.Errorf("caps = %v", caps)
			}
		}},
		{"privileged", CreateOptions{Privileged: true, CapDrop: []string{"sys_admin"}}, func(t *testing.T, caps []string) {
			if !slices.Contains(caps, "CAP_SYS_ADMIN") || len(caps) < 38 {
				t.Errorf("caps = %v", caps)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Cmd = []string{"x"}
			s := mustSpec(t, nil, root, tt.opts)
			c := s.Process.Capabilities
			if !reflect.DeepEqual(c.Bounding, c.Effective) || !reflect.DeepEqual(c.Bounding, c.Permitted) || len(c.Inheritable) != 0 || len(c.Ambient) != 0 {
				t.Errorf("capability sets differ: %+v", c)
			}
			tt.want(t, c.Bounding)
		})
	}
}

func TestCreateSpecResources(t *testing.T) {
	root := fakeRootfs(t)
	tests := []struct {
		name  string
		opts  CreateOptions
		check func(t *testing.T, r *specs.LinuxResources)
	}{
		{"none", CreateOptions{}, func(t *testing.T, r *specs.LinuxResources) {
			if r.Memory != nil || r.CPU != nil || r.Pids != nil {
				t.Errorf("resources = %+v, want no limits", r)
			}
			if !reflect.DeepEqual(r.Devices, []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}) {
				t.Errorf("devices = %+v, want deny all", r.Devices)
			}
		}},
		{"memory with default swap", CreateOptions{Memory: 64 << 20, MemoryReservation: 32 << 20}, func(t *testing.T, r *specs.LinuxResources) {
			m := r.Memory
			if *m.Limit != 64<<20 || *m.Swap != 128<<20 || *m.Reservation != 32<<20 {
				t.Errorf("memory = %d/%d/%d", *m.Limit, *m.Swap, *m.Reservation)
			}
		}},
		{"memory swap unlimited", CreateOptions{Memory: 64 << 20, MemorySwap: -1}, func(t *testing.T, r *specs.LinuxResources) {
			if *r.Memory.Swap != -1 {
				t.Errorf("swap = %d", *r.Memory.Swap)
			}
		}},
		{"cpus", CreateOptions{CPUs: 0.5, CPUShares: 512, CpusetCpus: "0"}, func(t *testing.T, r *specs.LinuxResources) {
			c := r.CPU
			if *c.Quota != 50000 || *c.Period != 100000 || *c.Shares != 512 || c.Cpus != "0" {
				t.Errorf("cpu = %d/%d shares %d cpus %q", *c.Quota, *c.Period, *c.Shares, c.Cpus)
			}
		}},
		{"pids", CreateOptions{PidsLimit: 100}, func(t *testing.T, r *specs.LinuxResources) {
			if *r.Pids.Limit != 100 {
				t.Errorf("pids = %d", *r.Pids.Limit)
			}
		}},
		{"pids unlimited", CreateOptions{PidsLimit: -5}, func(t *testing.T, r *specs.LinuxResources) {
			if *r.Pids.Limit != -1 {
				t.Errorf("pids = %d", *r.Pids.Limit)
			}
		}},
		{"privileged devices", CreateOptions{Privileged: true}, func(t *testing.T, r *specs.LinuxResources) {
			if !reflect.DeepEqual(r.Devices, []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}) {
				t.Errorf("devices = %+v, want allow all", r.Devices)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Cmd = []string{"x"}
			tt.check(t, mustSpec(t, nil, root, tt.opts).Linux.Resources)
		})
	}
}

func TestCreateSpecInvalid(t *testing.T) {
	root := fakeRootfs(t)
	tests := []struct {
		name string
		opts CreateOptions
		root string
		want string
	}{
		{"no command", CreateOptions{Cmd: nil}, root, "no command"},
		{"relative root", CreateOptions{Cmd: []string{"x"}}, "rel", "must be absolute"},
		{"relative workdir", CreateOptions{Cmd: []string{"x"}, WorkingDir: "app"}, root, "working directory"},
		{"unknown user", CreateOptions{Cmd: []string{"x"}, User: "ghost"}, root, "ghost"},
		{"unknown group", CreateOptions{Cmd: []string{"x"}, User: "app:ghosts"}, root, "ghosts"},
		{"unknown group add", CreateOptions{Cmd: []string{"x"}, GroupAdd: []string{"ghosts"}}, root, "ghosts"},
		{"env without value", CreateOptions{Cmd: []string{"x"}, Env: []string{"FOO"}}, root, "FOO"},
		{"unknown cap", CreateOptions{Cmd: []string{"x"}, CapAdd: []string{"fly"}}, root, "fly"},
		{"tiny memory", CreateOptions{Cmd: []string{"x"}, Memory: 1 << 20}, root, "6MB"},
		{"swap below memory", CreateOptions{Cmd: []string{"x"}, Memory: 64 << 20, MemorySwap: 32 << 20}, root, "smaller"},
		{"swap without memory", CreateOptions{Cmd: []string{"x"}, MemorySwap: 64 << 20}, root, "memory limit"},
		{"reservation above limit", CreateOptions{Cmd: []string{"x"}, Memory: 64 << 20, MemoryReservation: 128 << 20}, root, "reservation"},
		{"too many cpus", CreateOptions{Cmd: []string{"x"}, CPUs: float64(goruntime.NumCPU() + 1)}, root, "range of CPUs"},
		{"bad cpuset", CreateOptions{Cmd: []string{"x"}, CpusetCpus: "3-1"}, root, "cpuset"},
		{"bad ulimit", CreateOptions{Cmd: []string{"x"}, Ulimits: []Ulimit{{Name: "bogus", Soft: 1, Hard: 1}}}, root, "bogus"},
		{"soft above hard", CreateOptions{Cmd: []string{"x"}, Ulimits: []Ulimit{{Name: "nofile", Soft: 10, Hard: 5}}}, root, "soft limit"},
		{"relative mount target", CreateOptions{Cmd: []string{"x"}, Mounts: []Mount{{Type: "tmpfs", Target: "tmp"}}}, root, "absolute"},
		{"relative bind source", CreateOptions{Cmd: []string{"x"}, Mounts: []Mount{{Type: "bind", Source: "data", Target: "/data"}}}, root, "absolute host path"},
		{"unknown mount type", CreateOptions{Cmd: []string{"x"}, Mounts: []Mount{{Type: "nfs", Target: "/data"}}}, root, "unknown mount type"},
		{"duplicate mount", CreateOptions{Cmd: []string{"x"}, Mounts: []Mount{{Type: "tmpfs", Target: "/a"}, {Type: "tmpfs", Target: "/a/"}}}, root, "duplicate"},
		{"init without binary", CreateOptions{Cmd: []string{"x"}, Init: true}, root, "init"},
		{"oom score", CreateOptions{Cmd: []string{"x"}, OOMScoreAdj: 2000}, root, "OOM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CreateSpec(nil, tt.root, tt.opts)
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want ErrInvalidArgument mentioning %q", err, tt.want)
			}
		})
	}
}

func mountAt(s *specs.Spec, dst string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dst {
			return &s.Mounts[i]
		}
	}
	return nil
}

func TestCreateSpecMounts(t *testing.T) {
	root := fakeRootfs(t)
	s := mustSpec(t, nil, root, CreateOptions{
		Cmd:            []string{"x"},
		HostsPath:      "/c/hosts",
		ResolvConfPath: "/c/resolv.conf",
		HostnamePath:   "/c/hostname",
		ShmSize:        1 << 20,
		Mounts: []Mount{
			{Type: MountTypeBind, Source: "/data/sub", Target: "/data/sub"},
			{Type: MountTypeBind, Source: "/data", Target: "/data", ReadOnly: true},
			{Type: MountTypeTmpfs, Target: "/run", Options: []string{"size=1m"}},
		},
	})
	var dsts []string
	for _, m := range s.Mounts {
		dsts = append(dsts, m.Destination)
	}
	want := []string{"/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm",
		"/etc/hosts", "/etc/resolv.conf", "/etc/hostname", "/data", "/run", "/data/sub"}
	if !reflect.DeepEqual(dsts, want) {
		t.Errorf("mount order = %q, want %q", dsts, want)
	}
	if m := mountAt(s, "/dev/shm"); !slices.Contains(m.Options, "size=1048576") {
		t.Errorf("/dev/shm options = %q", m.Options)
	}
	if m := mountAt(s, "/sys"); !slices.Contains(m.Options, "ro") {
		t.Errorf("/sys options = %q, want ro", m.Options)
	}
	if m := mountAt(s, "/data"); m.Source != "/data" || !reflect.DeepEqual(m.Options, []string{"rbind", "rprivate", "ro"}) {
		t.Errorf("/data = %+v", m)
	}
	if m := mountAt(s, "/run"); m.Type != "tmpfs" || !reflect.DeepEqual(m.Options, []string{"nosuid", "nodev", "noexec", "size=1m"}) {
		t.Errorf("/run = %+v", m)
	}
	if m := mountAt(s, "/etc/hosts"); m.Source != "/c/hosts" || m.Type != "bind" || slices.Contains(m.Options, "ro") {
		t.Errorf("/etc/hosts = %+v", m)
	}
	if !reflect.DeepEqual(s.Linux.MaskedPaths, MaskedPaths) || !reflect.DeepEqual(s.Linux.ReadonlyPaths, ReadonlyPaths) {
		t.Errorf("masked %q readonly %q", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}

	// A user mount replaces the default one at the same place; read-only
	// root makes the /etc files read-only; privileged drops the masks and
	// makes /sys writable.
	s = mustSpec(t, nil, root, CreateOptions{
		Cmd: []string{"x"}, ReadOnly: true, Privileged: true, HostsPath: "/c/hosts",
		Mounts: []Mount{{Type: MountTypeTmpfs, Target: "/dev/shm", Options: []string{"size=2m"}}},
	})
	if m := mountAt(s, "/dev/shm"); m.Type != "tmpfs" || m.Source != "tmpfs" || !slices.Contains(m.Options, "size=2m") {
		t.Errorf("/dev/shm = %+v, want the user's", m)
	}
	if n := strings.Count(strings.Join(func() []string {
		var d []string
		for _, m := range s.Mounts {
			d = append(d, m.Destination)
		}
		return d
	}(), " "), "/dev/shm"); n != 1 {
		t.Errorf("/dev/shm mounted %d times", n)
	}
	if !s.Root.Readonly {
		t.Error("root not read-only")
	}
	if m := mountAt(s, "/etc/hosts"); !slices.Contains(m.Options, "ro") {
		t.Errorf("/etc/hosts options = %q, want ro with a read-only root", m.Options)
	}
	if m := mountAt(s, "/sys"); slices.Contains(m.Options, "ro") {
		t.Errorf("privileged /sys options = %q, want writable", m.Options)
	}
	if len(s.Linux.MaskedPaths) != 0 || len(s.Linux.ReadonlyPaths) != 0 {
		t.Errorf("privileged: masked %q readonly %q", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
}

func TestCreateSpecProcessAndNamespaces(t *testing.T) {
	root := fakeRootfs(t)
	img := &v1.Config{Cmd: []string{"x"}, WorkingDir: "srv"}
	s := mustSpec(t, img, root, CreateOptions{
		Hostname: "web", NoNewPrivileges: true, Tty: true, OOMScoreAdj: 500,
		Ulimits: []Ulimit{{Name: "nofile", Soft: 1024, Hard: 4096}, {Name: "core", Soft: -1, Hard: -1}},
		Sysctls: map[string]string{"net.ipv4.ip_forward": "1"},
	})
	if s.Process.Cwd != "/srv" || !s.Process.NoNewPrivileges || !s.Process.Terminal || s.Hostname != "web" || *s.Process.OOMScoreAdj != 500 {
		t.Errorf("process = %+v hostname %q", s.Process, s.Hostname)
	}
	wantRl := []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 4096}, {Type: "RLIMIT_CORE", Soft: ^uint64(0), Hard: ^uint64(0)}}
	if !reflect.DeepEqual(s.Process.Rlimits, wantRl) {
		t.Errorf("rlimits = %+v", s.Process.Rlimits)
	}
	if s.Linux.Sysctl["net.ipv4.ip_forward"] != "1" {
		t.Errorf("sysctl = %v", s.Linux.Sysctl)
	}
	types := func(s *specs.Spec) map[specs.LinuxNamespaceType]string {
		m := map[specs.LinuxNamespaceType]string{}
		for _, n := range s.Linux.Namespaces {
			m[n.Type] = n.Path
		}
		return m
	}
	got := types(s)
	for _, n := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.MountNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.NetworkNamespace} {
		if p, ok := got[n]; !ok || p != "" {
			t.Errorf("namespace %s: present %v path %q", n, ok, p)
		}
	}
	if _, ok := got[specs.UserNamespace]; ok {
		t.Error("unexpected user namespace")
	}
	if p := types(mustSpec(t, img, root, CreateOptions{NetNSPath: "/run/netns/x"}))[specs.NetworkNamespace]; p != "/run/netns/x" {
		t.Errorf("netns path = %q", p)
	}
	if _, ok := types(mustSpec(t, img, root, CreateOptions{HostNetwork: true}))[specs.NetworkNamespace]; ok {
		t.Error("host network still has a network namespace")
	}
	if s := mustSpec(t, img, root, CreateOptions{Tty: true}); s.Process.ConsoleSize != nil {
		t.Errorf("console size %+v without a size given", s.Process.ConsoleSize)
	}
	if s := mustSpec(t, img, root, CreateOptions{Tty: true, ConsoleHeight: 10, ConsoleWidth: 20}); *s.Process.ConsoleSize != (specs.Box{Height: 10, Width: 20}) {
		t.Errorf("console size %+v, want 10x20", s.Process.ConsoleSize)
	}
	if s := mustSpec(t, &v1.Config{Cmd: []string{"x"}}, root, CreateOptions{}); s.Process.Cwd != "/" {
		t.Errorf("default cwd = %q", s.Process.Cwd)
	}
}

func TestExecProcess(t *testing.T) {
	root := fakeRootfs(t)
	spec := mustSpec(t, &v1.Config{Env: []string{"A=1"}, WorkingDir: "/srv"}, root, CreateOptions{
		Cmd: []string{"x"}, User: "app", NoNewPrivileges: true,
		Ulimits: []Ulimit{{Name: "nofile", Soft: 10, Hard: 10}},
	})
	tests := []struct {
		name  string
		opts  ExecOptions
		check func(t *testing.T, p *specs.Process)
	}{
		{"container defaults", ExecOptions{Cmd: []string{"ls"}}, func(t *testing.T, p *specs.Process) {
			if p.User.UID != 1000 || p.User.GID != 1001 || p.Cwd != "/srv" || !p.NoNewPrivileges || len(p.Rlimits) != 1 {
				t.Errorf("process = %+v", p)
			}
			if !reflect.DeepEqual(p.Env, spec.Process.Env) || !reflect.DeepEqual(p.Capabilities, spec.Process.Capabilities) {
				t.Errorf("env %q caps %+v, want the container's", p.Env, p.Capabilities)
			}
			if !reflect.DeepEqual(p.Args, []string{"ls"}) || p.Terminal {
				t.Errorf("args %q terminal %v", p.Args, p.Terminal)
			}
		}},
		{"other user and env", ExecOptions{Cmd: []string{"ls"}, User: "root", Env: []string{"A=2", "B=3"}, WorkingDir: "/tmp"}, func(t *testing.T, p *specs.Process) {
			if p.User.UID != 0 || p.User.GID != 0 || p.Cwd != "/tmp" {
				t.Errorf("user %+v cwd %q", p.User, p.Cwd)
			}
			want := []string{"PATH=" + DefaultPath, "A=2", "HOME=/root", "B=3"}
			if !reflect.DeepEqual(p.Env, want) {
				t.Errorf("env = %q, want %q", p.Env, want)
			}
		}},
		{"tty and privileged", ExecOptions{Cmd: []string{"sh"}, Tty: true, ConsoleHeight: 5, ConsoleWidth: 6, Privileged: true}, func(t *testing.T, p *specs.Process) {
			if !p.Terminal || *p.ConsoleSize != (specs.Box{Height: 5, Width: 6}) || !slices.Contains(p.Env, "TERM=xterm") {
				t.Errorf("terminal %v size %+v env %q", p.Terminal, p.ConsoleSize, p.Env)
			}
			if !slices.Contains(p.Capabilities.Bounding, "CAP_SYS_ADMIN") {
				t.Errorf("privileged exec caps = %v", p.Capabilities.Bounding)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ExecProcess(spec, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, p)
		})
	}
	// The container's spec is not changed by an exec.
	if spec.Process.User.UID != 1000 || slices.Contains(spec.Process.Env, "B=3") {
		t.Errorf("container spec modified: %+v", spec.Process)
	}
	for _, bad := range []ExecOptions{{}, {Cmd: []string{"ls"}, WorkingDir: "rel"}, {Cmd: []string{"ls"}, User: "ghost"}, {Cmd: []string{"ls"}, Env: []string{"NOVALUE"}}} {
		if _, err := ExecProcess(spec, bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ExecProcess(%+v): err = %v, want ErrInvalidArgument", bad, err)
		}
	}
}
