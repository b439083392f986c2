package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/berthsh/berth/internal/testutil"
)

// berthBin is the berth binary TestMain builds for all tests.
var berthBin string

// Messages the busybox images print when run.
const (
	helloBerth = "hello-from-berth"
	helloBuilt = "hello-from-docker-build"
)

// commandTimeout bounds one command a test runs.
const commandTimeout = 3 * time.Minute

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "berth-interop-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	berthBin = filepath.Join(dir, "berth")
	if err := testutil.BuildBerth(berthBin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return testutil.DockerMain(m)
}

// TestBerthSaveDockerLoad imports a rootfs into berth, saves it as a
// docker-archive, loads that into Docker and runs it; the OCI archive
// (which Docker 20.10 cannot load) goes through skopeo instead.
func TestBerthSaveDockerLoad(t *testing.T) {
	env := testutil.Docker(t)
	b := newBerth(t)
	tag := "interop/busybox:" + uniq()
	id := b.importBusybox(t, tag)

	archive := filepath.Join(t.TempDir(), "docker.tar")
	b.run(t, "save", tag, "-o", archive)
	removeDockerImagesAtEnd(t, env, tag)
	out := mustRun(t, env, "docker", "load", "-i", archive)
	if !strings.Contains(out, "Loaded image: "+tag) {
		t.Errorf("docker load -i <berth save %s> printed %q, want it to name the tag", tag, out)
	}
	if got := dockerID(t, env, tag); got != id {
		t.Errorf("image ID in Docker %s, in berth %s", got, id)
	}
	if got := dockerRun(t, env, tag); got != helloBerth {
		t.Errorf("docker run %s printed %q, want %q", tag, got, helloBerth)
	}

	t.Run("oci", func(t *testing.T) {
		requireTool(t, "skopeo")
		oci := filepath.Join(t.TempDir(), "oci.tar")
		b.run(t, "save", "--format", "oci", tag, "-o", oci)

		var manifest struct {
			MediaType string `json:"mediaType"`
			Config    struct {
				Digest string `json:"digest"`
			} `json:"config"`
			Layers []struct {
				MediaType string `json:"mediaType"`
			} `json:"layers"`
		}
		decodeJSON(t, mustRun(t, nil, "skopeo", "inspect", "--raw", "oci-archive:"+oci), &manifest)
		if manifest.MediaType != "application/vnd.oci.image.manifest.v1+json" {
			t.Errorf("manifest media type %q, want the OCI image manifest", manifest.MediaType)
		}
		if manifest.Config.Digest != id {
			t.Errorf("OCI archive config digest %s, want the image ID %s", manifest.Config.Digest, id)
		}
		if len(manifest.Layers) != 1 || !strings.HasPrefix(manifest.Layers[0].MediaType, "application/vnd.oci.image.layer.v1.tar") {
			t.Errorf("OCI archive layers %+v, want one OCI layer", manifest.Layers)
		}
		var config struct {
			Config struct {
				Cmd []string `json:"Cmd"`
			} `json:"config"`
		}
		decodeJSON(t, mustRun(t, nil, "skopeo", "inspect", "--config", "oci-archive:"+oci), &config)
		if want := busyboxCmd(helloBerth); !slices.Equal(config.Config.Cmd, want) {
			t.Errorf("OCI archive Cmd %q, want %q", config.Config.Cmd, want)
		}

		// Docker 20.10 cannot load OCI archives; skopeo can put them in.
		ociTag := "interop/busybox-oci:" + uniq()
		removeDockerImagesAtEnd(t, env, ociTag)
		mustRun(t, env, "skopeo", "copy", "--dest-daemon-host", dockerHost(env),
			"oci-archive:"+oci, "docker-daemon:"+ociTag)
		if got := dockerRun(t, env, ociTag); got != helloBerth {
			t.Errorf("docker run %s (from berth's OCI archive) printed %q, want %q", ociTag, got, helloBerth)
		}
	})
}

// TestDockerSaveBerthLoad loads a two-layer image Docker built into berth,
// compares the image IDs, and brings it back to Docker with berth save.
func TestDockerSaveBerthLoad(t *testing.T) {
	env := testutil.Docker(t)
	tag := dockerBuild(t, env)
	id := dockerID(t, env, tag)

	archive := filepath.Join(t.TempDir(), "docker.tar")
	mustRun(t, env, "docker", "save", "-o", archive, tag)
	b := newBerth(t)
	b.run(t, "load", "-i", archive)
	if got := b.id(t, tag); got != id {
		t.Fatalf("berth load of docker save %s: image ID %s, want Docker's %s", tag, got, id)
	}

	// And back: berth's archive of it must give Docker the same image.
	back := filepath.Join(t.TempDir(), "berth.tar")
	b.run(t, "save", tag, "-o", back)
	mustRun(t, env, "docker", "rmi", tag)
	mustRun(t, env, "docker", "load", "-i", back)
	if got := dockerID(t, env, tag); got != id {
		t.Errorf("docker load of berth save %s: image ID %s, want %s", tag, got, id)
	}
	if got := dockerRun(t, env, tag); got != helloBuilt {
		t.Errorf("docker run %s printed %q, want %q", tag, got, helloBuilt)
	}
}

