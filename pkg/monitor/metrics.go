package monitor

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/runtime"
)

// scrapeTimeout bounds one /metrics collection (Collect has no context).
const scrapeTimeout = 10 * time.Second

// baseLabels are the labels cAdvisor puts on every container series:
// id is the cgroup path ("/berth/<id>"), name the container's name and
// image the image reference it was created from.
var baseLabels = []string{"id", "name", "image"}

// metric is one of the container series the collector exports. value
// returns the series' values for one container (nil for none); each
// value's labels follow desc's extra labels.
type metric struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(c runtime.Container, s Stats) []labeled
}

type labeled struct {
	v      float64
	labels []string
}

func one(v float64, labels ...string) []labeled { return []labeled{{v: v, labels: labels}} }

func newMetric(name, help string, typ prometheus.ValueType, extra []string, value func(runtime.Container, Stats) []labeled) metric {
	return metric{
		desc:  prometheus.NewDesc(name, help, append(append([]string{}, baseLabels...), extra...), nil),
		typ:   typ,
		value: value,
	}
}

// ns2s converts nanoseconds to seconds.
func ns2s(ns uint64) float64 { return float64(ns) / 1e9 }

// containerMetrics are the exported series, with cAdvisor's names, help,
// types, units and labels, so dashboards written for cAdvisor work.
var containerMetrics = []metric{
	newMetric("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.",
		prometheus.CounterValue, []string{"cpu"},
		func(_ runtime.Container, s Stats) []labeled { return one(ns2s(s.CPUUsage), "total") }),
	newMetric("container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.",
		prometheus.CounterValue, nil,
		func(_ runtime.Container, s Stats) []labeled { return one(ns2s(s.CPUThrottled)) }),
	newMetric("container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed",
		prometheus.GaugeValue, nil,
		func(_ runtime.Container, s Stats) []labeled { return one(float64(s.MemoryRaw)) }),
	newMetric("container_memory_working_set_bytes", "Current working set in bytes.",
		prometheus.GaugeValue, nil,
		func(_ runtime.Container, s Stats) []labeled { return one(float64(s.MemoryUsage)) }),
	// cAdvisor reports 0 for no limit.
	newMetric("container_spec_memory_limit_bytes", "Memory limit for the container.",
		prometheus.GaugeValue, nil,
		func(c runtime.Container, _ Stats) []labeled { return one(float64(max(c.Config.Create.Memory, 0))) }),
	// cAdvisor leaves the quota out when there is none.
	newMetric("container_spec_cpu_quota", "CPU quota of the container.",
		prometheus.GaugeValue, nil,
		func(_ runtime.Container, s Stats) []labeled {
			if s.CPUQuota <= 0 {
				return nil
			}
			return one(float64(s.CPUQuota))
		}),
	newMetric("container_network_receive_bytes_total", "Cumulative count of bytes received",
		prometheus.CounterValue, []string{"interface"},
		func(c runtime.Container, s Stats) []labeled { return netValues(c, s.NetRx) }),
	newMetric("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted",
		prometheus.CounterValue, []string{"interface"},
		func(c runtime.Container, s Stats) []labeled { return netValues(c, s.NetTx) }),
	newMetric("container_fs_reads_bytes_total", "Cumulative count of bytes read",
		prometheus.CounterValue, nil,
		func(_ runtime.Container, s Stats) []labeled { return one(float64(s.BlockRead)) }),
	newMetric("container_fs_writes_bytes_total", "Cumulative count of bytes written",
		prometheus.CounterValue, nil,
		func(_ runtime.Container, s Stats) []labeled { return one(float64(s.BlockWrite)) }),
	newMetric("container_processes", "Number of processes running inside the container.",
		prometheus.GaugeValue, nil,
		func(_ runtime.Container, s Stats) []labeled { return one(float64(s.PIDs)) }),
	newMetric("container_oom_events_total", "Count of out of memory events observed for the container",
		prometheus.CounterValue, nil,
		func(_ runtime.Container, s Stats) []labeled { return one(float64(s.OOMEvents)) }),
	newMetric("container_start_time_seconds", "Start time of the container since unix epoch in seconds.",
		prometheus.GaugeValue, nil,
		func(c runtime.Container, _ Stats) []labeled {
			if c.State.StartedAt.IsZero() {
				return nil
			}
			return one(float64(c.State.StartedAt.UnixNano()) / 1e9)
		}),
	newMetric("container_health_state", "Health of the container: 1 healthy, 0 unhealthy, -1 starting or no health check.",
		prometheus.GaugeValue, nil,
		func(c runtime.Container, _ Stats) []labeled { return one(healthState(c)) }),
}

// netValues labels a network counter. The reading sums the container's
// interfaces; berth names the first one eth0, and containers with no
// network of their own (host, none) get no series, like cAdvisor.
func netValues(c runtime.Container, v uint64) []labeled {
	switch c.Config.NetworkMode {
	case "host", "none":
		return nil
	}
	return one(float64(v), "eth0")
}

var scrapeErrorDesc = prometheus.NewDesc("container_scrape_error",
	"1 if there was an error while getting container metrics, 0 otherwise", nil, nil)

// collector is the prometheus.Collector behind /metrics: each scrape
// lists the containers and reads the running ones then and there, so no
// value outlives the container it describes.
type collector struct{ s *Server }

func newCollector(s *Server) *collector { return &collector{s: s} }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range containerMetrics {
		ch <- m.desc
	}
	ch <- scrapeErrorDesc
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	failed := 0.0
	// A round in progress when the scrape came is shared; else a new one.
	r, err := c.s.round(ctx, c.s.now())
	if err != nil {
		slog.Debug("monitor scrape", "err", err)
		ch <- prometheus.MustNewConstMetric(scrapeErrorDesc, prometheus.GaugeValue, 1)
		return
	}
	for _, r := range r.rs {
		if r.err != nil {
			// A container that stopped since List is no error; anything
			// else is reported through container_scrape_error.
			if !errors.Is(r.err, errdefs.ErrNotFound) {
				failed = 1
			}
			slog.Debug("monitor scrape", "err", r.err)
			continue
		}
		base := []string{cgroupID(r.c), displayName(r.c), r.c.Config.Image}
		for _, m := range containerMetrics {
			for _, v := range m.value(r.c, r.stats) {
				lv := append(append(make([]string, 0, len(base)+len(v.labels)), base...), v.labels...)
				cm, err := prometheus.NewConstMetric(m.desc, m.typ, v.v, lv...)
				if err != nil {
					ch <- prometheus.NewInvalidMetric(m.desc, err)
					continue
				}
				ch <- cm
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(scrapeErrorDesc, prometheus.GaugeValue, failed)
}
