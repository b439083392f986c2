package loadtest

import (
	"errors"
	"strings"
	"testing"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/runtime"
)

func TestContainerURL(t *testing.T) {
	ctr := func(running bool, ports ...runtime.PortBinding) runtime.Container {
		var c runtime.Container
		c.Config.Name = "/web"
		c.State.Running = running
		c.State.Ports = ports
		return c
	}
	udp := runtime.PortBinding{HostIP: "127.0.0.1", HostPort: 5353, ContainerPort: 53, Proto: "udp"}
	any4 := runtime.PortBinding{HostIP: "0.0.0.0", HostPort: 32768, ContainerPort: 8000, Proto: "tcp"}
	lo := runtime.PortBinding{HostIP: "127.0.0.1", HostPort: 32769, ContainerPort: 9000, Proto: "tcp"}
	any6 := runtime.PortBinding{HostIP: "::", HostPort: 32770, ContainerPort: 8080, Proto: "tcp"}
	tests := []struct {
		name    string
		c       runtime.Container
		port    uint16
		path    string
		want    string
		wantErr error
		errText string
	}{
		{"first tcp port", ctr(true, udp, any4, lo), 0, "", "http://127.0.0.1:32768/", nil, ""},
		{"chosen port", ctr(true, udp, any4, lo), 9000, "/api?x=1", "http://127.0.0.1:32769/api?x=1", nil, ""},
		{"path without slash", ctr(true, lo), 0, "health", "http://127.0.0.1:32769/health", nil, ""},
		{"ipv6 any", ctr(true, any6), 0, "/", "http://[::1]:32770/", nil, ""},
		{"not running", ctr(false, lo), 0, "", "", errdefs.ErrConflict, "not running"},
		{"no tcp port", ctr(true, udp), 0, "", "", errdefs.ErrInvalidArgument, "publishes no TCP port"},
		{"port not published", ctr(true, any4, lo), 1234, "", "", errdefs.ErrInvalidArgument, "8000/tcp, 9000/tcp"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := ContainerURL(tc.c, tc.port, tc.path)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.errText) || !strings.Contains(err.Error(), "web") {
					t.Errorf("err = %v, want %v about %q", err, tc.wantErr, tc.errText)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("ContainerURL = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
