package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berthsh/berth/pkg/runtime"
)

func TestNetworkCreateLsInspectRm(t *testing.T) {
	e := newImgEnv(t)
	id := strings.TrimSpace(e.mustRun("network", "create", "--subnet", "10.251.7.0/24", "--gateway", "10.251.7.254", "--label", "project=shop", "--internal", "backend"))
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("create printed %q", id)
	}
	other := strings.TrimSpace(e.mustRun("network", "create", "frontend"))

	rows := tableRows(e.mustRun("network", "ls"))
	if !reflect.DeepEqual(rows[0], []string{"NETWORK ID", "NAME", "DRIVER", "SCOPE"}) {
		t.Errorf("header %q", rows[0])
	}
	var names []string
	for _, r := range rows[1:] {
		names = append(names, r[1]+"/"+r[2]+"/"+r[3])
		if len(r[0]) != 12 {
			t.Errorf("ID column %q is not a short ID", r[0])
		}
	}
	if want := []string{"backend/bridge/local", "bridge/bridge/local", "frontend/bridge/local", "host/host/local", "none/null/local"}; !reflect.DeepEqual(names, want) {
		t.Errorf("network ls names = %q, want %q", names, want)
	}
	if got := lines(e.mustRun("network", "ls", "-q", "--filter", "type=custom", "--no-trunc")); !reflect.DeepEqual(got, []string{id, other}) {
		t.Errorf("ls -q type=custom = %q", got)
	}
	if got := lines(e.mustRun("network", "ls", "--filter", "label=project=shop", "--format", "{{.Name}} {{.Internal}} {{.Label \"project\"}}")); !reflect.DeepEqual(got, []string{"backend true shop"}) {
		t.Errorf("ls label filter = %q", got)
	}
	if got := lines(e.mustRun("network", "ls", "-f", "name=end", "-f", "driver=bridge", "--format", "{{.Name}}")); !reflect.DeepEqual(got, []string{"backend", "frontend"}) {
		t.Errorf("ls name filter = %q", got)
	}
	if _, _, code := e.run("", "network", "ls", "-f", "color=red"); code != exitUsage {
		t.Errorf("bad filter: exit %d", code)
	}

	var inspected []map[string]any
	if err := json.Unmarshal([]byte(e.mustRun("network", "inspect", "backend", "none")), &inspected); err != nil {
		t.Fatal(err)
	}
	if len(inspected) != 2 {
		t.Fatalf("inspect returned %d objects", len(inspected))
	}
	b := inspected[0]
	if b["Name"] != "backend" || b["Id"] != id || b["Driver"] != "bridge" || b["Scope"] != "local" || b["Internal"] != true {
		t.Errorf("inspect backend = %v", b)
	}
	cfgs := b["IPAM"].(map[string]any)["Config"].([]any)
	if c := cfgs[0].(map[string]any); c["Subnet"] != "10.251.7.0/24" || c["Gateway"] != "10.251.7.254" {
		t.Errorf("IPAM config %v", cfgs)
	}
	if b["Labels"].(map[string]any)["project"] != "shop" || len(b["Containers"].(map[string]any)) != 0 {
		t.Errorf("labels/containers %v %v", b["Labels"], b["Containers"])
	}
	if inspected[1]["Driver"] != "null" {
		t.Errorf("inspect none = %v", inspected[1])
	}
	if got := e.mustRun("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", id[:10]); got != "10.251.7.0/24\n" {
		t.Errorf("inspect -f = %q", got)
	}
	if _, errOut, code := e.run("", "network", "inspect", "nope"); code != exitFailure || !strings.Contains(errOut, "network nope not found") {
		t.Errorf("inspect missing: exit %d, %q", code, errOut)
	}

	// Errors: duplicates, predefined names, bad flags.
	if _, errOut, code := e.run("", "network", "create", "backend"); code != exitFailure || !strings.Contains(errOut, "already exists") {
		t.Errorf("duplicate create: exit %d, %q", code, errOut)
	}
	if _, _, code := e.run("", "network", "create", "host"); code != exitFailure {
		t.Errorf("create host: exit %d", code)
	}
	if _, _, code := e.run("", "network", "create", "--subnet", "nonsense", "x"); code != exitUsage {
		t.Errorf("bad subnet: exit %d", code)
	}
	if _, _, code := e.run("", "network", "create", "-d", "overlay", "x"); code != exitFailure {
		t.Errorf("overlay driver: exit %d", code)
	}
	if _, errOut, code := e.run("", "network", "create", "--ipv6", "x"); code != exitFailure || !strings.Contains(errOut, "IPv6") {
		t.Errorf("--ipv6: exit %d, %q", code, errOut)
	}
	e.mustRun("network", "create", "--attachable", "--subnet", "10.251.12.0/24", "attach")
	e.mustRun("network", "rm", "attach")

	out, errOut, code := e.run("", "network", "rm", "backend", "bridge", "missing", "frontend")
	if code != exitFailure || out != "backend\nfrontend\n" || !strings.Contains(errOut, "bridge is a pre-defined network") || !strings.Contains(errOut, "network missing not found") {
		t.Errorf("rm: exit %d, out %q, err %q", code, out, errOut)
	}
	e.mustRun("network", "rm", "-f", "missing")
	if got := lines(e.mustRun("network", "ls", "--format", "{{.Name}}")); !reflect.DeepEqual(got, []string{"bridge", "host", "none"}) {
		t.Errorf("after rm: %q", got)
	}
}

