package monitor

import "time"

// Stats is one reading of a container's resource usage. Counters are
// cumulative since the container started; a rate needs two readings
// (see CPUPercent).
type Stats struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Image string `json:"image"`
	// Read is when the reading was taken.
	Read time.Time `json:"read"`

	// CPUUsage is the container's total CPU time; SystemUsage the host's
	// (from /proc/stat), both in nanoseconds; OnlineCPUs the CPUs the
	// host has online.
	CPUUsage    uint64 `json:"cpu_usage_ns"`
	SystemUsage uint64 `json:"system_usage_ns"`
	OnlineCPUs  int    `json:"online_cpus"`
	// CPUThrottled is the time the container was throttled by its quota
	// (ns); CPUQuota/CPUPeriod its CFS quota (-1/0 when unlimited).
	CPUThrottled uint64 `json:"cpu_throttled_ns"`
	CPUQuota     int64  `json:"cpu_quota_us"`
	CPUPeriod    uint64 `json:"cpu_period_us"`

	// MemoryUsage is docker's "MEM USAGE": usage minus inactive file
	// cache (the working set). MemoryRaw is the cgroup's raw usage,
	// MemoryLimit the limit (the host's memory when unlimited).
	MemoryUsage uint64 `json:"memory_usage"`
	MemoryRaw   uint64 `json:"memory_raw"`
	MemoryLimit uint64 `json:"memory_limit"`
	// OOMEvents counts OOM kills in the container's cgroup.
	OOMEvents uint64 `json:"oom_events"`

	// NetRx/NetTx are bytes received and sent on the container's
	// interfaces (zero for --network host/none).
	NetRx uint64 `json:"net_rx_bytes"`
	NetTx uint64 `json:"net_tx_bytes"`
	// BlockRead/BlockWrite are bytes read from and written to block
	// devices.
	BlockRead  uint64 `json:"block_read_bytes"`
	BlockWrite uint64 `json:"block_write_bytes"`
	// PIDs is the number of processes in the container.
	PIDs uint64 `json:"pids"`
}

// CPUPercent is the CPU use between two readings of one container as
// docker computes it: container CPU time over host CPU time, times the
// number of CPUs, so 100% is one core busy.
func CPUPercent(prev, cur Stats) float64 {
	if cur.CPUUsage < prev.CPUUsage || cur.SystemUsage <= prev.SystemUsage {
		return 0
	}
	cpus := cur.OnlineCPUs
	if cpus <= 0 {
		cpus = 1
	}
	return float64(cur.CPUUsage-prev.CPUUsage) / float64(cur.SystemUsage-prev.SystemUsage) * float64(cpus) * 100
}

// MemPercent is MemoryUsage over MemoryLimit, in percent.
func MemPercent(s Stats) float64 {
	if s.MemoryLimit == 0 {
		return 0
	}
	return float64(s.MemoryUsage) / float64(s.MemoryLimit) * 100
}