// TestRegistryRoundTrip moves images between berth, Docker and skopeo
// through berth's embedded registry and through the reference registry.
func TestRegistryRoundTrip(t *testing.T) {
	env := testutil.Docker(t)
	builtTag := dockerBuild(t, env)
	builtID := dockerID(t, env, builtTag)

	registries := []struct {
		name  string
		start func(t *testing.T) string
	}{
		{"berth-registry-serve", startBerthRegistry},
		{"docker-registry", func(t *testing.T) string { return testutil.StartDockerRegistry(t) }},
	}
	for _, reg := range registries {
		t.Run(reg.name, func(t *testing.T) {
			host := reg.start(t)

			t.Run("berth-push-docker-pull", func(t *testing.T) {
				ref := host + "/interop/busybox:" + uniq()
				b := newBerth(t)
				id := b.importBusybox(t, ref)
				b.run(t, "push", ref)
				removeDockerImagesAtEnd(t, env, ref)
				mustRun(t, env, "docker", "pull", ref)
				if got := dockerID(t, env, ref); got != id {
					t.Errorf("docker pull of berth push: image ID %s, want %s", got, id)
				}
				if got := dockerRun(t, env, ref); got != helloBerth {
					t.Errorf("docker run %s printed %q, want %q", ref, got, helloBerth)
				}
			})

			t.Run("docker-push-berth-pull", func(t *testing.T) {
				ref := host + "/interop/built:" + uniq()
				removeDockerImagesAtEnd(t, env, ref)
				mustRun(t, env, "docker", "tag", builtTag, ref)
				mustRun(t, env, "docker", "push", ref)
				dst := newBerth(t)
				dst.run(t, "pull", ref)
				if got := dst.id(t, ref); got != builtID {
					t.Errorf("berth pull of docker push: image ID %s, want %s", got, builtID)
				}
			})

			t.Run("skopeo-copy-berth-pull", func(t *testing.T) {
				requireTool(t, "skopeo")
				// Docker pushes a Docker v2 schema 2 manifest; skopeo
				// copies it from registry to registry as an OCI one.
				from := host + "/interop/skopeo-src:" + uniq()
				to := host + "/interop/skopeo:" + uniq()
				removeDockerImagesAtEnd(t, env, from)
				mustRun(t, env, "docker", "tag", builtTag, from)
				mustRun(t, env, "docker", "push", from)
				mustRun(t, nil, "skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
					"--format", "oci", "docker://"+from, "docker://"+to)
				var manifest struct {
					MediaType string `json:"mediaType"`
					Config    struct {
						Digest string `json:"digest"`
					} `json:"config"`
				}
				decodeJSON(t, mustRun(t, nil, "skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+to), &manifest)
				if manifest.MediaType != "application/vnd.oci.image.manifest.v1+json" {
					t.Fatalf("skopeo copy --format oci stored a %q manifest", manifest.MediaType)
				}
				dst := newBerth(t)
				dst.run(t, "pull", to)
				if got := dst.id(t, to); got != manifest.Config.Digest {
					t.Errorf("berth pull of skopeo copy: image ID %s, want the manifest's config %s", got, manifest.Config.Digest)
				}
			})
		})
	}
}

// berth runs the berth binary with its own data directory.
type berth struct{ root string }

func newBerth(t *testing.T) *berth {
	return &berth{root: t.TempDir()}
}

// run runs berth with args and returns its standard output; t fails on a
// non-zero exit.
func (b *berth) run(t *testing.T, args ...string) string {
	t.Helper()
	return mustRun(t, nil, berthBin, append([]string{"--root", b.root}, args...)...)
}

// id returns the image ID berth reports for ref.
func (b *berth) id(t *testing.T, ref string) string {
	t.Helper()
	id := strings.TrimSpace(b.run(t, "inspect", "-f", "{{.Id}}", ref))
	if !strings.HasPrefix(id, "sha256:") || len(id) != len("sha256:")+64 {
		t.Fatalf("berth inspect -f {{.Id}} %s = %q, want sha256:<64 hex>", ref, id)
	}
	return id
}

// importBusybox imports a busybox root filesystem as tag, with a command
// printing helloBerth, and returns its ID.
func (b *berth) importBusybox(t *testing.T, tag string) string {
	t.Helper()
	b.run(t, "import", busyboxRootfs(t), tag, "--change", "CMD "+cmdJSON(busyboxCmd(helloBerth)))
	return b.id(t, tag)
}

// busyboxRootfs writes a tar of a root filesystem holding a static busybox
// with sh, echo and cat links, and returns its path.
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("no static busybox (%v); apt-get install busybox-static", err)
	}
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"etc", "tmp", "proc", "sys", "dev"} {
		if err := os.Mkdir(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"sh", "echo", "cat"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", name)); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "rootfs.tar")
	mustRun(t, nil, "tar", "--numeric-owner", "--owner=0", "--group=0", "-C", rootfs, "-cf", out, ".")
	return out
}

func busyboxCmd(msg string) []string {
	return []string{"/bin/sh", "-c", "echo " + msg}
}

func cmdJSON(cmd []string) string {
	b, err := json.Marshal(cmd)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// dockerBuild builds a two-layer image with Docker (docker import of the
// busybox rootfs, then a RUN step) and returns its tag. Both images are
// removed when t ends.
func dockerBuild(t *testing.T, env []string) string {
	t.Helper()
	base := "interop/docker-base:" + uniq()
	tag := "interop/docker-built:" + uniq()
	removeDockerImagesAtEnd(t, env, base, tag)
	mustRun(t, env, "docker", "import", busyboxRootfs(t), base)
	ctxDir := t.TempDir()
	dockerfile := fmt.Sprintf("FROM %s\nRUN echo %s > /hello\nENV GREETING=%s\nCMD [\"/bin/cat\", \"/hello\"]\n", base, helloBuilt, helloBuilt)
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	// The classic builder: Debian's docker.io has no buildx.
	mustRun(t, append(env, "DOCKER_BUILDKIT=0"), "docker", "build", "--network", "none", "-q", "-t", tag, ctxDir)
	return tag
}

// dockerRun runs ref without a network and returns its trimmed output.
func dockerRun(t *testing.T, env []string, ref string) string {
	t.Helper()
	return strings.TrimSpace(mustRun(t, env, "docker", "run", "--rm", "--network", "none", ref))
}

// dockerID returns Docker's image ID for ref.
func dockerID(t *testing.T, env []string, ref string) string {
	t.Helper()
	return strings.TrimSpace(mustRun(t, env, "docker", "image", "inspect", "-f", "{{.Id}}", ref))
}

// removeDockerImagesAtEnd removes refs from Docker when t ends, so the
// engine's persistent data root does not fill up with test images.
func removeDockerImagesAtEnd(t *testing.T, env []string, refs ...string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
		defer cancel()
		for _, ref := range refs {
			// Missing images are fine: the test may have failed first.
			_, _ = runCmd(ctx, env, "docker", "rmi", "-f", ref)
		}
	})
}