// writeContainerConfig stores a stopped container's config.json under root.
func writeContainerConfig(t *testing.T, root string, cfg runtime.ContainerConfig) {
	t.Helper()
	dir := filepath.Join(root, "containers", cfg.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func readContainerConfig(t *testing.T, root, id string) runtime.ContainerConfig {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "containers", id, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg runtime.ContainerConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestNetworkConnectStopped(t *testing.T) {
	e := newImgEnv(t)
	e.mustRun("network", "create", "--subnet", "10.251.8.0/24", "backend")
	hash := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	id := strings.Repeat("c", 64)
	writeContainerConfig(t, e.root, runtime.ContainerConfig{ID: id, Name: "web", ImageID: hash, ImageDigest: hash, NetworkMode: "bridge"})

	e.mustRun("network", "connect", "--alias", "api", "backend", "web")
	cfg := readContainerConfig(t, e.root, id)
	if !reflect.DeepEqual(cfg.Networks, []string{"bridge", "backend"}) || !reflect.DeepEqual(cfg.Aliases, []string{"api"}) {
		t.Errorf("after connect: networks %v aliases %v", cfg.Networks, cfg.Aliases)
	}
	if _, errOut, code := e.run("", "network", "connect", "backend", "web"); code != exitFailure || !strings.Contains(errOut, "already connected") {
		t.Errorf("connect twice: exit %d, %q", code, errOut)
	}
	if _, errOut, code := e.run("", "network", "connect", "backend", "nosuch"); code != exitFailure || !strings.Contains(errOut, "No such container: nosuch") {
		t.Errorf("connect missing container: exit %d, %q", code, errOut)
	}
	e.mustRun("network", "disconnect", "bridge", id[:12])
	if cfg := readContainerConfig(t, e.root, id); !reflect.DeepEqual(cfg.Networks, []string{"backend"}) || cfg.NetworkMode != "backend" {
		t.Errorf("after disconnect: mode %q networks %v", cfg.NetworkMode, cfg.Networks)
	}
	if _, errOut, code := e.run("", "network", "disconnect", "bridge", "web"); code != exitFailure || !strings.Contains(errOut, "not connected") {
		t.Errorf("disconnect twice: exit %d, %q", code, errOut)
	}
	if _, _, code := e.run("", "network", "connect", "backend"); code != exitUsage {
		t.Errorf("missing argument: exit %d", code)
	}
}

func TestNetworkPrune(t *testing.T) {
	e := newImgEnv(t)
	e.mustRun("network", "create", "--subnet", "10.251.9.0/24", "used")
	e.mustRun("network", "create", "--subnet", "10.251.10.0/24", "--label", "keep=no", "unused1")
	e.mustRun("network", "create", "--subnet", "10.251.11.0/24", "unused2")
	hash := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	writeContainerConfig(t, e.root, runtime.ContainerConfig{ID: strings.Repeat("d", 64), Name: "db", ImageID: hash, ImageDigest: hash, NetworkMode: "used"})

	if out := e.mustRun("network", "prune", "-f", "--filter", "label=keep"); out != "Deleted Networks:\nunused1\n" {
		t.Errorf("prune with filter printed %q", out)
	}
	if out, _, code := e.run("n\n", "network", "prune"); code != exitFailure || !strings.Contains(out, "WARNING!") {
		t.Errorf("declined prune: exit %d, %q", code, out)
	}
	if out := e.mustRun("network", "prune", "-f"); out != "Deleted Networks:\nunused2\n" {
		t.Errorf("prune printed %q", out)
	}
	if got := lines(e.mustRun("network", "ls", "--format", "{{.Name}}")); !reflect.DeepEqual(got, []string{"bridge", "host", "none", "used"}) {
		t.Errorf("after prune: %q", got)
	}
}
