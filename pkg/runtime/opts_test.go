package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/berthsh/berth/pkg/errdefs"
)

func TestParsePortSpecs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []PortSpec
		err  error
	}{
		{"80", []PortSpec{{ContainerPort: 80, Proto: "tcp"}}, nil},
		{"8080:80", []PortSpec{{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}}, nil},
		{"8080:80/udp", []PortSpec{{HostPort: 8080, ContainerPort: 80, Proto: "udp"}}, nil},
		{"8080:80/TCP", []PortSpec{{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}}, nil},
		{"127.0.0.1:8080:80", []PortSpec{{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Proto: "tcp"}}, nil},
		{"127.0.0.1::80", []PortSpec{{HostIP: "127.0.0.1", ContainerPort: 80, Proto: "tcp"}}, nil},
		{"[::1]:8080:80", []PortSpec{{HostIP: "::1", HostPort: 8080, ContainerPort: 80, Proto: "tcp"}}, nil},
		{"0:80", []PortSpec{{ContainerPort: 80, Proto: "tcp"}}, nil},
		{"8000-8002:9000-9002", []PortSpec{
			{HostPort: 8000, ContainerPort: 9000, Proto: "tcp"},
			{HostPort: 8001, ContainerPort: 9001, Proto: "tcp"},
			{HostPort: 8002, ContainerPort: 9002, Proto: "tcp"},
		}, nil},
		{"7000-7001/udp", []PortSpec{{ContainerPort: 7000, Proto: "udp"}, {ContainerPort: 7001, Proto: "udp"}}, nil},
		{"", nil, errdefs.ErrInvalidArgument},
		{"0", nil, errdefs.ErrInvalidArgument},
		{"http", nil, errdefs.ErrInvalidArgument},
		{"70000", nil, errdefs.ErrInvalidArgument},
		{"8080:80/icmp", nil, errdefs.ErrInvalidArgument},
		{"80/sctp", nil, errdefs.ErrNotImplemented},
		{"nothost:8080:80", nil, errdefs.ErrInvalidArgument},
		{"8000-8001:9000-9002", nil, errdefs.ErrInvalidArgument},
		{"8000-8010:80", nil, errdefs.ErrNotImplemented},
		{"8080:9000-9002", nil, errdefs.ErrInvalidArgument},
		{"9002-9000", nil, errdefs.ErrInvalidArgument},
	} {
		got, err := ParsePortSpecs([]string{tc.in})
		if tc.err != nil {
			if !errors.Is(err, tc.err) || (tc.in != "" && !strings.Contains(err.Error(), tc.in)) {
				t.Errorf("ParsePortSpecs(%q) error = %v, want %v naming the value", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParsePortSpecs(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	got, err := ParsePortSpecs([]string{"80", "443:443"})
	if err != nil || len(got) != 2 {
		t.Errorf("two specs: %+v, %v", got, err)
	}
}

func TestParseVolume(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in   string
		want MountSpec
		err  bool
	}{
		{"/data", MountSpec{Type: "volume", Target: "/data"}, false},
		{"/data/", MountSpec{Type: "volume", Target: "/data"}, false},
		{"vol:/data", MountSpec{Type: "volume", Source: "vol", Target: "/data"}, false},
		{"vol:/data:ro", MountSpec{Type: "volume", Source: "vol", Target: "/data", ReadOnly: true}, false},
		{"vol:/data:nocopy,rw", MountSpec{Type: "volume", Source: "vol", Target: "/data", Options: []string{"nocopy"}}, false},
		{"/srv:/data", MountSpec{Type: "bind", Source: "/srv", Target: "/data"}, false},
		{"/srv/../etc:/data:ro,rshared,z", MountSpec{Type: "bind", Source: "/etc", Target: "/data", ReadOnly: true, Options: []string{"rshared"}}, false},
		{"./src:/app", MountSpec{Type: "bind", Source: filepath.Join(wd, "src"), Target: "/app"}, false},
		{".:/app:cached", MountSpec{Type: "bind", Source: wd, Target: "/app"}, false},
		{"/data:ro", MountSpec{}, true},
		{"vol:data", MountSpec{}, true},
		{"vol:/", MountSpec{}, true},
		{":/data", MountSpec{}, true},
		{"a:/b:/c:ro", MountSpec{}, true},
		{"vol:/data:ro,rw", MountSpec{}, true},
		{"vol:/data:rshared", MountSpec{}, true},
		{"/srv:/data:nocopy", MountSpec{}, true},
		{"/srv:/data:bogus", MountSpec{}, true},
		{"/srv:/data:shared,slave", MountSpec{}, true},
		{"bad name:/data", MountSpec{}, true},
		{"x:/data", MountSpec{}, true}, // volume names need two characters
		{"", MountSpec{}, true},
	} {
		got, err := ParseVolume(tc.in)
		if tc.err {
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.in) {
				t.Errorf("ParseVolume(%q) error = %v, want invalid argument naming it", tc.in, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseVolume(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseMount(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want MountSpec
		err  error
	}{
		{"type=bind,source=/srv,target=/data", MountSpec{Type: "bind", Source: "/srv", Target: "/data"}, nil},
		{"type=bind,src=/srv,dst=/data,readonly,bind-propagation=rslave", MountSpec{Type: "bind", Source: "/srv", Target: "/data", ReadOnly: true, Options: []string{"rslave"}}, nil},
		{"type=bind,src=/srv,destination=/data,ro=false,bind-nonrecursive", MountSpec{Type: "bind", Source: "/srv", Target: "/data", Options: []string{"norbind"}}, nil},
		{"target=/data", MountSpec{Type: "volume", Target: "/data"}, nil},
		{"source=vol,target=/data,volume-nocopy=true,volume-driver=local", MountSpec{Type: "volume", Source: "vol", Target: "/data", Options: []string{"nocopy"}}, nil},
		{"type=tmpfs,target=/tmp,tmpfs-size=64m,tmpfs-mode=1770", MountSpec{Type: "tmpfs", Target: "/tmp", Options: []string{"size=67108864", "mode=1770"}}, nil},
		{`type=bind,"source=/a,b",target=/data`, MountSpec{Type: "bind", Source: "/a,b", Target: "/data"}, nil},
		{"type=bind,target=/data", MountSpec{}, errdefs.ErrInvalidArgument},
		{"type=bind,source=/srv", MountSpec{}, errdefs.ErrInvalidArgument},
		{"type=tmpfs,source=x,target=/t", MountSpec{}, errdefs.ErrInvalidArgument},
		{"type=weird,target=/t", MountSpec{}, errdefs.ErrInvalidArgument},
		{"type=npipe,target=/t", MountSpec{}, errdefs.ErrNotImplemented},
		{"type=volume,target=/t,volume-opt=o=x", MountSpec{}, errdefs.ErrNotImplemented},
		{"type=volume,target=/t,volume-driver=nfs", MountSpec{}, errdefs.ErrNotImplemented},
		{"type=volume,target=/t,tmpfs-size=1m", MountSpec{}, errdefs.ErrInvalidArgument},
		{"type=bind,source=/s,target=/t,volume-nocopy", MountSpec{}, errdefs.ErrInvalidArgument},
		{"type=tmpfs,target=/t,tmpfs-size=huge", MountSpec{}, errdefs.ErrInvalidArgument},
		{"type=tmpfs,target=/t,tmpfs-mode=999", MountSpec{}, errdefs.ErrInvalidArgument},
		{"type=bind,source=/s,target=/t,readonly=maybe", MountSpec{}, errdefs.ErrInvalidArgument},
		{"type=bind,source=/s,target=/t,color=red", MountSpec{}, errdefs.ErrInvalidArgument},
		{"type=bind,source=/s,target", MountSpec{}, errdefs.ErrInvalidArgument},
		{"type=bind,source=/s,target=rel", MountSpec{}, errdefs.ErrInvalidArgument},
	} {
		got, err := ParseMount(tc.in)
		if tc.err != nil {
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.in) {
				t.Errorf("ParseMount(%q) error = %v, want %v naming it", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseMount(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseTmpfsAndMountSpecs(t *testing.T) {
	got, err := ParseTmpfs("/run:rw,noexec,size=65536k,ro")
	want := MountSpec{Type: "tmpfs", Target: "/run", ReadOnly: true, Options: []string{"noexec", "size=65536k"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ParseTmpfs = %+v, %v; want %+v", got, err, want)
	}
	if got, err := ParseTmpfs("/run"); err != nil || !reflect.DeepEqual(got, MountSpec{Type: "tmpfs", Target: "/run"}) {
		t.Errorf("ParseTmpfs(/run) = %+v, %v", got, err)
	}
	for _, bad := range []string{"run", "/run:a,,b", ""} {
		if _, err := ParseTmpfs(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseTmpfs(%q) error = %v", bad, err)
		}
	}

	all, err := ParseMountSpecs([]string{"vol:/a"}, []string{"type=bind,src=/s,dst=/b"}, []string{"/c"})
	if err != nil || len(all) != 3 || all[0].Target != "/a" || all[1].Target != "/b" || all[2].Target != "/c" {
		t.Errorf("ParseMountSpecs = %+v, %v", all, err)
	}
	if _, err := ParseMountSpecs([]string{"vol:/a"}, nil, []string{"/a/"}); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "duplicate mount point /a") {
		t.Errorf("duplicate target error = %v", err)
	}
	if _, err := ParseMountSpecs(nil, []string{"type=x"}, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad --mount error = %v", err)
	}
}

func TestParseRestartPolicy(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want RestartPolicy
		bad  bool
	}{
		{"", RestartPolicy{Name: "no"}, false},
		{"no", RestartPolicy{Name: "no"}, false},
		{"always", RestartPolicy{Name: "always"}, false},
		{"unless-stopped", RestartPolicy{Name: "unless-stopped"}, false},
		{"on-failure", RestartPolicy{Name: "on-failure"}, false},
		{"on-failure:3", RestartPolicy{Name: "on-failure", MaximumRetryCount: 3}, false},
		{"on-failure:-1", RestartPolicy{}, true},
		{"on-failure:x", RestartPolicy{}, true},
		{"always:3", RestartPolicy{}, true},
		{"sometimes", RestartPolicy{}, true},
		{":3", RestartPolicy{}, true},
	} {
		got, err := ParseRestartPolicy(tc.in)
		if tc.bad {
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.in) {
				t.Errorf("ParseRestartPolicy(%q) error = %v", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRestartPolicy(%q) = %+v, %v", tc.in, got, err)
		}
	}
}

func TestParseUlimit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Ulimit
		bad  bool
	}{
		{"nofile=1024:2048", Ulimit{"nofile", 1024, 2048}, false},
		{"nproc=512", Ulimit{"nproc", 512, 512}, false},
		{"core=-1", Ulimit{"core", -1, -1}, false},
		{"memlock=64:-1", Ulimit{"memlock", 64, -1}, false},
		{"nofile=2048:1024", Ulimit{}, true},
		{"nofile=-1:1024", Ulimit{}, true},
		{"nofile", Ulimit{}, true},
		{"files=10", Ulimit{}, true},
		{"nofile=x", Ulimit{}, true},
		{"nofile=1:y", Ulimit{}, true},
		{"nofile=-5", Ulimit{}, true},
	} {
		got, err := ParseUlimit(tc.in)
		if tc.bad {
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.in) {
				t.Errorf("ParseUlimit(%q) error = %v", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseUlimit(%q) = %+v, %v", tc.in, got, err)
		}
	}
}

func TestParseMemoryAndCPUs(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "1024": 1024, "100b": 100, "1k": 1024, "256m": 256 << 20, "256M": 256 << 20,
		"1g": 1 << 30, "1gb": 1 << 30, "1.5g": 3 << 29, "2t": 2 << 40,
	} {
		if got, err := ParseMemory(in); err != nil || got != want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "m", "-1", "12x", "1 g g"} {
		if _, err := ParseMemory(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseMemory(%q) error = %v", bad, err)
		}
	}
	if n, err := ParseMemorySwap("-1"); err != nil || n != -1 {
		t.Errorf("ParseMemorySwap(-1) = %d, %v", n, err)
	}
	if n, err := ParseMemorySwap("1g"); err != nil || n != 1<<30 {
		t.Errorf("ParseMemorySwap(1g) = %d, %v", n, err)
	}
	if _, err := ParseMemorySwap("-2"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("ParseMemorySwap(-2) error = %v", err)
	}

	for in, want := range map[string]float64{"0.5": 0.5, "2": 2, "0": 0, "1.000000001": 1.000000001} {
		if got, err := ParseCPUs(in); err != nil || got != want {
			t.Errorf("ParseCPUs(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "abc", "NaN", "Inf", "0.0000000001"} {
		if _, err := ParseCPUs(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseCPUs(%q) error = %v", bad, err)
		}
	}
}

func TestParseEnv(t *testing.T) {
	lookup := func(k string) (string, bool) {
		if k == "SET" {
			return "from-host", true
		}
		if k == "EMPTY" {
			return "", true
		}
		return "", false
	}
	got, err := ParseEnv([]string{"A=1", "B=", "C=x=y", "SET", "EMPTY", "UNSET"}, lookup)
	want := []string{"A=1", "B=", "C=x=y", "SET=from-host", "EMPTY="}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ParseEnv = %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{"=x", "", "A B=1"} {
		if _, err := ParseEnv([]string{bad}, lookup); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseEnv(%q) error = %v", bad, err)
		}
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "env")
	content := "\xef\xbb\xbf# comment\nA=1\n\n   B=two words \nC=\"quoted\"\r\nSET\nUNSET\n  # indented comment\nD=a=b\n"
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = ParseEnvFile(file, lookup)
	want = []string{"A=1", "B=two words ", `C="quoted"`, "SET=from-host", "D=a=b"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ParseEnvFile = %q, %v; want %q", got, err, want)
	}
	for name, body := range map[string]string{"space": "A B=1\n", "noname": "=1\n", "utf8": "A=\xff\n"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ParseEnvFile(p, lookup); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), p) {
			t.Errorf("ParseEnvFile(%s) error = %v", name, err)
		}
	}
	if _, err := ParseEnvFile(filepath.Join(dir, "missing"), lookup); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing env file error = %v", err)
	}
}

func TestParseLabels(t *testing.T) {
	got, err := ParseLabels([]string{"a=1", "b", "c=x=y", "a=2"})
	want := map[string]string{"a": "2", "b": "", "c": "x=y"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ParseLabels = %v, %v", got, err)
	}
	if got, err := ParseLabels(nil); err != nil || got != nil {
		t.Errorf("ParseLabels(nil) = %v, %v", got, err)
	}
	if _, err := ParseLabels([]string{"=v"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("ParseLabels(=v) error = %v", err)
	}
	p := filepath.Join(t.TempDir(), "labels")
	if err := os.WriteFile(p, []byte("# c\nk=v\nflag\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := ParseLabelFile(p); err != nil || !reflect.DeepEqual(got, map[string]string{"k": "v", "flag": ""}) {
		t.Errorf("ParseLabelFile = %v, %v", got, err)
	}
}

func TestParseSignal(t *testing.T) {
	// ParseSignal lives in manager.go; check the forms the CLI passes.
	for in, want := range map[string]syscall.Signal{
		"SIGTERM": 15, "TERM": 15, "term": 15, "15": 15, "SIGKILL": 9, "9": 9, "HUP": 1,
		"SIGUSR1": 10, "64": 64,
	} {
		if got, err := ParseSignal(in); err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "65", "-1", "SIGFOO", "SIG"} {
		if _, err := ParseSignal(bad); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), `"`+bad+`"`) {
			t.Errorf("ParseSignal(%q) error = %v", bad, err)
		}
	}
	for sig, want := range map[syscall.Signal]string{15: "SIGTERM", 6: "SIGABRT", 17: "SIGCHLD", 29: "SIGIO", 34: "SIGRTMIN", 36: "SIGRTMIN+2", 99: "99"} {
		if got := SignalName(sig); got != want {
			t.Errorf("SignalName(%d) = %q, want %q", sig, got, want)
		}
	}
}
