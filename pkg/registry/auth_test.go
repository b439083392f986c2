package registry

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/berthsh/berth/pkg/errdefs"
)

func TestServerAddress(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"":                            DockerHubServer,
		"docker.io":                   DockerHubServer,
		"index.docker.io":             DockerHubServer,
		"https://index.docker.io/v1/": DockerHubServer,
		"registry-1.docker.io":        DockerHubServer,
		"ghcr.io":                     "ghcr.io",
		"https://reg.lan:5000/v2/":    "reg.lan:5000",
		"http://127.0.0.1:5000":       "127.0.0.1:5000",
	}
	for in, want := range tests {
		if got := ServerAddress(in); got != want {
			t.Errorf("ServerAddress(%q) = %q, want %q", in, got, want)
		}
	}
}

// isolateDockerConfig points HOME and DOCKER_CONFIG at temporary
// directories and PATH at bin (so no real credential helper is found).
func isolateDockerConfig(t *testing.T) (configDir, bin string) {
	t.Helper()
	configDir = t.TempDir()
	bin = t.TempDir()
	t.Setenv("HOME", t.TempDir())
	t.Setenv("DOCKER_CONFIG", configDir)
	t.Setenv("PATH", bin)
	t.Setenv("DOCKER_AUTH_CONFIG", "")
	t.Setenv("REGISTRY_AUTH_FILE", "")
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	return configDir, bin
}

type dockerConfigFile struct {
	Auths map[string]struct {
		Auth string `json:"auth"`
	} `json:"auths"`
	CredsStore string `json:"credsStore"`
}

func readDockerConfig(t *testing.T, dir string) (dockerConfigFile, bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return dockerConfigFile{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var cf dockerConfigFile
	if err := json.Unmarshal(b, &cf); err != nil {
		t.Fatalf("config.json: %v\n%s", err, b)
	}
	return cf, true
}

func TestLoginBasicAuthThenPull(t *testing.T) {
	dir, _ := isolateDockerConfig(t)
	ctx := t.Context()
	host, _ := startMem(t, requireBasic("alice", "s3cret"))
	s := newStore(t)
	ref := mustRef(t, host+"/private/app:v1")
	local := storeRandom(t, s, ref, 1)
	if _, err := Push(ctx, s, ref.String(), ref, testPush(PushOptions{Keychain: staticKeychain{"alice", "s3cret"}})); err != nil {
		t.Fatal(err)
	}
	cfg := &Config{}

	_, err := Login(ctx, host, "alice", "wrong", LoginOptions{Config: cfg})
	if !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Fatalf("wrong password: err = %v, want ErrUnauthorized", err)
	}
	if _, ok := readDockerConfig(t, dir); ok {
		t.Fatal("config.json written after a failed login")
	}

	res, err := Login(ctx, host, "alice", "s3cret", LoginOptions{Config: cfg})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if res.ServerAddress != host || res.Helper != "" || res.ConfigFile != filepath.Join(dir, "config.json") {
		t.Fatalf("result %+v", res)
	}
	cf, ok := readDockerConfig(t, dir)
	if !ok {
		t.Fatal("no config.json")
	}
	if got, want := cf.Auths[host].Auth, base64.StdEncoding.EncodeToString([]byte("alice:s3cret")); got != want {
		t.Fatalf("auths[%s].auth = %q, want %q", host, got, want)
	}
	if fi, err := os.Stat(filepath.Join(dir, "config.json")); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("config.json mode %v %v", fi.Mode(), err)
	}

	// The stored credentials are used by a pull with the default keychain.
	s2 := newStore(t)
	pres, err := Pull(ctx, s2, ref, PullOptions{Config: cfg})
	if err != nil {
		t.Fatalf("pull after login: %v", err)
	}
	if pres.Image.Manifest.Digest != local.Manifest.Digest {
		t.Fatal("wrong image")
	}

	out, err := Logout(ctx, host, LogoutOptions{})
	if err != nil || !out.LoggedIn || out.ServerAddress != host {
		t.Fatalf("Logout: %+v %v", out, err)
	}
	cf, _ = readDockerConfig(t, dir)
	if _, ok := cf.Auths[host]; ok {
		t.Fatal("credentials still in config.json after logout")
	}
	if _, err := Pull(ctx, newStore(t), ref, PullOptions{Config: cfg}); !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Fatalf("pull after logout: err = %v, want ErrUnauthorized", err)
	}
	out, err = Logout(ctx, host, LogoutOptions{})
	if err != nil || out.LoggedIn {
		t.Fatalf("second logout: %+v %v", out, err)
	}
}

