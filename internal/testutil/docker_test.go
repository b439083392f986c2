package testutil

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestDockerEnv(t *testing.T) {
	t.Setenv("DOCKER_HOST", "tcp://elsewhere:2375")
	t.Setenv("DOCKER_CONTEXT", "remote")
	t.Setenv("DOCKER_TLS_VERIFY", "1")
	t.Setenv("BERTH_TEST_MARKER", "kept")

	env := dockerEnv("unix:///run/x.sock")
	var hosts []string
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "DOCKER_HOST":
			hosts = append(hosts, v)
		case "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY":
			t.Errorf("dockerEnv kept %s", kv)
		}
	}
	if !slices.Equal(hosts, []string{"unix:///run/x.sock"}) {
		t.Errorf("dockerEnv DOCKER_HOST values = %q, want exactly the given host", hosts)
	}
	if !slices.Contains(env, "BERTH_TEST_MARKER=kept") {
		t.Error("dockerEnv dropped an unrelated variable")
	}
}

func TestDockerdEnv(t *testing.T) {
	for _, path := range []string{"", "/opt/bin", "/usr/sbin:/usr/bin"} {
		t.Setenv("PATH", path)
		t.Setenv("DOCKER_HOST", "tcp://elsewhere:2375")
		var paths []string
		for _, kv := range dockerdEnv() {
			k, v, _ := strings.Cut(kv, "=")
			if strings.HasPrefix(k, "DOCKER_") {
				t.Errorf("PATH=%q: dockerdEnv kept %s", path, kv)
			}
			if k == "PATH" {
				paths = append(paths, v)
			}
		}
		if len(paths) != 1 {
			t.Fatalf("PATH=%q: dockerdEnv has %d PATH entries, want 1", path, len(paths))
		}
		dirs := strings.Split(paths[0], ":")
		for _, want := range []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
			if n := strings.Count(":"+paths[0]+":", ":"+want+":"); n != 1 {
				t.Errorf("PATH=%q: dockerdEnv PATH %q lists %s %d times, want once", path, paths[0], want, n)
			}
		}
		if path != "" && !strings.HasPrefix(paths[0], path) {
			t.Errorf("PATH=%q: dockerdEnv PATH %q does not keep the original order first", path, paths[0])
		}
		if slices.Contains(dirs, "") {
			t.Errorf("PATH=%q: dockerdEnv PATH %q has an empty entry (the working directory)", path, paths[0])
		}
	}
}

func TestIsDockerd(t *testing.T) {
	if isDockerd(os.Getpid()) {
		t.Error("isDockerd(test binary) = true")
	}
	if isDockerd(1 << 30) {
		t.Error("isDockerd(nonexistent pid) = true")
	}
}

// TestDocker runs a container on the engine Docker provides and, for the
// private engine, checks that it is stopped once no test uses it.
func TestDocker(t *testing.T) {
	var env []string
	var private bool
	t.Run("run", func(t *testing.T) {
		env = Docker(t)
		dockerState.mu.Lock()
		private = dockerState.private
		dockerState.mu.Unlock()
		host := ""
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "DOCKER_HOST="); ok {
				host = v
			}
		}
		if host == "" {
			t.Fatal("Docker returned no DOCKER_HOST")
		}
		if private && host != "unix://"+DockerTestSocket {
			t.Errorf("private engine at DOCKER_HOST=%s, want unix://%s", host, DockerTestSocket)
		}

		tag := fmt.Sprintf("berth-testutil/docker-test:%d", os.Getpid())
		rootfs := busyboxTar(t)
		docker(t, env, rootfs, "import", "--change", `CMD ["/bin/echo","hello-from-docker"]`, "-", tag)
		t.Cleanup(func() { _, _ = dockerOutput(context.Background(), env, nil, "rmi", "-f", tag) })
		out := docker(t, env, nil, "run", "--rm", "--network", "none", tag)
		if strings.TrimSpace(out) != "hello-from-docker" {
			t.Errorf("docker run printed %q, want hello-from-docker", out)
		}
	})
	if t.Failed() || t.Skipped() || !private {
		return
	}
	// The subtest was the only user in this process, so its end released
	// the engine. It must be down unless another process still uses it.
	dockerState.mu.Lock()
	stillPrivate := dockerState.private
	dockerState.mu.Unlock()
	if stillPrivate {
		t.Fatal("private engine still held after the last test using it ended")
	}
	err := withFileLock(filepath.Join(dockerRunDir, "start.lock"), func() error {
		use, err := os.OpenFile(filepath.Join(dockerRunDir, "use.lock"), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		defer use.Close()
		if err := unix.Flock(int(use.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			t.Log("another process still uses the private engine; not checking that it stopped")
			return nil
		}
		if err := probeDocker(t.Context(), "unix://"+DockerTestSocket); err == nil {
			return errors.New("private engine still answers after its last user released it")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// busyboxTar returns a tar of a root filesystem holding only a static
// busybox with an echo link.
func busyboxTar(t *testing.T) []byte {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("no static busybox: %v; apt-get install busybox-static", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	write := func(h *tar.Header, body []byte) {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	write(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	write(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bb))}, bb)
	write(&tar.Header{Name: "bin/echo", Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777}, nil)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func docker(t *testing.T, env []string, stdin []byte, args ...string) string {
	t.Helper()
	out, err := dockerOutput(t.Context(), env, stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func dockerOutput(ctx context.Context, env []string, stdin []byte, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = env
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), errors.New("docker " + strings.Join(args, " ") + ": " + err.Error() + ": " + stderr.String())
	}
	return stdout.String(), nil
}
