package cli

import (
	"reflect"
	"testing"

	"github.com/berthsh/berth/pkg/runtime"
)

func TestPortLines(t *testing.T) {
	ports := []runtime.PortBinding{
		{HostPort: 5353, ContainerPort: 53, Proto: "udp"},
		{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Proto: "tcp"},
		{HostIP: "::", HostPort: 8080, ContainerPort: 80},
	}
	for _, tc := range []struct {
		want  string
		lines []string
	}{
		{"", []string{"53/udp -> 0.0.0.0:5353", "80/tcp -> 127.0.0.1:8080", "80/tcp -> [::]:8080"}},
		{"80", []string{"127.0.0.1:8080", "[::]:8080"}},
		{"80/tcp", []string{"127.0.0.1:8080", "[::]:8080"}},
		{"53/udp", []string{"0.0.0.0:5353"}},
		{"53", nil},
	} {
		got, err := portLines(ports, tc.want)
		if err != nil || !reflect.DeepEqual(got, tc.lines) {
			t.Errorf("portLines(%q) = %q, %v; want %q", tc.want, got, err, tc.lines)
		}
	}
	if _, err := portLines(ports, "http"); err == nil {
		t.Error("port http accepted")
	}
}

func TestSplitCpArg(t *testing.T) {
	for in, want := range map[string][2]string{
		"web:/etc/hosts": {"web", "/etc/hosts"},
		"web:rel":        {"web", "rel"},
		"/tmp/x":         {"", "/tmp/x"},
		"./a:b":          {"", "./a:b"},
		"-":              {"", "-"},
		"file":           {"", "file"},
		":x":             {"", ":x"},
	} {
		c, p := splitCpArg(in)
		if c != want[0] || p != want[1] {
			t.Errorf("splitCpArg(%q) = %q, %q; want %q", in, c, p, want)
		}
	}
}
