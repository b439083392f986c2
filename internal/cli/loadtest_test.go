package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berthsh/berth/pkg/monitor/loadtest"
)

// runCLI runs berth with a fresh data directory.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), append([]string{"--root", t.TempDir()}, args...), strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestLoadtestURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "hello")
	}))
	t.Cleanup(srv.Close)

	out, errOut, code := runCLI(t, "loadtest", "-q", "-n", "20", "-c", "2", srv.URL+"/")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"Requests:     20 in", "p50", "p99", "Latency histogram:", "200 OK", "Errors:       none", "100B of bodies"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}

	out, _, code = runCLI(t, "loadtest", "-q", "-n", "10", "--format", "json", srv.URL)
	var res loadtest.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 {
		t.Fatalf("json output (exit %d): %v\n%s", code, err, out)
	}
	if res.Requests != 10 || res.Succeeded != 10 || res.Container != nil || res.StatusCount(200) != 10 {
		t.Errorf("json result %+v", res)
	}

	out, _, code = runCLI(t, "loadtest", "-q", "-n", "5", "--format", "{{.Requests}} {{.Failed}}", srv.URL)
	if code != 0 || out != "5 0\n" {
		t.Errorf("template output %q (exit %d)", out, code)
	}

	out, errOut, code = runCLI(t, "loadtest", "-q", "-n", "8", srv.URL+"/fail")
	if code != 1 || !strings.Contains(out, "non-2xx") || !strings.Contains(out, "500 Internal Server Error") ||
		!strings.Contains(errOut, "all 8 requests failed") {
		t.Errorf("all 500: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestLoadtestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	out, errOut, code := runCLI(t, "loadtest", "-q", "-d", "200ms", "-c", "2", "http://"+addr+"/")
	if code != 1 || !strings.Contains(out, "connection refused") || !strings.Contains(errOut, "requests failed") {
		t.Errorf("exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestLoadtestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no target", []string{}, "1 argument"},
		{"negative duration", []string{"-d", "-1s", "http://127.0.0.1:1/"}, "--duration"},
		{"negative rate", []string{"--rate", "-5", "http://127.0.0.1:1/"}, "--rate"},
		{"zero workers", []string{"-c", "0", "http://127.0.0.1:1/"}, "-c must be at least 1"},
		{"bad timeout", []string{"--timeout", "0s", "http://127.0.0.1:1/"}, "--timeout"},
		{"bad scheme", []string{"ftp://127.0.0.1/"}, "scheme must be http or https"},
		{"no host", []string{"http:///x"}, "no host"},
		{"missing scheme", []string{"127.0.0.1:8000"}, "needs its scheme"},
		{"bad header", []string{"-H", "NoColon", "http://127.0.0.1:1/"}, `bad header "NoColon"`},
		{"path with URL", []string{"--path", "/x", "http://127.0.0.1:1/"}, "container targets"},
		{"unknown container", []string{"nosuchctr"}, `no such container "nosuchctr"`},
		{"bad duration", []string{"-d", "ten", "http://127.0.0.1:1/"}, "invalid argument"},
		{"bad template", []string{"--format", "{{.Nope", "http://127.0.0.1:1/"}, "invalid --format"},
		{"negative threads", []string{"--threads", "-1", "http://127.0.0.1:1/"}, "--threads must be at least 1"},
		{"unknown engine", []string{"--engine", "fibers", "http://127.0.0.1:1/"}, "--engine must be auto, epoll or goroutines"},
		{"epoll with a rate", []string{"--engine", "epoll", "--rate", "10", "http://127.0.0.1:1/"}, "fixed-concurrency"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, append([]string{"loadtest", "-q"}, tc.args...)...)
			if code != 125 || !strings.Contains(errOut, tc.want) || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want 125 and %q", code, out, errOut, tc.want)
			}
		})
	}
}
