package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthsh/berth/internal/testutil"
)

// TestMonitorCLI runs `berth monitor` against a container burning CPU and
// checks it from the outside: Debian's Prometheus scraping it,
// headless Chromium rendering the dashboard, and a container removed
// while the monitor runs.
func TestMonitorCLI(t *testing.T) {
	e := newCtrEnv(t)

	const name = "burner"
	e.must("run", "-d", "--name", name, "mini:1", "sh", "-c", "echo burning; while :; do :; done")

	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &testutil.LockedBuffer{}, &testutil.LockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"--root", e.root, "monitor", "--listen", "127.0.0.1:0", "--interval", "500ms"}, strings.NewReader(""), out, errOut)
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("monitor exited %d after Ctrl-C: %s", code, errOut)
			}
		case <-time.After(20 * time.Second):
			t.Error("monitor did not stop after its context was cancelled")
		}
	}
	t.Cleanup(stop)

	urlRE := regexp.MustCompile(`serving (http://\S+/) `)
	var base string
	eventually(t, "the monitor's URL", func() bool {
		m := urlRE.FindStringSubmatch(out.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	})
	// Wait for the sampler's first samples.
	eventually(t, "history samples", func() bool {
		var h struct{ Samples []json.RawMessage }
		return monGetJSON(base+"api/containers/"+name+"/history", &h) && len(h.Samples) >= 2
	})

	t.Run("prometheus", func(t *testing.T) { testMonitorPrometheus(t, base, name) })
	t.Run("dashboard", func(t *testing.T) { testMonitorDashboard(t, base, name) })

	// A container removed while the monitor runs drops out of /metrics,
	// which keeps serving.
	e.must("rm", "-f", name)
	body, code := monHTTPGet(t, base+"metrics")
	if code != 200 || strings.Contains(body, `name="`+name+`"`) || !strings.Contains(body, "container_scrape_error 0") {
		t.Errorf("/metrics after rm: %d\n%s", code, body)
	}
	stop()
	if !strings.Contains(errOut.String(), "stopped") {
		t.Errorf("monitor stderr: %q", errOut)
	}
}

func monGetJSON(u string, v any) bool {
	resp, err := http.Get(u)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(v) == nil
}

func monHTTPGet(t *testing.T, u string) (string, int) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), resp.StatusCode
}

func monFreeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startProcess starts a helper program and kills it when the test ends.
func monStartProcess(t *testing.T, cmd *exec.Cmd) *testutil.LockedBuffer {
	t.Helper()
	out := &testutil.LockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return out
}

// testMonitorPrometheus scrapes the monitor with Debian's prometheus
// every second and checks through its query API that the container's CPU
// counter is there and rising.
func testMonitorPrometheus(t *testing.T, base, name string) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("needs Prometheus: the Debian package prometheus is not installed (apt-get install prometheus)")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: berth
    static_configs:
      - targets: [%q]
`, u.Host)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	promAddr := monFreeAddr(t)
	logs := monStartProcess(t, exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr, "--log.level=warn"))

	query := "http://" + promAddr + "/api/v1/query?query=" + url.QueryEscape(`container_cpu_usage_seconds_total{name="`+name+`",cpu="total",job="berth"}`)
	sample := func() (float64, bool) {
		var r struct {
			Status string
			Data   struct {
				Result []struct {
					Metric map[string]string
					Value  [2]any
				}
			}
		}
		if !monGetJSON(query, &r) || r.Status != "success" || len(r.Data.Result) != 1 {
			return 0, false
		}
		res := r.Data.Result[0]
		if !strings.HasPrefix(res.Metric["id"], "/berth/") || res.Metric["image"] != "mini:1" {
			t.Errorf("series labels %v", res.Metric)
		}
		s, _ := res.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		return v, err == nil
	}
	var first float64
	monWaitFor(t, 30*time.Second, "Prometheus to scrape the container's CPU", logs, func() bool {
		v, ok := sample()
		first = v
		return ok
	})
	monWaitFor(t, 30*time.Second, "the CPU counter to rise in Prometheus", logs, func() bool {
		v, ok := sample()
		return ok && v > first
	})
	body, _ := monHTTPGet(t, "http://"+promAddr+"/api/v1/query?query=up")
	if !strings.Contains(body, `"job":"berth"`) || !strings.Contains(body, `"1"]`) {
		t.Errorf("Prometheus up{job=berth}: %s", body)
	}
}

func monWaitFor(t *testing.T, limit time.Duration, what string, logs *testutil.LockedBuffer, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(limit); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s; its output:\n%s", what, logs)
}

// testMonitorDashboard loads the dashboard in headless Chromium: the
// container must be listed and its CPU chart drawn (app.js records the
// points it drew in data-points). The screenshot is kept as an artifact.
func testMonitorDashboard(t *testing.T, base, name string) {
	bin := ""
	for _, b := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(b); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("needs a headless browser: the Debian package chromium is not installed (apt-get install chromium)")
	}
	profile := t.TempDir()
	chrome := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		defer cancel()
		args = append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
			"--user-data-dir=" + profile, "--virtual-time-budget=4000", "--window-size=1366,900"}, args...)
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), "HOME="+profile)
		var stdout strings.Builder
		cmd.Stdout = &stdout
		stderr := &testutil.LockedBuffer{}
		cmd.Stderr = stderr
		err := cmd.Run()
		if err != nil {
			err = fmt.Errorf("chromium %v: %w\n%s", args, err, stderr)
		}
		return stdout.String(), err
	}

	dom, err := chrome("--dump-dom", base)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`<h3[^>]*>` + name + `</h3>`).MatchString(dom) {
		t.Errorf("dashboard DOM does not list %q:\n%s", name, dom)
	}
	m := regexp.MustCompile(`<canvas class="chart cpu-chart" data-points="(\d+)"`).FindStringSubmatch(dom)
	if m == nil || m[1] == "0" {
		t.Errorf("no CPU chart drawn (data-points %v):\n%s", m, dom)
	}
	if !strings.Contains(dom, "burning") {
		t.Errorf("dashboard shows no log line of the container")
	}

	dir := os.Getenv("BERTH_TEST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "monitor-dashboard.png")
	if _, err := chrome("--screenshot="+shot, base); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(shot)
	if err != nil || len(b) < 1000 || string(b[1:4]) != "PNG" {
		t.Fatalf("screenshot %s: %d bytes, %v", shot, len(b), err)
	}
	t.Logf("dashboard screenshot: %s", shot)
}
