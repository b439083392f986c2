package monitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/runtime"
)

// ContainerInfo is one container as GET /api/containers shows it.
type ContainerInfo struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Image string `json:"image"`
	// State is docker's status word: created, running, paused,
	// restarting, exited or dead.
	State string `json:"state"`
	// Health is healthy, unhealthy, starting or none.
	Health  string     `json:"health"`
	Ports   []Port     `json:"ports"`
	Created time.Time  `json:"created"`
	Started *time.Time `json:"started,omitempty"`
	// Latest is the newest history sample (rates), Stats the reading it
	// came from; both are absent until the sampler has two readings.
	Latest *Sample `json:"latest,omitempty"`
	Stats  *Stats  `json:"stats,omitempty"`
	// Error is why the running container's last reading failed (an
	// unreadable cgroup file, say); absent when it worked.
	Error string `json:"error,omitempty"`
}

// Port is a published port.
type Port struct {
	HostIP        string `json:"host_ip"`
	HostPort      uint16 `json:"host_port"`
	ContainerPort uint16 `json:"container_port"`
	Proto         string `json:"proto"`
}

// Summary is GET /api/summary: totals over the running containers from
// their latest samples.
type Summary struct {
	Time       time.Time `json:"time"`
	Containers int       `json:"containers"`
	Running    int       `json:"running"`
	Healthy    int       `json:"healthy"`
	Unhealthy  int       `json:"unhealthy"`
	CPUPercent float64   `json:"cpu"`
	MemoryUsed uint64    `json:"mem"`
	NetRx      float64   `json:"rx_bps"`
	NetTx      float64   `json:"tx_bps"`
	// Interval is the sampling interval in milliseconds.
	Interval int64 `json:"interval_ms"`
}

// LogLine is one line of a container's log.
type LogLine struct {
	Time   time.Time `json:"time"`
	Stream string    `json:"stream"`
	Line   string    `json:"line"`
}

const (
	defaultLogTail = 100
	maxLogTail     = 1000
)

func (s *Server) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/containers", s.apiContainers)
	mux.HandleFunc("GET /api/containers/{id}", s.apiContainer)
	mux.HandleFunc("GET /api/containers/{id}/history", s.apiHistory)
	mux.HandleFunc("GET /api/containers/{id}/logs", s.apiLogs)
	mux.HandleFunc("GET /api/history", s.apiAllHistory)
	mux.HandleFunc("GET /api/summary", s.apiSummary)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("no API endpoint %s %s", r.Method, r.URL.Path))
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v) // the client went away
}

func writeError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

func (s *Server) info(c runtime.Container) ContainerInfo {
	ci := ContainerInfo{
		ID:      c.Config.ID,
		Name:    displayName(c),
		Image:   c.Config.Image,
		State:   c.State.Status,
		Health:  healthStatus(c),
		Ports:   []Port{},
		Created: c.Config.Created,
	}
	if ci.State == "" {
		ci.State = "created"
	}
	if !c.State.StartedAt.IsZero() {
		t := c.State.StartedAt
		ci.Started = &t
	}
	for _, p := range c.State.Ports {
		ci.Ports = append(ci.Ports, Port{HostIP: p.HostIP, HostPort: p.HostPort, ContainerPort: p.ContainerPort, Proto: p.Proto})
	}
	if c.State.Running || c.State.Paused {
		if smp, st, ok := s.hist.Latest(c.Config.ID); ok {
			ci.Latest, ci.Stats = &smp, &st
		}
		ci.Error = s.readErr(c.Config.ID)
	}
	return ci
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) ([]runtime.Container, bool) {
	cs, err := s.src.List(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("list containers: %w", err))
		return nil, false
	}
	return cs, true
}

// findContainer resolves a full ID, a name or a unique ID prefix.
func findContainer(cs []runtime.Container, ref string) (runtime.Container, error) {
	var match []runtime.Container
	for _, c := range cs {
		switch {
		case c.Config.ID == ref || displayName(c) == ref:
			return c, nil
		case strings.HasPrefix(c.Config.ID, ref):
			match = append(match, c)
		}
	}
	if len(match) == 1 && ref != "" {
		return match[0], nil
	}
	if len(match) > 1 {
		return runtime.Container{}, fmt.Errorf("container ID prefix %q matches %d containers: %w", ref, len(match), errdefs.ErrInvalidArgument)
	}
	return runtime.Container{}, fmt.Errorf("no such container: %s: %w", ref, errdefs.ErrNotFound)
}

