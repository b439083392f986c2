package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berthsh/berth/pkg/errdefs"
)

// Config is the registry-client part of berth's configuration file.
//
// The file is JSON. It is found at $BERTH_CONFIG if that is set, otherwise
// at /etc/berth/config.json when berth runs as root and at
// $XDG_CONFIG_HOME/berth/config.json (~/.config/berth/config.json) for
// other users. A missing file means the defaults. Keys other components
// own are ignored here. Example:
//
//	{
//	  "insecure-registries": ["registry.lan:5000", "10.0.0.0/8"]
//	}
//
// insecure-registries has the meaning of docker's daemon.json key of the
// same name: each entry is a registry host ("host" or "host:port") or a
// CIDR range; for a matching registry berth falls back to plain HTTP and
// accepts a TLS certificate it cannot verify. Registries on loopback
// (localhost, 127.0.0.0/8, ::1) are always reached over plain HTTP.
type Config struct {
	// InsecureRegistries lists hosts ("host:port") and CIDR ranges of
	// registries that may be used without verified TLS.
	InsecureRegistries []string `json:"insecure-registries,omitempty"`

	// path is the file the config was read from ("" for defaults).
	path string
}

// ConfigEnv is the environment variable naming berth's config file.
const ConfigEnv = "BERTH_CONFIG"

// ConfigPath returns the path of berth's config file for this process.
func ConfigPath() string {
	if p := os.Getenv(ConfigEnv); p != "" {
		return p
	}
	if os.Geteuid() == 0 {
		return "/etc/berth/config.json"
	}
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "/etc/berth/config.json"
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "berth", "config.json")
}

// LoadConfig reads berth's config file (see Config). A missing file gives
// the zero Config; a malformed one an error wrapping
// errdefs.ErrInvalidArgument that names the file.
func LoadConfig() (*Config, error) {
	return LoadConfigFile(ConfigPath())
}

// LoadConfigFile reads the config file at path.
func LoadConfigFile(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Config{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config file %s: %w", path, err)
	}
	c := &Config{path: path}
	if len(bytes.TrimSpace(b)) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("config file %s: %v (fix or remove the file): %w", path, err, errdefs.ErrInvalidArgument)
	}
	for _, e := range c.InsecureRegistries {
		if strings.Contains(e, "/") {
			if _, _, err := net.ParseCIDR(e); err != nil {
				return nil, fmt.Errorf("config file %s: insecure-registries entry %q is neither a host[:port] nor a CIDR range: %w", path, e, errdefs.ErrInvalidArgument)
			}
		} else if e == "" || strings.Contains(e, "://") {
			return nil, fmt.Errorf("config file %s: insecure-registries entry %q must be a host[:port] or a CIDR range: %w", path, e, errdefs.ErrInvalidArgument)
		}
	}
	return c, nil
}

// Path is the file the config was read from, or "" for the defaults.
func (c *Config) Path() string { return c.path }

// IsInsecure reports whether the registry host ("host" or "host:port") is
// listed in insecure-registries, by name or by an address in a listed CIDR
// range. A host name is resolved (briefly) only when CIDR ranges are
// configured.
func (c *Config) IsInsecure(ctx context.Context, host string) bool {
	if c == nil || len(c.InsecureRegistries) == 0 {
		return false
	}
	hostname := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		hostname = h
	}
	hostname = strings.Trim(hostname, "[]")
	var nets []*net.IPNet
	for _, e := range c.InsecureRegistries {
		if _, n, err := net.ParseCIDR(e); err == nil {
			nets = append(nets, n)
			continue
		}
		if strings.EqualFold(e, host) || strings.EqualFold(e, hostname) {
			return true
		}
	}
	if len(nets) == 0 {
		return false
	}
	var ips []net.IP
	if ip := net.ParseIP(hostname); ip != nil {
		ips = []net.IP{ip}
	} else {
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		addrs, err := net.DefaultResolver.LookupIPAddr(lctx, hostname)
		if err != nil {
			return false
		}
		for _, a := range addrs {
			ips = append(ips, a.IP)
		}
	}
	for _, ip := range ips {
		for _, n := range nets {
			if n.Contains(ip) {
				return true
			}
		}
	}
	return false
}
