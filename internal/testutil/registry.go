package testutil

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthsh/berth/pkg/registry"
)

// DockerRegistryPath is where Debian's docker-registry package installs the
// reference registry (distribution 2.8).
const DockerRegistryPath = "/usr/bin/docker-registry"

// registryStartTimeout bounds how long the helpers wait for a registry to
// answer /v2/.
const registryStartTimeout = 20 * time.Second

// StartRegistry starts berth's embedded registry (pkg/registry) on a free
// loopback port with storage in a t.TempDir(), stops it when the test ends,
// and returns its "127.0.0.1:PORT". It speaks plain HTTP without auth;
// go-containerregistry picks http for loopback hosts by itself.
//
// pkg/registry's own in-package tests cannot use it (import cycle); its
// external tests (package registry_test) can.
func StartRegistry(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := registry.NewServer(ctx, registry.ServerOptions{
		Addr: "127.0.0.1:0",
		Root: filepath.Join(t.TempDir(), "registry"),
	})
	if err != nil {
		cancel()
		t.Fatalf("start embedded registry: %v", err)
	}
	ln, err := srv.Listen(ctx)
	if err != nil {
		cancel()
		srv.Close()
		t.Fatalf("start embedded registry: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("embedded registry: %v", err)
			}
		case <-time.After(registryStartTimeout):
			t.Errorf("embedded registry did not stop within %s", registryStartTimeout)
		}
	})
	host := ln.Addr().String()
	if err := waitForRegistry(context.Background(), host, nil); err != nil {
		t.Fatalf("embedded registry: %v", err)
	}
	return host
}

// StartDockerRegistry starts Debian's docker-registry (distribution 2.8) as
// a peer to test against: filesystem storage in a t.TempDir(), deletes
// enabled, no auth, plain HTTP on a free loopback port. It returns
// "127.0.0.1:PORT" once /v2/ answers and kills the process when the test
// ends. The test is skipped if the binary is not installed.
func StartDockerRegistry(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(DockerRegistryPath); err != nil {
		t.Skipf("%s not found (%v); install it with 'apt-get install docker-registry'", DockerRegistryPath, err)
	}
	dir := t.TempDir()
	// Picking a port and handing it to another process can race with
	// other listeners; retry with a fresh port if the registry dies.
	var lastErr error
	for range 3 {
		host, err := startDockerRegistry(t, dir)
		if err == nil {
			return host
		}
		lastErr = err
	}
	t.Fatalf("start %s: %v", DockerRegistryPath, lastErr)
	return ""
}

func startDockerRegistry(t testing.TB, dir string) (string, error) {
	host, err := freeLoopbackAddr()
	if err != nil {
		return "", err
	}
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return "", err
	}
	config := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %q
  secret: %q
`, filepath.Join(dir, "data"), host, hex.EncodeToString(secret))
	configPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		return "", err
	}

	cmd := exec.Command(DockerRegistryPath, "serve", configPath)
	cmd.Dir = dir
	cmd.Env = registryEnv()
	out := &LockedBuffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}

	if err := waitForRegistry(context.Background(), host, exited); err != nil {
		stop()
		return "", fmt.Errorf("%w (exit: %v); output:\n%s", err, waitErr, out.String())
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() && out.Len() > 0 {
			t.Logf("docker-registry output:\n%s", out.String())
		}
	})
	return host, nil
}

// registryEnv is the environment without the variables docker-registry
// would read as configuration overrides.
func registryEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "REGISTRY_") || strings.HasPrefix(kv, "OTEL_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// waitForRegistry polls http://host/v2/ until it answers 200 or 401, the
// process behind it exits (exited closed), or registryStartTimeout passes.
func waitForRegistry(ctx context.Context, host string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, registryStartTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	url := "http://" + host + "/v2/"
	var lastErr error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			err = fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
		}
		lastErr = err
		select {
		case <-exited:
			return errors.New("registry exited before answering " + url)
		case <-ctx.Done():
			return fmt.Errorf("registry at %s did not answer within %s: %w", host, registryStartTimeout, lastErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// LockedBuffer collects a child process's output while tests read it;
// it is safe for concurrent Write and String.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *LockedBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}