func (s *Server) container(w http.ResponseWriter, r *http.Request) (runtime.Container, bool) {
	cs, ok := s.list(w, r)
	if !ok {
		return runtime.Container{}, false
	}
	c, err := findContainer(cs, r.PathValue("id"))
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, errdefs.ErrNotFound) {
			code = http.StatusNotFound
		}
		writeError(w, code, err)
		return runtime.Container{}, false
	}
	return c, true
}

func (s *Server) apiContainers(w http.ResponseWriter, r *http.Request) {
	cs, ok := s.list(w, r)
	if !ok {
		return
	}
	out := make([]ContainerInfo, 0, len(cs))
	for _, c := range cs {
		out = append(out, s.info(c))
	}
	writeJSON(w, out)
}

func (s *Server) apiContainer(w http.ResponseWriter, r *http.Request) {
	if c, ok := s.container(w, r); ok {
		writeJSON(w, s.info(c))
	}
}

// sinceParam reads ?since= (Unix milliseconds; 0 when absent).
func sinceParam(w http.ResponseWriter, r *http.Request) (int64, bool) {
	v := r.URL.Query().Get("since")
	if v == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		writeError(w, http.StatusBadRequest, fmt.Errorf("since=%q: want Unix milliseconds", v))
		return 0, false
	}
	return n, true
}

// HistoryResponse is GET /api/containers/{id}/history.
type HistoryResponse struct {
	ID      string   `json:"id"`
	Samples []Sample `json:"samples"`
}

func (s *Server) apiHistory(w http.ResponseWriter, r *http.Request) {
	since, ok := sinceParam(w, r)
	if !ok {
		return
	}
	c, ok := s.container(w, r)
	if !ok {
		return
	}
	writeJSON(w, HistoryResponse{ID: c.Config.ID, Samples: s.hist.Samples(c.Config.ID, since)})
}

// apiAllHistory is GET /api/history: every listed container's samples
// after ?since=, keyed by ID, so the dashboard polls once for all.
func (s *Server) apiAllHistory(w http.ResponseWriter, r *http.Request) {
	since, ok := sinceParam(w, r)
	if !ok {
		return
	}
	cs, ok := s.list(w, r)
	if !ok {
		return
	}
	out := make(map[string][]Sample, len(cs))
	for _, c := range cs {
		out[c.Config.ID] = s.hist.Samples(c.Config.ID, since)
	}
	writeJSON(w, out)
}

// LogsResponse is GET /api/containers/{id}/logs.
type LogsResponse struct {
	ID    string    `json:"id"`
	Lines []LogLine `json:"lines"`
}

func (s *Server) apiLogs(w http.ResponseWriter, r *http.Request) {
	tail := defaultLogTail
	if v := r.URL.Query().Get("tail"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("tail=%q: want a number of lines", v))
			return
		}
		tail = min(n, maxLogTail)
	}
	c, ok := s.container(w, r)
	if !ok {
		return
	}
	resp := LogsResponse{ID: c.Config.ID, Lines: []LogLine{}}
	if s.src.Logs != nil && tail > 0 {
		es, err := s.src.Logs(r.Context(), c, tail)
		if err != nil {
			writeError(w, http.StatusInternalServerError, fmt.Errorf("logs of %s: %w", displayName(c), err))
			return
		}
		for _, e := range es {
			resp.Lines = append(resp.Lines, LogLine{Time: e.Time, Stream: e.Stream, Line: strings.TrimSuffix(string(e.Line), "\n")})
		}
	}
	writeJSON(w, resp)
}

func (s *Server) apiSummary(w http.ResponseWriter, r *http.Request) {
	cs, ok := s.list(w, r)
	if !ok {
		return
	}
	sum := Summary{Time: s.now().UTC(), Containers: len(cs), Interval: s.opts.Interval.Milliseconds()}
	for _, c := range cs {
		if !c.State.Running && !c.State.Paused {
			continue
		}
		sum.Running++
		switch healthStatus(c) {
		case "healthy":
			sum.Healthy++
		case "unhealthy":
			sum.Unhealthy++
		}
		if smp, _, ok := s.hist.Latest(c.Config.ID); ok {
			sum.CPUPercent += smp.CPUPercent
			sum.MemoryUsed += smp.MemoryUsage
			sum.NetRx += smp.NetRx
			sum.NetTx += smp.NetTx
		}
	}
	writeJSON(w, sum)
}