// dockerHost returns the DOCKER_HOST of env.
func dockerHost(env []string) string {
	for _, kv := range slices.Backward(env) {
		if v, ok := strings.CutPrefix(kv, "DOCKER_HOST="); ok {
			return v
		}
	}
	return ""
}

// startBerthRegistry runs "berth registry serve" on a free loopback port
// and returns its address once /v2/ answers. The server must exit promptly
// on SIGTERM when t ends.
func startBerthRegistry(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var lastErr error
	for range 3 { // the free port may be taken before berth binds it
		addr, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(berthBin, "--root", filepath.Join(dir, "berth"), "registry", "serve",
			"--addr", addr, "--root", filepath.Join(dir, "registry"))
		output := &testutil.LockedBuffer{}
		cmd.Stdout = output
		cmd.Stderr = output
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		var waitErr error
		go func() {
			waitErr = cmd.Wait()
			close(exited)
		}()
		if err := waitForV2(addr, exited); err != nil {
			_ = cmd.Process.Kill()
			<-exited
			lastErr = fmt.Errorf("%w (exit: %v)\n%s", err, waitErr, output.String())
			continue
		}
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
				if waitErr != nil {
					t.Errorf("berth registry serve exited with %v after SIGTERM\n%s", waitErr, output.String())
				}
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
				t.Errorf("berth registry serve did not exit within 10s of SIGTERM\n%s", output.String())
			}
		})
		return addr
	}
	t.Fatalf("berth registry serve: %v", lastErr)
	return ""
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitForV2 polls http://addr/v2/ for up to 20 s, until it answers 200 or
// the process behind it exits.
func waitForV2(addr string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /v2/: status %d", resp.StatusCode)
		}
		select {
		case <-exited:
			return fmt.Errorf("exited before answering on %s", addr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer on %s within 20s: %w", addr, err)
		}
	}
}

func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed: apt-get install %s", name, name)
	}
}

func decodeJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
}

var uniqCounter atomic.Int64

// uniq returns a tag unique to this process and call, as Docker's images
// outlive a test run.
func uniq() string {
	return fmt.Sprintf("t%d-%d-%d", time.Now().Unix(), os.Getpid(), uniqCounter.Add(1))
}

// mustRun runs name with args (env nil means the test's environment) and
// returns its standard output; t fails with the output on error.
func mustRun(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), commandTimeout)
	defer cancel()
	out, err := runCmd(ctx, env, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func runCmd(ctx context.Context, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("%w (timed out after %s)", err, commandTimeout)
		}
		return stdout.String(), fmt.Errorf("%s %s: %w\nstdout: %s\nstderr: %s",
			filepath.Base(name), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}
