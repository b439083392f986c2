package registry

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthsh/berth/pkg/errdefs"
)

func TestLoadConfigFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := LoadConfigFile(filepath.Join(dir, "missing.json"))
	if err != nil || len(c.InsecureRegistries) != 0 || c.Path() != "" {
		t.Fatalf("missing file: %+v %v", c, err)
	}
	c, err = LoadConfigFile(write("ok.json", `{"insecure-registries": ["reg.lan:5000", "10.0.0.0/8"], "other-key": {"x": 1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.InsecureRegistries) != 2 || c.InsecureRegistries[1] != "10.0.0.0/8" {
		t.Fatalf("parsed %+v", c)
	}
	if c, err := LoadConfigFile(write("empty.json", "  \n")); err != nil || len(c.InsecureRegistries) != 0 {
		t.Fatalf("empty file: %+v %v", c, err)
	}
	for name, content := range map[string]string{
		"bad.json":    `{"insecure-registries": `,
		"type.json":   `{"insecure-registries": "reg.lan"}`,
		"scheme.json": `{"insecure-registries": ["http://reg.lan"]}`,
		"cidr.json":   `{"insecure-registries": ["10.0.0.0/99"]}`,
	} {
		p := write(name, content)
		_, err := LoadConfigFile(p)
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument naming the file", name, err)
		}
	}
}

func TestConfigIsInsecure(t *testing.T) {
	t.Parallel()
	c := &Config{InsecureRegistries: []string{"reg.lan:5000", "plain.lan", "10.0.0.0/8", "fd00::/8"}}
	tests := []struct {
		host string
		want bool
	}{
		{"reg.lan:5000", true},
		{"reg.lan:5001", false},
		{"reg.lan", false},
		{"plain.lan", true},
		{"plain.lan:443", true},
		{"10.1.2.3:5000", true},
		{"11.1.2.3:5000", false},
		{"[fd00::1]:5000", true},
		{"ghcr.io", false},
	}
	for _, tt := range tests {
		if got := c.IsInsecure(t.Context(), tt.host); got != tt.want {
			t.Errorf("IsInsecure(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
	var nilCfg *Config
	if nilCfg.IsInsecure(t.Context(), "reg.lan:5000") {
		t.Error("nil config is insecure")
	}
}

func TestConfigPath(t *testing.T) {
	t.Setenv(ConfigEnv, "/some/where.json")
	if got := ConfigPath(); got != "/some/where.json" {
		t.Fatalf("ConfigPath = %s", got)
	}
	t.Setenv(ConfigEnv, "")
	t.Setenv("XDG_CONFIG_HOME", "/xdg")
	want := "/xdg/berth/config.json"
	if os.Geteuid() == 0 {
		want = "/etc/berth/config.json"
	}
	if got := ConfigPath(); got != want {
		t.Fatalf("ConfigPath = %s, want %s", got, want)
	}
}
