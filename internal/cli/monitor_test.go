package cli

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
)

func TestMonitorBadInput(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"listen without port", []string{"--listen", "nonsense"}, exitUsage, []string{"invalid --listen", `"nonsense"`, "HOST:PORT"}},
		{"listen bad port", []string{"--listen", "127.0.0.1:99999"}, exitUsage, []string{"invalid --listen", `"99999"`}},
		{"listen bad host", []string{"--listen", "my host:9323"}, exitUsage, []string{"invalid --listen", `"my host"`}},
		{"port in use", []string{"--listen", busy.Addr().String()}, exitFailure, []string{busy.Addr().String(), "already in use", "--listen"}},
		{"interval too short", []string{"--interval", "1ms"}, exitUsage, []string{"--interval"}},
		{"history shorter than interval", []string{"--interval", "2s", "--history", "1s"}, exitUsage, []string{"--history"}},
		{"argument", []string{"extra"}, exitUsage, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"--root", t.TempDir(), "monitor"}, tt.args...)
			code := Main(context.Background(), args, strings.NewReader(""), &out, &errOut)
			if code != tt.code || out.Len() != 0 || !strings.HasPrefix(errOut.String(), "Error:") {
				t.Fatalf("berth %q: exit %d, stdout %q, stderr %q; want exit %d and an error", args, code, out.String(), errOut.String(), tt.code)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr %q does not mention %q", errOut.String(), w)
				}
			}
		})
	}
}
