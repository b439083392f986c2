package loadtest

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/runtime"
)

// ContainerURL is the http:// URL at which the running container c
// serves path: its published TCP port for containerPort, or its first
// published TCP port when containerPort is 0. A port published on every
// address (0.0.0.0 or ::) is reached on loopback. It returns the URL and
// the published binding used.
func ContainerURL(c runtime.Container, containerPort uint16, path string) (string, runtime.PortBinding, error) {
	name := strings.TrimPrefix(c.Config.Name, "/")
	if name == "" {
		name = c.Config.ID
	}
	if !c.State.Running {
		return "", runtime.PortBinding{}, fmt.Errorf("container %s is not running: start it before loading it: %w", name, errdefs.ErrConflict)
	}
	var tcp []runtime.PortBinding
	for _, p := range c.State.Ports {
		if p.Proto == "" || strings.EqualFold(p.Proto, "tcp") {
			tcp = append(tcp, p)
		}
	}
	if len(tcp) == 0 {
		return "", runtime.PortBinding{}, invalid("container %s publishes no TCP port: run it with -p HOSTPORT:CONTAINERPORT (or give a URL)", name)
	}
	pick := tcp[0]
	if containerPort != 0 {
		found := false
		var have []string
		for _, p := range tcp {
			have = append(have, fmt.Sprintf("%d/tcp", p.ContainerPort))
			if p.ContainerPort == containerPort && !found {
				pick, found = p, true
			}
		}
		if !found {
			return "", runtime.PortBinding{}, invalid("container %s does not publish port %d/tcp (it publishes %s)", name, containerPort, strings.Join(have, ", "))
		}
	}
	host := pick.HostIP
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	if path == "" {
		path = "/"
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u, err := url.Parse("http://" + net.JoinHostPort(host, strconv.Itoa(int(pick.HostPort))) + path)
	if err != nil {
		return "", runtime.PortBinding{}, invalid("bad path %q: %v", path, err)
	}
	return u.String(), pick, nil
}
