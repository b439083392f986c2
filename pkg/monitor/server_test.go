package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/runtime"
	"github.com/berthsh/berth/pkg/runtime/logs"
)

// fakeSource is a Source over fixed containers whose stats the test
// changes between reads.
type fakeSource struct {
	mu      sync.Mutex
	ctrs    []runtime.Container
	stats   map[string]Stats // by ID
	errs    map[string]error // by ID
	logs    map[string][]logs.Entry
	listErr error
	reads   int
	// block, when set, holds every Stats call until it is closed.
	block chan struct{}
}

func (f *fakeSource) source() Source {
	return Source{
		List: func(ctx context.Context) ([]runtime.Container, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			return append([]runtime.Container(nil), f.ctrs...), f.listErr
		},
		Stats: func(ctx context.Context, cs []runtime.Container) []StatsResult {
			if f.block != nil {
				<-f.block
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			out := make([]StatsResult, len(cs))
			for i, c := range cs {
				f.reads++
				if err := f.errs[c.Config.ID]; err != nil {
					out[i].Err = err
					continue
				}
				s, ok := f.stats[c.Config.ID]
				if !ok {
					out[i].Err = fmt.Errorf("container %s is not running: %w", c.Config.ID, errdefs.ErrNotFound)
					continue
				}
				out[i].Stats = s
			}
			return out
		},
		Logs: func(ctx context.Context, c runtime.Container, n int) ([]logs.Entry, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			es := f.logs[c.Config.ID]
			if len(es) > n {
				es = es[len(es)-n:]
			}
			return es, nil
		},
	}
}

// set replaces container id's stats.
func (f *fakeSource) set(id string, fn func(*Stats)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.stats[id]
	fn(&s)
	f.stats[id] = s
}

var (
	idWeb   = strings.Repeat("a", 64)
	idDB    = strings.Repeat("b", 64)
	idOld   = strings.Repeat("c", 64)
	started = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
)

func ctr(id, name, image string, running bool) runtime.Container {
	c := runtime.Container{}
	c.Config.ID, c.Config.Name, c.Config.Image = id, name, image
	c.Config.Created = started.Add(-time.Minute)
	c.State.Running = running
	if running {
		c.State.Status = "running"
		c.State.StartedAt = started
		c.State.Pid = 42
	} else {
		c.State.Status = "exited"
	}
	return c
}

func newFake() *fakeSource {
	web := ctr(idWeb, "web", "registry.local/web:1", true)
	web.Config.Create.Memory = 256 << 20
	web.State.Health = &runtime.Health{Status: "healthy"}
	web.State.Ports = []runtime.PortBinding{{HostIP: "0.0.0.0", HostPort: 8080, ContainerPort: 80, Proto: "tcp"}}
	db := ctr(idDB, "db", "postgres:16", true)
	db.Config.Create.CgroupsPath = "/custom/db"
	db.State.Health = &runtime.Health{Status: "unhealthy"}
	return &fakeSource{
		ctrs: []runtime.Container{web, db, ctr(idOld, "old", "busybox", false)},
		stats: map[string]Stats{
			idWeb: {Read: started.Add(time.Second), CPUUsage: 1_500_000_000, SystemUsage: 1e12, OnlineCPUs: 2,
				CPUThrottled: 250_000_000, CPUQuota: 50000, CPUPeriod: 100000,
				MemoryUsage: 100 << 20, MemoryRaw: 120 << 20, MemoryLimit: 256 << 20, OOMEvents: 2,
				NetRx: 1000, NetTx: 2000, BlockRead: 4096, BlockWrite: 8192, PIDs: 3},
			idDB: {Read: started.Add(time.Second), CPUUsage: 3e9, SystemUsage: 1e12, OnlineCPUs: 2,
				CPUQuota: -1, MemoryUsage: 10 << 20, MemoryRaw: 11 << 20, MemoryLimit: 8 << 30, PIDs: 1},
		},
		errs: map[string]error{},
		logs: map[string][]logs.Entry{idWeb: {
			{Stream: "stdout", Time: started, Line: []byte("GET / 200\n")},
			{Stream: "stderr", Time: started.Add(time.Second), Line: []byte("warning: <b>&\n")},
		}},
	}
}

func newTestServer(t *testing.T, f *fakeSource) (*Server, *httptest.Server) {
	t.Helper()
	s, err := NewServer(f.source(), Options{Interval: time.Second, Retention: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// value finds the sample of family name whose labels include want.
func value(t *testing.T, mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	t.Helper()
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue(), true
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

func TestMetricsFromSource(t *testing.T) {
	f := newFake()
	_, ts := newTestServer(t, f)
	mfs := scrape(t, ts.URL)

	web := map[string]string{"id": "/berth/" + idWeb, "name": "web", "image": "registry.local/web:1"}
	db := map[string]string{"id": "/custom/db", "name": "db", "image": "postgres:16"}
	with := func(base map[string]string, k, v string) map[string]string {
		m := map[string]string{k: v}
		for a, b := range base {
			m[a] = b
		}
		return m
	}
	tests := []struct {
		name   string
		labels map[string]string
		typ    dto.MetricType
		want   float64
	}{
		{"container_cpu_usage_seconds_total", with(web, "cpu", "total"), dto.MetricType_COUNTER, 1.5},
		{"container_cpu_usage_seconds_total", with(db, "cpu", "total"), dto.MetricType_COUNTER, 3},
		{"container_cpu_cfs_throttled_seconds_total", web, dto.MetricType_COUNTER, 0.25},
		{"container_memory_usage_bytes", web, dto.MetricType_GAUGE, 120 << 20},
		{"container_memory_working_set_bytes", web, dto.MetricType_GAUGE, 100 << 20},
		{"container_spec_memory_limit_bytes", web, dto.MetricType_GAUGE, 256 << 20},
		{"container_spec_memory_limit_bytes", db, dto.MetricType_GAUGE, 0},
		{"container_spec_cpu_quota", web, dto.MetricType_GAUGE, 50000},
		{"container_network_receive_bytes_total", with(web, "interface", "eth0"), dto.MetricType_COUNTER, 1000},
		{"container_network_transmit_bytes_total", with(web, "interface", "eth0"), dto.MetricType_COUNTER, 2000},
		{"container_fs_reads_bytes_total", web, dto.MetricType_COUNTER, 4096},
		{"container_fs_writes_bytes_total", web, dto.MetricType_COUNTER, 8192},
		{"container_processes", web, dto.MetricType_GAUGE, 3},
		{"container_oom_events_total", web, dto.MetricType_COUNTER, 2},
		{"container_start_time_seconds", web, dto.MetricType_GAUGE, float64(started.Unix())},
		{"container_health_state", web, dto.MetricType_GAUGE, 1},
		{"container_health_state", db, dto.MetricType_GAUGE, 0},
		{"container_scrape_error", nil, dto.MetricType_GAUGE, 0},
	}
	for _, tt := range tests {
		if mf := mfs[tt.name]; mf == nil || mf.GetType() != tt.typ {
			t.Errorf("%s: family %v, want type %v", tt.name, mf, tt.typ)
			continue
		}
		got, ok := value(t, mfs, tt.name, tt.labels)
		if !ok || got != tt.want {
			t.Errorf("%s%v = %v (found %v), want %v", tt.name, tt.labels, got, ok, tt.want)
		}
	}
	// No quota: no series, as in cAdvisor. Stopped containers: no series.
	if _, ok := value(t, mfs, "container_spec_cpu_quota", db); ok {
		t.Error("container_spec_cpu_quota for a container without a quota")
	}
	if n := len(mfs["container_cpu_usage_seconds_total"].GetMetric()); n != 2 {
		t.Errorf("%d cpu series, want 2 (the stopped container has none)", n)
	}

	// cAdvisor's help text and the exact exposition of one family.
	want := `# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed in seconds.
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{cpu="total",id="/berth/` + idWeb + `",image="registry.local/web:1",name="web"} 1.5
container_cpu_usage_seconds_total{cpu="total",id="/custom/db",image="postgres:16",name="db"} 3
`
	if err := testutil.ScrapeAndCompare(ts.URL+"/metrics", strings.NewReader(want), "container_cpu_usage_seconds_total"); err != nil {
		t.Error(err)
	}
}

func TestMetricsCountersReadAtScrape(t *testing.T) {
	f := newFake()
	_, ts := newTestServer(t, f)
	labels := map[string]string{"name": "web", "cpu": "total"}
	first, _ := value(t, scrape(t, ts.URL), "container_cpu_usage_seconds_total", labels)
	f.set(idWeb, func(s *Stats) { s.CPUUsage += 2e9; s.NetRx += 500 })
	mfs := scrape(t, ts.URL)
	second, _ := value(t, mfs, "container_cpu_usage_seconds_total", labels)
	if second-first != 2 {
		t.Errorf("cpu counter went from %v to %v, want +2 s", first, second)
	}
	if rx, _ := value(t, mfs, "container_network_receive_bytes_total", map[string]string{"name": "web"}); rx != 1500 {
		t.Errorf("rx = %v, want 1500", rx)
	}
	// A container removed between scrapes disappears from the next one.
	f.mu.Lock()
	f.ctrs = f.ctrs[1:]
	f.mu.Unlock()
	if _, ok := value(t, scrape(t, ts.URL), "container_cpu_usage_seconds_total", labels); ok {
		t.Error("removed container still exported")
	}
}

func TestMetricsSourceErrors(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		wantError float64
	}{
		{"exited mid-scrape", fmt.Errorf("container db is not running: %w", errdefs.ErrNotFound), 0},
		{"read failure", errors.New("cgroup: permission denied"), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.errs[idDB] = tt.err
			_, ts := newTestServer(t, f)
			mfs := scrape(t, ts.URL)
			if _, ok := value(t, mfs, "container_cpu_usage_seconds_total", map[string]string{"name": "web"}); !ok {
				t.Error("web missing when db failed")
			}
			if _, ok := value(t, mfs, "container_memory_usage_bytes", map[string]string{"name": "db"}); ok {
				t.Error("db exported despite its error")
			}
			if v, _ := value(t, mfs, "container_scrape_error", nil); v != tt.wantError {
				t.Errorf("container_scrape_error = %v, want %v", v, tt.wantError)
			}
		})
	}
	t.Run("list failure", func(t *testing.T) {
		f := newFake()
		f.listErr = errors.New("state dir unreadable")
		_, ts := newTestServer(t, f)
		mfs := scrape(t, ts.URL)
		if v, ok := value(t, mfs, "container_scrape_error", nil); !ok || v != 1 {
			t.Errorf("container_scrape_error = %v %v, want 1", v, ok)
		}
	})
}

func getJSON(t *testing.T, url string, wantCode int, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantCode {
		t.Fatalf("GET %s: %s, want %d\n%s", url, resp.Status, wantCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q", url, ct)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v\n%s", url, err, b)
	}
}

// sampleTwice takes two samples one second apart (fake clock).
func sampleTwice(t *testing.T, s *Server, f *fakeSource) {
	t.Helper()
	ctx := context.Background()
	clock := started.Add(time.Hour)
	s.now = func() time.Time { return clock }
	if err := s.SampleOnce(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{idWeb, idDB} {
		f.set(id, func(st *Stats) {
			st.Read = st.Read.Add(time.Second)
			st.CPUUsage += 5e8
			st.SystemUsage += 2e9
			st.NetRx += 300
		})
	}
	clock = clock.Add(time.Second)
	if err := s.SampleOnce(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestAPI(t *testing.T) {
	f := newFake()
	s, ts := newTestServer(t, f)
	sampleTwice(t, s, f)

	// Raw shape: the keys a dashboard relies on.
	var raw []map[string]any
	getJSON(t, ts.URL+"/api/containers", 200, &raw)
	if len(raw) != 3 {
		t.Fatalf("%d containers, want 3", len(raw))
	}
	for _, k := range []string{"id", "name", "image", "state", "health", "ports", "created", "started", "latest", "stats"} {
		if _, ok := raw[0][k]; !ok {
			t.Errorf("/api/containers[0] has no %q: %v", k, raw[0])
		}
	}

	var cs []ContainerInfo
	getJSON(t, ts.URL+"/api/containers", 200, &cs)
	web, old := cs[0], cs[2]
	if web.Name != "web" || web.State != "running" || web.Health != "healthy" || web.Image != "registry.local/web:1" {
		t.Errorf("web = %+v", web)
	}
	if len(web.Ports) != 1 || web.Ports[0].HostPort != 8080 || web.Ports[0].ContainerPort != 80 || web.Ports[0].Proto != "tcp" {
		t.Errorf("web ports = %+v", web.Ports)
	}
	if web.Started == nil || !web.Started.Equal(started) || web.Latest == nil {
		t.Fatalf("web started %v latest %v", web.Started, web.Latest)
	}
	// 0.5 s CPU over 2 s host CPU on 2 CPUs: 50%; 300 B in 1 s.
	if web.Latest.CPUPercent != 50 || web.Latest.NetRx != 300 || web.Latest.MemoryUsage != 100<<20 {
		t.Errorf("web latest = %+v", *web.Latest)
	}
	if old.State != "exited" || old.Health != "none" || old.Latest != nil || old.Started != nil || old.Ports == nil {
		t.Errorf("old = %+v", old)
	}

	var one ContainerInfo
	getJSON(t, ts.URL+"/api/containers/"+idDB[:6], 200, &one)
	if one.Name != "db" || one.Health != "unhealthy" {
		t.Errorf("by prefix: %+v", one)
	}

	var hist HistoryResponse
	getJSON(t, ts.URL+"/api/containers/web/history", 200, &hist)
	if hist.ID != idWeb || len(hist.Samples) != 1 || hist.Samples[0].CPUPercent != 50 {
		t.Errorf("history = %+v", hist)
	}
	getJSON(t, fmt.Sprintf("%s/api/containers/web/history?since=%d", ts.URL, hist.Samples[0].Time), 200, &hist)
	if len(hist.Samples) != 0 {
		t.Errorf("history since the last sample = %+v", hist.Samples)
	}
	var all map[string][]Sample
	getJSON(t, ts.URL+"/api/history", 200, &all)
	if len(all) != 3 || len(all[idWeb]) != 1 || len(all[idDB]) != 1 || all[idOld] == nil {
		t.Errorf("/api/history = %+v", all)
	}

	var lg LogsResponse
	getJSON(t, ts.URL+"/api/containers/web/logs?tail=1", 200, &lg)
	if len(lg.Lines) != 1 || lg.Lines[0].Line != "warning: <b>&" || lg.Lines[0].Stream != "stderr" {
		t.Errorf("logs tail=1 = %+v", lg)
	}
	getJSON(t, ts.URL+"/api/containers/web/logs", 200, &lg)
	if len(lg.Lines) != 2 || lg.Lines[0].Line != "GET / 200" {
		t.Errorf("logs = %+v", lg)
	}

	var sum Summary
	getJSON(t, ts.URL+"/api/summary", 200, &sum)
	if sum.Containers != 3 || sum.Running != 2 || sum.Healthy != 1 || sum.Unhealthy != 1 ||
		sum.CPUPercent != 100 || sum.NetRx != 600 || sum.MemoryUsed != 110<<20 || sum.Interval != 1000 {
		t.Errorf("summary = %+v", sum)
	}

	var e map[string]string
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/api/containers/nosuch", 404},
		{"/api/containers/nosuch/logs", 404},
		{"/api/containers/web/history?since=yesterday", 400},
		{"/api/containers/web/logs?tail=-1", 400},
		{"/api/nosuch", 404},
	} {
		getJSON(t, ts.URL+tc.path, tc.code, &e)
		if e["error"] == "" {
			t.Errorf("%s: no error message", tc.path)
		}
	}
}

func TestScrapeFeedsHistory(t *testing.T) {
	f := newFake()
	s, ts := newTestServer(t, f)
	clock := started.Add(time.Hour)
	s.now = func() time.Time { return clock }
	scrape(t, ts.URL)
	f.set(idWeb, func(st *Stats) { st.Read = st.Read.Add(time.Second); st.CPUUsage += 1e9; st.SystemUsage += 2e9 })
	scrape(t, ts.URL)
	if h := s.History().Samples(idWeb, 0); len(h) != 1 || h[0].CPUPercent != 100 {
		t.Fatalf("history after two scrapes = %+v, want one 100%% sample", h)
	}
	// Right after a scrape the sampler does not read again...
	f.mu.Lock()
	reads := f.reads
	f.mu.Unlock()
	clock = clock.Add(s.opts.Interval / 4)
	if err := s.SampleOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	if f.reads != reads {
		t.Errorf("sampler read %d containers right after a scrape", f.reads-reads)
	}
	f.mu.Unlock()
	// ...but does once the scrape is an interval old.
	clock = clock.Add(s.opts.Interval)
	if err := s.SampleOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	if f.reads != reads+2 {
		t.Errorf("sampler read %d containers, want 2", f.reads-reads)
	}
	f.mu.Unlock()
}

func TestAPIListError(t *testing.T) {
	f := newFake()
	f.listErr = errors.New("state dir unreadable")
	_, ts := newTestServer(t, f)
	var e map[string]string
	getJSON(t, ts.URL+"/api/containers", 500, &e)
	if !strings.Contains(e["error"], "state dir unreadable") {
		t.Errorf("error = %q", e["error"])
	}
}

func TestDashboardServed(t *testing.T) {
	_, ts := newTestServer(t, newFake())
	for _, tc := range []struct{ path, ctype, contains string }{
		{"/", "text/html", "<canvas"},
		{"/", "text/html", "app.js"},
		{"/app.js", "javascript", "drawChart"},
		{"/style.css", "text/css", ".card"},
	} {
		resp, err := http.Get(ts.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), tc.ctype) {
			t.Errorf("GET %s: %s %q", tc.path, resp.Status, resp.Header.Get("Content-Type"))
		}
		// index.html creates canvases from app.js; check app.js does.
		if tc.contains == "<canvas" {
			continue
		}
		if !strings.Contains(string(b), tc.contains) {
			t.Errorf("GET %s: no %q", tc.path, tc.contains)
		}
	}
}

func TestServeAndSampler(t *testing.T) {
	f := newFake()
	s, err := NewServer(f.source(), Options{Interval: 100 * time.Millisecond, Retention: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// Each read advances the fake's counters so the sampler gets samples.
	src := f.source()
	inner := src.Stats
	s.src.Stats = func(ctx context.Context, cs []runtime.Container) []StatsResult {
		for _, c := range cs {
			f.set(c.Config.ID, func(st *Stats) { st.Read = st.Read.Add(time.Second); st.CPUUsage += 1e8; st.SystemUsage += 1e9 })
		}
		return inner(ctx, cs)
	}
	l, err := Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	url := "http://" + l.Addr().String()
	for i := 0; s.History().Len(idWeb) < 3; i++ {
		if i > 200 {
			t.Fatal("sampler did not fill the history")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var sum Summary
	getJSON(t, url+"/api/summary", 200, &sum)
	if sum.Running != 2 {
		t.Errorf("summary over the network: %+v", sum)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
	f.mu.Lock()
	reads := f.reads
	f.mu.Unlock()
	time.Sleep(300 * time.Millisecond)
	f.mu.Lock()
	after := f.reads
	f.mu.Unlock()
	if after != reads {
		t.Errorf("sampler still reading after Serve returned: %d -> %d", reads, after)
	}
	if _, err := net.Dial("tcp", l.Addr().String()); err == nil {
		t.Error("listener still open after Serve returned")
	}
	// The ring holds Retention/Interval samples.
	if n := s.History().Len(idWeb); n > 10 {
		t.Errorf("history holds %d samples, want at most 10", n)
	}
}

func TestListenErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		addr string
		want error
		msg  string
	}{
		{"9323", errdefs.ErrInvalidArgument, "HOST:PORT"},
		{"127.0.0.1:http-ish", errdefs.ErrInvalidArgument, "port"},
		{"127.0.0.1:70000", errdefs.ErrInvalidArgument, "port"},
		{"not a host:80", errdefs.ErrInvalidArgument, "host"},
		{busy.Addr().String(), errdefs.ErrConflict, "already in use"},
	}
	for _, tt := range tests {
		l, err := Listen(context.Background(), tt.addr)
		if err == nil {
			l.Close()
			t.Errorf("Listen(%q) succeeded", tt.addr)
			continue
		}
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), tt.addr) {
			t.Errorf("Listen(%q) = %v, want %v mentioning %q and the address", tt.addr, err, tt.want, tt.msg)
		}
	}
}

func TestNewServerNeedsSource(t *testing.T) {
	if _, err := NewServer(Source{}, Options{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("NewServer(empty) = %v", err)
	}
}

// After a scrape's round, the sampler's next turn (one interval on)
// reads nothing when the scrape was less than an interval before: a
// scrape a second and the sampler do one round a second between them,
// not two.
func TestSamplerSkipsAfterScrape(t *testing.T) {
	f := newFake()
	s, ts := newTestServer(t, f)
	clock := started.Add(time.Hour)
	s.now = func() time.Time { return clock }
	scrape(t, ts.URL)
	f.mu.Lock()
	reads := f.reads
	f.mu.Unlock()
	if reads != 2 {
		t.Fatalf("a scrape read %d containers, want 2", reads)
	}
	for _, d := range []time.Duration{300 * time.Millisecond, 600 * time.Millisecond, 850 * time.Millisecond} {
		clock = started.Add(time.Hour + d)
		if err := s.SampleOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		f.mu.Lock()
		got := f.reads
		f.mu.Unlock()
		if got != reads {
			t.Errorf("sampler %v after a scrape read again (%d reads, want %d)", d, got, reads)
		}
	}
	clock = started.Add(time.Hour + 1100*time.Millisecond)
	if err := s.SampleOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reads != reads+2 {
		t.Errorf("sampler an interval after the scrape: %d reads, want %d", f.reads, reads+2)
	}
}

// Scrapes that come while a round is being read wait for it and share
// it: concurrent scrapers do not multiply the reads.
func TestConcurrentScrapesShareRound(t *testing.T) {
	f := newFake()
	f.block = make(chan struct{})
	s, ts := newTestServer(t, f)
	results := make(chan map[string]*dto.MetricFamily, 3)
	// Scrapes from goroutines: an error is an empty result (t.Fatal
	// belongs to the test's goroutine).
	scrapeAsync := func() map[string]*dto.MetricFamily {
		resp, err := http.Get(ts.URL + "/metrics")
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		p := expfmt.NewTextParser(model.UTF8Validation)
		mfs, _ := p.TextToMetricFamilies(resp.Body)
		return mfs
	}
	go func() { results <- scrapeAsync() }()
	// The first scrape is in its round (holding the lock), the others
	// wait for it.
	eventually := func(what string, ok func() bool) {
		t.Helper()
		for i := 0; !ok(); i++ {
			if i > 500 {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	eventually("the first scrape's round", func() bool { return len(s.roundLock) == 1 })
	go func() { results <- scrapeAsync() }()
	go func() { results <- scrapeAsync() }()
	eventually("two waiting scrapes", func() bool { return s.waiting.Load() == 2 })
	close(f.block)
	for range 3 {
		mfs := <-results
		if _, ok := value(t, mfs, "container_cpu_usage_seconds_total", map[string]string{"name": "web"}); !ok {
			t.Error("a shared scrape lacks web's CPU counter")
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reads != 2 {
		t.Errorf("3 concurrent scrapes read %d containers, want 2 (one round)", f.reads)
	}
}

// A container that cannot be read (not because it stopped) is left out
// of the history and shows its error in the API until a reading works
// again; the others are unaffected.
func TestReadErrorExposed(t *testing.T) {
	f := newFake()
	f.errs[idDB] = errors.New("stats db: open memory.stat: permission denied")
	s, ts := newTestServer(t, f)
	sampleTwice(t, s, f)
	var db, web ContainerInfo
	getJSON(t, ts.URL+"/api/containers/db", 200, &db)
	getJSON(t, ts.URL+"/api/containers/web", 200, &web)
	if !strings.Contains(db.Error, "permission denied") || db.Latest != nil {
		t.Errorf("db: error %q, latest %v; want the read error and no sample", db.Error, db.Latest)
	}
	if web.Error != "" || web.Latest == nil {
		t.Errorf("web: error %q, latest %v; want a sample and no error", web.Error, web.Latest)
	}
	f.mu.Lock()
	delete(f.errs, idDB)
	f.mu.Unlock()
	later := started.Add(2 * time.Hour)
	s.now = func() time.Time { return later }
	if err := s.SampleOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	db = ContainerInfo{}
	getJSON(t, ts.URL+"/api/containers/db", 200, &db)
	if db.Error != "" {
		t.Errorf("db readable again: error %q", db.Error)
	}
}

// A source that panics or answers with the wrong number of results
// fails the round's readings, not the server.
func TestBadSource(t *testing.T) {
	for name, stats := range map[string]func(context.Context, []runtime.Container) []StatsResult{
		"panic":     func(context.Context, []runtime.Container) []StatsResult { panic("boom") },
		"too short": func(context.Context, []runtime.Container) []StatsResult { return nil },
	} {
		t.Run(name, func(t *testing.T) {
			f := newFake()
			src := f.source()
			src.Stats = stats
			s, err := NewServer(src, Options{})
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(s.Handler())
			defer ts.Close()
			if v, _ := value(t, scrape(t, ts.URL), "container_scrape_error", nil); v != 1 {
				t.Errorf("container_scrape_error = %v, want 1", v)
			}
			var web ContainerInfo
			getJSON(t, ts.URL+"/api/containers/web", 200, &web)
			if web.Error == "" {
				t.Error("no error shown for web")
			}
		})
	}
}

// The API serves a bounded number of requests at once; more get 503.
func TestLimitRequests(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	h := limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}), 2)
	ts := httptest.NewServer(h)
	defer ts.Close()
	done := make(chan int, 2)
	for range 2 {
		go func() {
			resp, err := http.Get(ts.URL)
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
	}
	<-entered
	<-entered
	resp, err := http.Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("third request at once: %s, want 503 with Retry-After", resp.Status)
	}
	close(release)
	for range 2 {
		if code := <-done; code != 200 {
			t.Errorf("admitted request: %d", code)
		}
	}
}

// A client that sends its request headers too slowly is cut off, and
// the server keeps serving others.
func TestServeSlowClient(t *testing.T) {
	old := readHeaderTimeout
	readHeaderTimeout = 200 * time.Millisecond
	t.Cleanup(func() { readHeaderTimeout = old })
	s, err := NewServer(newFake().source(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	defer func() { cancel(); <-done }()

	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /api/summary HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(conn) // the server closes it (maybe after a 408)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Error("a client stalled in its headers still holds its connection after 5 s")
	}
	var sum Summary
	getJSON(t, "http://"+l.Addr().String()+"/api/summary", 200, &sum)
}

// A round cut short (the monitor stopping) keeps nothing: no errors
// shown for the containers it did not finish reading.
func TestRoundCutShort(t *testing.T) {
	f := newFake()
	src := f.source()
	ctx, cancel := context.WithCancel(context.Background())
	src.Stats = func(ctx context.Context, cs []runtime.Container) []StatsResult {
		cancel()
		out := make([]StatsResult, len(cs))
		for i := range out {
			out[i].Err = ctx.Err()
		}
		return out
	}
	s, err := NewServer(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SampleOnce(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("SampleOnce cut short: %v, want context.Canceled", err)
	}
	if e := s.readErr(idWeb); e != "" {
		t.Errorf("error kept from a round cut short: %q", e)
	}
}