// startBearer serves the in-memory registry behind a token server that
// hands out a bearer token for user:pass.
func startBearer(t *testing.T, user, pass string) string {
	t.Helper()
	mem := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	const token = "tok-123"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		deny := func() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"incorrect username or password"}]}`))
		}
		if r.URL.Path == "/token" {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
				deny()
				return
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"token":%q,"access_token":%q}`, token, token)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/token",service="test"`, r.Host))
			deny()
			return
		}
		mem.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestLoginBearerToken(t *testing.T) {
	dir, _ := isolateDockerConfig(t)
	ctx := t.Context()
	host := startBearer(t, "bob", "hunter2")
	cfg := &Config{}
	if _, err := Login(ctx, host, "bob", "nope", LoginOptions{Config: cfg}); !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Fatalf("wrong password: err = %v, want ErrUnauthorized", err)
	}
	if _, err := Login(ctx, host, "bob", "hunter2", LoginOptions{Config: cfg}); err != nil {
		t.Fatalf("Login: %v", err)
	}
	if cf, _ := readDockerConfig(t, dir); cf.Auths[host].Auth == "" {
		t.Fatal("credentials not stored")
	}
	// Push and pull with the stored credentials (default keychain).
	s := newStore(t)
	ref := mustRef(t, host+"/bearer/app:v1")
	local := storeRandom(t, s, ref, 2)
	if _, err := Push(ctx, s, ref.String(), ref, PushOptions{Config: cfg}); err != nil {
		t.Fatalf("push: %v", err)
	}
	res, err := Pull(ctx, newStore(t), ref, PullOptions{Config: cfg})
	if err != nil || res.Image.Manifest.Digest != local.Manifest.Digest {
		t.Fatalf("pull: %+v %v", res, err)
	}
}

const fakeHelper = `#!/bin/sh
d=$(dirname "$0")
case "$1" in
store) cat > "$d/stored.json" ;;
get)
	if [ -f "$d/stored.json" ]; then cat "$d/stored.json"; else echo "credentials not found in native keychain"; exit 1; fi ;;
erase) cat > "$d/erased"; rm -f "$d/stored.json" ;;
list) echo "{}" ;;
esac
`

func TestLoginCredentialHelper(t *testing.T) {
	dir, bin := isolateDockerConfig(t)
	ctx := t.Context()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-berthtest"), []byte(fakeHelper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":/usr/bin:/bin")
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"credsStore":"berthtest"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	host, _ := startMem(t, requireBasic("carol", "pw"))
	cfg := &Config{}
	res, err := Login(ctx, host, "carol", "pw", LoginOptions{Config: cfg})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if res.Helper != "berthtest" {
		t.Fatalf("helper %q", res.Helper)
	}
	var stored struct{ ServerURL, Username, Secret string }
	b, err := os.ReadFile(filepath.Join(bin, "stored.json"))
	if err != nil {
		t.Fatalf("helper did not store: %v", err)
	}
	if err := json.Unmarshal(b, &stored); err != nil || stored.ServerURL != host || stored.Username != "carol" || stored.Secret != "pw" {
		t.Fatalf("helper got %s (%v)", b, err)
	}
	cf, _ := readDockerConfig(t, dir)
	if entry, ok := cf.Auths[host]; !ok || entry.Auth != "" || cf.CredsStore != "berthtest" {
		t.Fatalf("config.json: %+v", cf)
	}

	// Pull reads the credentials through the helper.
	s := newStore(t)
	ref := mustRef(t, host+"/h/app:v1")
	storeRandom(t, s, ref, 1)
	if _, err := Push(ctx, s, ref.String(), ref, PushOptions{Config: cfg}); err != nil {
		t.Fatalf("push with helper credentials: %v", err)
	}

	out, err := Logout(ctx, host, LogoutOptions{})
	if err != nil || !out.LoggedIn {
		t.Fatalf("Logout: %+v %v", out, err)
	}
	if b, err := os.ReadFile(filepath.Join(bin, "erased")); err != nil || strings.TrimSpace(string(b)) != host {
		t.Fatalf("helper erase got %q (%v)", b, err)
	}
	cf, _ = readDockerConfig(t, dir)
	if _, ok := cf.Auths[host]; ok {
		t.Fatal("entry left in config.json")
	}
}

func TestLoginErrors(t *testing.T) {
	isolateDockerConfig(t)
	ctx := t.Context()
	if _, err := Login(ctx, "127.0.0.1:1", "", "x", LoginOptions{Config: &Config{}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("empty user: %v", err)
	}
	if _, err := Login(ctx, "127.0.0.1:1", "u", "p", LoginOptions{Config: &Config{}}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("unreachable: %v", err)
	}
	// A malformed docker config is refused, not overwritten.
	dir := os.Getenv("DOCKER_CONFIG")
	bad := []byte(`{"auths": `)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), bad, 0o600); err != nil {
		t.Fatal(err)
	}
	host, _ := startMem(t, nil)
	if _, err := Login(ctx, host, "u", "p", LoginOptions{Config: &Config{}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("malformed config: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "config.json")); string(b) != string(bad) {
		t.Fatal("malformed config.json was overwritten")
	}
}
