package cli

import (
	"strings"
	"testing"
)

// TestNetworkContainerMode checks --network container:NAME: the new
// container shares the other's network namespace (its loopback server
// answers) and hostname, and options that cannot go with it are refused.
func TestNetworkContainerMode(t *testing.T) {
	e := newCtrEnv(t)
	e.must("run", "-d", "--name", "web", "--hostname", "webhost", "mini:1", "sh", "-c",
		"mkdir -p /www && echo hello-from-web > /www/index.html && exec busybox httpd -f -p 127.0.0.1:8080 -h /www")
	var out string
	eventually(t, "a container sharing web's network reaches its loopback server", func() bool {
		var code int
		out, _, code = e.berth("", "run", "--rm", "--network", "container:web", "mini:1", "sh", "-c", "busybox wget -qO- http://127.0.0.1:8080/ && hostname")
		return code == 0
	})
	if got := strings.Fields(out); len(got) != 2 || got[0] != "hello-from-web" || got[1] != "webhost" {
		t.Errorf("output %q, want the page and web's hostname", out)
	}
	// A container on its own network does not see web's loopback.
	if _, _, code := e.berth("", "run", "--rm", "mini:1", "busybox", "wget", "-qO-", "-T", "2", "http://127.0.0.1:8080/"); code == 0 {
		t.Errorf("a container with its own network reached web's loopback server")
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"ports", []string{"-p", "8081:80", "--network", "container:web"}, "port publishing"},
		{"hostname", []string{"-h", "x", "--network", "container:web"}, "hostname"},
		{"dns", []string{"--dns", "1.1.1.1", "--network", "container:web"}, "dns"},
		{"unknown container", []string{"--network", "container:nosuch"}, "nosuch"},
		{"empty", []string{"--network", "container:"}, "name the container"},
		{"with another network", []string{"--network", "container:web", "--network", "bridge"}, "cannot be combined"},
	} {
		_, errOut, code := e.berth("", append(append([]string{"run", "--rm"}, tc.args...), "mini:1", "true")...)
		if code != 125 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, %q; want 125 mentioning %q", tc.name, code, errOut, tc.want)
		}
	}
	e.must("stop", "-t", "0", "web")
	_, errOut, code := e.berth("", "run", "--rm", "--network", "container:web", "mini:1", "true")
	if code != 125 || !strings.Contains(errOut, "not running") {
		t.Errorf("joining a stopped container: exit %d, %q", code, errOut)
	}
	if out := e.must("ps", "-aq"); len(strings.Fields(out)) != 1 {
		t.Errorf("failed runs left containers behind: %q", out)
	}
}
