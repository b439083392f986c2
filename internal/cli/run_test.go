package cli

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/runtime"
)

// parseCreate parses run flags and arguments as "berth run" would and
// returns the container config, without running anything.
func parseCreate(t *testing.T, args ...string) (runtime.ContainerConfig, error) {
	t.Helper()
	var f createFlags
	cmd := &cobra.Command{Use: "run"}
	addCreateFlags(cmd.Flags(), &f)
	if err := cmd.Flags().Parse(args); err != nil {
		return runtime.ContainerConfig{}, err
	}
	f.changed = cmd.Flags().Changed
	f.lookupEnv = func(k string) (string, bool) {
		if k == "FROM_HOST" {
			return "host-value", true
		}
		return "", false
	}
	return f.config(cmd.Flags().Args())
}

func TestCreateFlagsConfig(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	if err := os.WriteFile(envFile, []byte("# c\nA=from-file\nB=file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	ten := 10
	for _, tc := range []struct {
		name string
		args []string
		want func(*runtime.ContainerConfig)
	}{
		{"defaults", []string{"python:3.12", "python", "-V"}, func(c *runtime.ContainerConfig) {
			c.Create.Cmd = []string{"python", "-V"}
		}},
		{"flags after the image belong to the command", []string{"img", "ls", "-la", "--rm"}, func(c *runtime.ContainerConfig) {
			c.Create.Cmd = []string{"ls", "-la", "--rm"}
		}},
		{"name and env", []string{"--name", "/web", "-e", "A=1", "-e", "FROM_HOST", "-e", "UNSET", "--env-file", envFile, "img"}, func(c *runtime.ContainerConfig) {
			c.Name = "web"
			c.Create.Env = []string{"A=from-file", "B=file", "A=1", "FROM_HOST=host-value"}
		}},
		{"ports", []string{"-p", "8080:80", "-p", "127.0.0.1::53/udp", "-P", "img"}, func(c *runtime.ContainerConfig) {
			c.Ports = []runtime.PortSpec{{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}, {HostIP: "127.0.0.1", ContainerPort: 53, Proto: "udp"}}
			c.PublishAll = true
		}},
		{"mounts", []string{"-v", "data:/data", "-v", "./src:/app:ro", "--mount", "type=tmpfs,target=/cache", "--tmpfs", "/run:size=1m", "img"}, func(c *runtime.ContainerConfig) {
			c.Mounts = []runtime.MountSpec{
				{Type: "volume", Source: "data", Target: "/data"},
				{Type: "bind", Source: filepath.Join(wd, "src"), Target: "/app", ReadOnly: true},
				{Type: "tmpfs", Target: "/cache"},
				{Type: "tmpfs", Target: "/run", Options: []string{"size=1m"}},
			}
		}},
		{"process", []string{"-w", "/srv", "-u", "1000:1000", "-h", "box", "-i", "-t", "--init", "--read-only", "--privileged",
			"--cap-add", "NET_ADMIN", "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--group-add", "audio", "img"}, func(c *runtime.ContainerConfig) {
			c.Create.WorkingDir, c.Create.User, c.Create.Hostname = "/srv", "1000:1000", "box"
			c.Interactive, c.Create.Tty, c.Create.Init, c.Create.ReadOnly, c.Create.Privileged = true, true, true, true, true
			c.Create.CapAdd, c.Create.CapDrop = []string{"NET_ADMIN"}, []string{"ALL"}
			c.Create.NoNewPrivileges = true
			c.Create.GroupAdd = []string{"audio"}
		}},
		{"empty entrypoint is still set", []string{"--entrypoint", "", "img"}, func(c *runtime.ContainerConfig) {
			c.Create.EntrypointSet = true
		}},
		{"entrypoint", []string{"--entrypoint", "/bin/sh", "img", "-c", "true"}, func(c *runtime.ContainerConfig) {
			c.Create.EntrypointSet, c.Create.Entrypoint, c.Create.Cmd = true, []string{"/bin/sh"}, []string{"-c", "true"}
		}},
		{"resources", []string{"-m", "256m", "--memory-swap", "-1", "--memory-reservation", "128m", "--cpus", "0.5", "-c", "512",
			"--cpuset-cpus", "0-1", "--pids-limit", "100", "--ulimit", "nofile=1024:2048", "--shm-size", "64m", "img"}, func(c *runtime.ContainerConfig) {
			c.Create.Memory, c.Create.MemorySwap, c.Create.MemoryReservation = 256<<20, -1, 128<<20
			c.Create.CPUs, c.Create.CPUShares, c.Create.CpusetCpus, c.Create.PidsLimit = 0.5, 512, "0-1", 100
			c.Create.Ulimits = []runtime.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}}
			c.Create.ShmSize = 64 << 20
		}},
		{"network", []string{"--network", "appnet", "--network-alias", "db", "--add-host", "gw:10.0.0.1", "--dns", "1.1.1.1", "img"}, func(c *runtime.ContainerConfig) {
			c.NetworkMode, c.Networks, c.Aliases = "appnet", []string{"appnet"}, []string{"db"}
			c.ExtraHosts, c.DNS = []string{"gw:10.0.0.1"}, []string{"1.1.1.1"}
		}},
		{"host network", []string{"--network", "host", "img"}, func(c *runtime.ContainerConfig) {
			c.NetworkMode, c.Networks = "host", nil
		}},
		{"lifecycle", []string{"--restart", "on-failure:3", "--stop-signal", "INT", "--stop-timeout", "10", "-l", "a=1", "--label", "b", "--log-opt", "max-size=1m", "img"}, func(c *runtime.ContainerConfig) {
			c.RestartPolicy = runtime.RestartPolicy{Name: "on-failure", MaximumRetryCount: 3}
			c.StopSignal, c.StopTimeout = "SIGINT", &ten
			c.Labels = map[string]string{"a": "1", "b": ""}
			c.LogOpts = map[string]string{"max-size": "1m"}
			c.Log.MaxSize = 1000000
		}},
		{"rm", []string{"--rm", "img"}, func(c *runtime.ContainerConfig) { c.AutoRemove = true }},
		{"health", []string{"--health-cmd", "curl -f localhost", "--health-interval", "5s", "--health-retries", "2", "--health-on-failure", "restart", "img"}, func(c *runtime.ContainerConfig) {
			c.Healthcheck = &runtime.HealthConfig{Test: []string{"CMD-SHELL", "curl -f localhost"}, Interval: 5 * time.Second, Retries: 2, OnFailure: "restart"}
		}},
		{"health timing only keeps the image's test", []string{"--health-timeout", "1s", "img"}, func(c *runtime.ContainerConfig) {
			c.Healthcheck = &runtime.HealthConfig{Timeout: time.Second}
		}},
		{"no healthcheck", []string{"--no-healthcheck", "img"}, func(c *runtime.ContainerConfig) {
			c.Healthcheck = &runtime.HealthConfig{Test: []string{"NONE"}}
		}},
		{"platform is accepted", []string{"--platform", "linux/amd64", "img"}, func(*runtime.ContainerConfig) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCreate(t, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			want := runtime.ContainerConfig{Image: got.Image, NetworkMode: "bridge", Networks: []string{"bridge"}, RestartPolicy: runtime.RestartPolicy{Name: "no"}}
			if len(got.Create.Cmd) == 0 {
				want.Create.Cmd = got.Create.Cmd
			}
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("config =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestCreateFlagsErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-p", "http", "img"}, `"http"`},
		{[]string{"-v", "a:b", "img"}, `"a:b"`},
		{[]string{"--mount", "type=nfs,target=/x", "img"}, "nfs"},
		{[]string{"-w", "rel", "img"}, "absolute"},
		{[]string{"--security-opt", "apparmor=unconfined", "img"}, "no-new-privileges"},
		{[]string{"--security-opt", "seccomp=", "img"}, "seccomp=unconfined"},
		{[]string{"--security-opt", "seccomp=/nonexistent.json", "img"}, "read seccomp profile"},
		{[]string{"--security-opt", "no-new-privileges:maybe", "img"}, "maybe"},
		{[]string{"--restart", "sometimes", "img"}, "sometimes"},
		{[]string{"--rm", "--restart", "always", "img"}, "--restart and --rm"},
		{[]string{"-m", "lots", "img"}, "lots"},
		{[]string{"--memory-swap", "1g", "img"}, "memory limit"},
		{[]string{"-m", "1g", "--memory-swap", "512m", "img"}, "larger than the memory"},
		{[]string{"--cpus", "-1", "img"}, "-1"},
		{[]string{"--ulimit", "nofile=2:1", "img"}, "nofile"},
		{[]string{"--stop-signal", "SIGNOPE", "img"}, "SIGNOPE"},
		{[]string{"--log-opt", "max-size=huge", "img"}, "huge"},
		{[]string{"--log-opt", "bogus", "img"}, "bogus"},
		{[]string{"--log-driver", "syslog", "img"}, "syslog"},
		{[]string{"--add-host", "nohost", "img"}, "nohost"},
		{[]string{"--dns", "resolver", "img"}, "resolver"},
		{[]string{"--network-alias", "x", "img"}, "user-defined networks"},
		{[]string{"--network", "host", "--network", "other", "img"}, "cannot be combined"},
		{[]string{"--no-healthcheck", "--health-cmd", "true", "img"}, "conflicts"},
		{[]string{"--health-on-failure", "explode", "img"}, "explode"},
		{[]string{"--health-interval", "-1s", "img"}, "negative"},
		{[]string{"-e", "=x", "img"}, "=x"},
		{[]string{"--env-file", "/nonexistent/env", "img"}, "/nonexistent/env"},
		{[]string{"--expose", "1:2", "img"}, "1:2"},
		{[]string{"Not/Valid:ref!"}, "invalid reference format"},
	} {
		_, err := parseCreate(t, tc.args...)
		var ue usageError
		if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%q: error = %v, want a usage error mentioning %q", tc.args, err, tc.msg)
		}
	}
}

func TestRunErrorCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{startFailed(errors.New("boom")), 125},
		{startFailed(errdefs.ErrNotFound), 127},
		{startFailed(errdefs.ErrPermission), 126},
		{berthFailed(errdefs.ErrNotFound), 125},
		{berthFailed(usageErrorf("bad")), 125},
		{berthFailed(exitCodeError{code: 3}), 3},
	} {
		var out strings.Builder
		if got := reportError(&out, tc.err); got != tc.code {
			t.Errorf("reportError(%v) = %d, want %d", tc.err, got, tc.code)
		}
		if tc.code >= 125 && !strings.HasPrefix(out.String(), "Error: ") {
			t.Errorf("reportError(%v) printed %q", tc.err, out.String())
		}
	}
}
