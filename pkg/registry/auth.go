package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	dockerconfig "github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/credentials"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berthsh/berth/pkg/errdefs"
)

// DockerHubServer is the key Docker Hub credentials are stored under in
// the docker config file.
const DockerHubServer = "https://index.docker.io/v1/"

// dockerHubHost is the host berth talks to for Docker Hub.
const dockerHubHost = "index.docker.io"

// DockerConfigDir is the directory of the docker config file berth reads
// and writes credentials in: $DOCKER_CONFIG, else ~/.docker.
func DockerConfigDir() string {
	if d := os.Getenv(dockerconfig.EnvOverrideConfigDir); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".docker"
	}
	return filepath.Join(home, ".docker")
}

// ServerAddress normalises a login server argument ("", "docker.io",
// "https://reg.example.com:5000/v2/") to the key docker uses for it in the
// config file: DockerHubServer for Docker Hub, else "host[:port]".
func ServerAddress(server string) string {
	host, hub := serverHost(server)
	if hub {
		return DockerHubServer
	}
	return host
}

// serverHost returns the registry host for a server argument and whether
// it is Docker Hub.
func serverHost(server string) (string, bool) {
	s := strings.TrimSpace(server)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	if i := strings.Index(s, "/"); i >= 0 {
		s = s[:i]
	}
	switch s {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io":
		return dockerHubHost, true
	}
	return s, false
}

// LoginOptions tune Login.
type LoginOptions struct {
	// Insecure allows plain HTTP and unverified TLS for the registry.
	Insecure bool
	// Transport replaces the HTTP transport (tests).
	Transport http.RoundTripper
	// Config is berth's config file; nil reads it with LoadConfig.
	Config *Config
	// DockerConfigDir is where config.json lives (default
	// DockerConfigDir()).
	DockerConfigDir string
}

// LoginResult says where the credentials went.
type LoginResult struct {
	// ServerAddress is the key the credentials are stored under.
	ServerAddress string
	// ConfigFile is the docker config file updated.
	ConfigFile string
	// Helper is the credential helper that holds the password
	// ("docker-credential-<Helper>"), or "" when the password is stored
	// base64-encoded (unencrypted) in ConfigFile.
	Helper string
}

// Login checks username and password against the registry server (basic
// auth or a bearer-token exchange, whichever the registry asks for) and,
// if they are accepted, stores them the way "docker login" does: through
// the credential helper configured for the server (credHelpers, then
// credsStore) or else in the config file's "auths". Wrong credentials give
// an error wrapping errdefs.ErrUnauthorized and store nothing.
func Login(ctx context.Context, server, username, password string, opts LoginOptions) (LoginResult, error) {
	host, _ := serverHost(server)
	key := ServerAddress(server)
	if username == "" || password == "" {
		return LoginResult{}, fmt.Errorf("login to %s: username and password are required: %w", host, errdefs.ErrInvalidArgument)
	}
	if err := verifyLogin(ctx, host, username, password, opts); err != nil {
		return LoginResult{}, fmt.Errorf("login to %s: %w", host, err)
	}
	dir := opts.DockerConfigDir
	if dir == "" {
		dir = DockerConfigDir()
	}
	cf, err := loadDockerConfig(dir)
	if err != nil {
		return LoginResult{}, fmt.Errorf("login to %s: %w", host, err)
	}
	if !cf.ContainsAuth() {
		// As docker does: use the platform's credential helper when it is
		// installed and nothing is configured yet.
		cf.CredentialsStore = credentials.DetectDefaultStore(cf.CredentialsStore)
	}
	ac := types.AuthConfig{Username: username, Password: password, ServerAddress: key}
	res := LoginResult{ServerAddress: key, ConfigFile: cf.Filename, Helper: helperFor(cf, key)}
	if res.Helper != "" {
		if err := credentials.NewNativeStore(cf, res.Helper).Store(ac); err != nil {
			return LoginResult{}, fmt.Errorf("login to %s: store credentials with docker-credential-%s: %w", host, res.Helper, err)
		}
		return res, nil
	}
	cf.AuthConfigs[key] = ac
	if err := cf.Save(); err != nil {
		return LoginResult{}, fmt.Errorf("login to %s: save credentials in %s: %w", host, cf.Filename, err)
	}
	return res, nil
}

// verifyLogin authenticates against the registry and does GET /v2/.
func verifyLogin(ctx context.Context, host, username, password string, opts LoginOptions) error {
	ep, err := connOptions{Insecure: opts.Insecure, Transport: opts.Transport, Config: opts.Config}.resolve(ctx, host)
	if err != nil {
		return err
	}
	var nopts []name.Option
	if ep.insecure {
		nopts = append(nopts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, nopts...)
	if err != nil {
		return fmt.Errorf("invalid registry %q: %v: %w", host, err, errdefs.ErrInvalidArgument)
	}
	auth := authn.FromConfig(authn.AuthConfig{Username: username, Password: password})
	rt, err := transport.NewWithContext(ctx, reg, auth, ep.transport, nil)
	if err != nil {
		return classify(err, host)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reg.Scheme()+"://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return classify(err, host)
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return classify(err, host)
	}
	return nil
}

// LogoutOptions tune Logout.
type LogoutOptions struct {
	// DockerConfigDir is where config.json lives (default
	// DockerConfigDir()).
	DockerConfigDir string
}

// LogoutResult says what Logout did.
type LogoutResult struct {
	// ServerAddress is the key the credentials were stored under.
	ServerAddress string
	// LoggedIn is false when there were no credentials to remove.
	LoggedIn bool
}

// Logout removes the stored credentials for server from the docker config
// file and from its credential helper.
func Logout(ctx context.Context, server string, opts LogoutOptions) (LogoutResult, error) {
	key := ServerAddress(server)
	res := LogoutResult{ServerAddress: key}
	dir := opts.DockerConfigDir
	if dir == "" {
		dir = DockerConfigDir()
	}
	cf, err := loadDockerConfig(dir)
	if err != nil {
		return res, fmt.Errorf("logout from %s: %w", key, err)
	}
	keys := []string{key}
	if key != DockerHubServer {
		keys = append(keys, "http://"+key, "https://"+key)
	}
	var errs []error
	changed := false
	for _, k := range keys {
		if _, ok := cf.AuthConfigs[k]; !ok {
			continue
		}
		res.LoggedIn = true
		if h := helperFor(cf, k); h != "" {
			if err := credentials.NewNativeStore(cf, h).Erase(k); err != nil {
				errs = append(errs, fmt.Errorf("erase %s with docker-credential-%s: %w", k, h, err))
			}
		}
		if _, ok := cf.AuthConfigs[k]; ok {
			delete(cf.AuthConfigs, k)
			changed = true
		}
	}
	if changed {
		if err := cf.Save(); err != nil {
			errs = append(errs, fmt.Errorf("save %s: %w", cf.Filename, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("logout from %s: %w", key, err)
	}
	return res, nil
}

// loadDockerConfig reads dir/config.json, refusing a malformed file rather
// than overwriting it.
func loadDockerConfig(dir string) (*configfile.ConfigFile, error) {
	cf, err := dockerconfig.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("%v; fix or move the file: %w", err, errdefs.ErrInvalidArgument)
	}
	if cf.AuthConfigs == nil {
		cf.AuthConfigs = map[string]types.AuthConfig{}
	}
	return cf, nil
}

// helperFor is the credential helper for key: credHelpers, then
// credsStore.
func helperFor(cf *configfile.ConfigFile, key string) string {
	if h, ok := cf.CredentialHelpers[key]; ok && h != "" {
		return h
	}
	return cf.CredentialsStore
}
