package cli

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/runtime"
	"github.com/berthsh/berth/pkg/store"
)

// containerInspect is docker's container inspect object (the parts berth
// has).
type containerInspect struct {
	ID              string                 `json:"Id"`
	Created         string                 `json:"Created"`
	Path            string                 `json:"Path"`
	Args            []string               `json:"Args"`
	State           inspectState           `json:"State"`
	Image           string                 `json:"Image"`
	ResolvConfPath  string                 `json:"ResolvConfPath"`
	HostnamePath    string                 `json:"HostnamePath"`
	HostsPath       string                 `json:"HostsPath"`
	LogPath         string                 `json:"LogPath"`
	Name            string                 `json:"Name"`
	RestartCount    int                    `json:"RestartCount"`
	Driver          string                 `json:"Driver"`
	Platform        string                 `json:"Platform"`
	HostConfig      inspectHostConfig      `json:"HostConfig"`
	Mounts          []inspectMount         `json:"Mounts"`
	Config          inspectConfig          `json:"Config"`
	NetworkSettings inspectNetworkSettings `json:"NetworkSettings"`
	SizeRw          *int64                 `json:"SizeRw,omitempty"`
}

type inspectState struct {
	Status     string          `json:"Status"`
	Running    bool            `json:"Running"`
	Paused     bool            `json:"Paused"`
	Restarting bool            `json:"Restarting"`
	OOMKilled  bool            `json:"OOMKilled"`
	Dead       bool            `json:"Dead"`
	Pid        int             `json:"Pid"`
	ExitCode   int             `json:"ExitCode"`
	Error      string          `json:"Error"`
	StartedAt  string          `json:"StartedAt"`
	FinishedAt string          `json:"FinishedAt"`
	Health     *runtime.Health `json:"Health,omitempty"`
}

type inspectPortBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

type inspectRestartPolicy struct {
	Name              string `json:"Name"`
	MaximumRetryCount int    `json:"MaximumRetryCount"`
}

type inspectUlimit struct {
	Name string `json:"Name"`
	Hard int64  `json:"Hard"`
	Soft int64  `json:"Soft"`
}

type inspectLogConfig struct {
	Type   string            `json:"Type"`
	Config map[string]string `json:"Config"`
}

type inspectHostConfig struct {
	Binds             []string                        `json:"Binds"`
	LogConfig         inspectLogConfig                `json:"LogConfig"`
	NetworkMode       string                          `json:"NetworkMode"`
	PortBindings      map[string][]inspectPortBinding `json:"PortBindings"`
	RestartPolicy     inspectRestartPolicy            `json:"RestartPolicy"`
	AutoRemove        bool                            `json:"AutoRemove"`
	CapAdd            []string                        `json:"CapAdd"`
	CapDrop           []string                        `json:"CapDrop"`
	DNS               []string                        `json:"Dns"`
	ExtraHosts        []string                        `json:"ExtraHosts"`
	GroupAdd          []string                        `json:"GroupAdd"`
	OomScoreAdj       int                             `json:"OomScoreAdj"`
	Privileged        bool                            `json:"Privileged"`
	PublishAllPorts   bool                            `json:"PublishAllPorts"`
	ReadonlyRootfs    bool                            `json:"ReadonlyRootfs"`
	SecurityOpt       []string                        `json:"SecurityOpt"`
	Tmpfs             map[string]string               `json:"Tmpfs,omitempty"`
	ShmSize           int64                           `json:"ShmSize"`
	Sysctls           map[string]string               `json:"Sysctls,omitempty"`
	CPUShares         int64                           `json:"CpuShares"`
	Memory            int64                           `json:"Memory"`
	NanoCPUs          int64                           `json:"NanoCpus"`
	CpusetCpus        string                          `json:"CpusetCpus"`
	CpusetMems        string                          `json:"CpusetMems"`
	MemoryReservation int64                           `json:"MemoryReservation"`
	MemorySwap        int64                           `json:"MemorySwap"`
	PidsLimit         *int64                          `json:"PidsLimit"`
	Ulimits           []inspectUlimit                 `json:"Ulimits"`
	Init              *bool                           `json:"Init"`
}

type inspectMount struct {
	Type        string `json:"Type"`
	Name        string `json:"Name,omitempty"`
	Source      string `json:"Source"`
	Destination string `json:"Destination"`
	Driver      string `json:"Driver,omitempty"`
	Mode        string `json:"Mode"`
	RW          bool   `json:"RW"`
	Propagation string `json:"Propagation"`
}

type inspectHealthcheck struct {
	Test          []string `json:"Test,omitempty"`
	Interval      int64    `json:"Interval,omitempty"`
	Timeout       int64    `json:"Timeout,omitempty"`
	StartPeriod   int64    `json:"StartPeriod,omitempty"`
	StartInterval int64    `json:"StartInterval,omitempty"`
	Retries       int      `json:"Retries,omitempty"`
}

type inspectConfig struct {
	Hostname     string              `json:"Hostname"`
	Domainname   string              `json:"Domainname"`
	User         string              `json:"User"`
	AttachStdin  bool                `json:"AttachStdin"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Tty          bool                `json:"Tty"`
	OpenStdin    bool                `json:"OpenStdin"`
	StdinOnce    bool                `json:"StdinOnce"`
	Env          []string            `json:"Env"`
	Cmd          []string            `json:"Cmd"`
	Healthcheck  *inspectHealthcheck `json:"Healthcheck,omitempty"`
	Image        string              `json:"Image"`
	WorkingDir   string              `json:"WorkingDir"`
	Entrypoint   []string            `json:"Entrypoint"`
	Labels       map[string]string   `json:"Labels"`
	StopSignal   string              `json:"StopSignal,omitempty"`
	StopTimeout  *int                `json:"StopTimeout,omitempty"`
}

type inspectNetworkDetail struct {
	Aliases     []string `json:"Aliases"`
	NetworkID   string   `json:"NetworkID"`
	Gateway     string   `json:"Gateway"`
	IPAddress   string   `json:"IPAddress"`
	IPPrefixLen int      `json:"IPPrefixLen"`
	MacAddress  string   `json:"MacAddress"`
}

type inspectNetworkSettings struct {
	Ports       map[string][]inspectPortBinding `json:"Ports"`
	SandboxKey  string                          `json:"SandboxKey"`
	Gateway     string                          `json:"Gateway"`
	IPAddress   string                          `json:"IPAddress"`
	IPPrefixLen int                             `json:"IPPrefixLen"`
	MacAddress  string                          `json:"MacAddress"`
	Networks    map[string]inspectNetworkDetail `json:"Networks"`
}

// dockerTime formats t as docker's inspect does (RFC 3339 with
// nanoseconds, UTC), and the zero time as "0001-01-01T00:00:00Z".
func dockerTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

func emptyIfNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// dockerHealth is State.Health as docker shows it: nil without a health
// check, an empty (not null) Log before the first probe.
func dockerHealth(h *runtime.Health) *runtime.Health {
	if h == nil {
		return nil
	}
	out := *h
	if out.Log == nil {
		out.Log = []runtime.HealthProbe{}
	}
	return &out
}

// newContainerInspect builds c's inspect object; r resolves the command
// and logPath is the log file.
func newContainerInspect(c runtime.Container, r *commandResolver, logPath string) containerInspect {
	cfg, st := c.Config, c.State
	p, args := r.command(c)
	co := cfg.Create
	ci := containerInspect{
		ID:           cfg.ID,
		Created:      dockerTime(cfg.Created),
		Path:         p,
		Args:         emptyIfNil(args),
		Image:        imageIDString(cfg.ImageID),
		LogPath:      logPath,
		Name:         "/" + containerName(c),
		RestartCount: st.RestartCount,
		Driver:       "overlay2",
		Platform:     "linux",
		State: inspectState{
			Status:     containerState(st),
			Running:    st.Running,
			Paused:     st.Paused,
			Restarting: st.Restarting,
			OOMKilled:  st.OOMKilled,
			Dead:       st.Dead,
			Pid:        st.Pid,
			ExitCode:   st.ExitCode,
			Error:      st.Error,
			StartedAt:  dockerTime(st.StartedAt),
			FinishedAt: dockerTime(st.FinishedAt),
			Health:     dockerHealth(st.Health),
		},
		Config: inspectConfig{
			Hostname:    co.Hostname,
			Domainname:  co.Domainname,
			User:        co.User,
			AttachStdin: cfg.Interactive,
			Tty:         co.Tty,
			OpenStdin:   cfg.Interactive,
			StdinOnce:   cfg.Interactive,
			Env:         emptyIfNil(co.Env),
			Cmd:         co.Cmd,
			Image:       cfg.Image,
			WorkingDir:  co.WorkingDir,
			Entrypoint:  co.Entrypoint,
			Labels:      cfg.Labels,
			StopSignal:  cfg.StopSignal,
			StopTimeout: cfg.StopTimeout,
		},
		HostConfig: inspectHostConfig{
			NetworkMode:       cfg.NetworkMode,
			PortBindings:      map[string][]inspectPortBinding{},
			RestartPolicy:     inspectRestartPolicy{Name: cmpOr(cfg.RestartPolicy.Name, runtime.RestartNo), MaximumRetryCount: cfg.RestartPolicy.MaximumRetryCount},
			AutoRemove:        cfg.AutoRemove,
			CapAdd:            co.CapAdd,
			CapDrop:           co.CapDrop,
			DNS:               emptyIfNil(cfg.DNS),
			ExtraHosts:        cfg.ExtraHosts,
			GroupAdd:          co.GroupAdd,
			OomScoreAdj:       co.OOMScoreAdj,
			Privileged:        co.Privileged,
			PublishAllPorts:   cfg.PublishAll,
			ReadonlyRootfs:    co.ReadOnly,
			ShmSize:           cmpOrInt(co.ShmSize, runtime.DefaultShmSize),
			Sysctls:           co.Sysctls,
			CPUShares:         co.CPUShares,
			Memory:            co.Memory,
			NanoCPUs:          int64(co.CPUs*1e9 + 0.5),
			CpusetCpus:        co.CpusetCpus,
			CpusetMems:        co.CpusetMems,
			MemoryReservation: co.MemoryReservation,
			MemorySwap:        co.MemorySwap,
			Ulimits:           []inspectUlimit{},
			LogConfig:         inspectLogConfig{Type: "json-file", Config: cfg.LogOpts},
		},
		NetworkSettings: inspectNetworkSettings{
			Ports:    map[string][]inspectPortBinding{},
			Networks: map[string]inspectNetworkDetail{},
		},
		Mounts: []inspectMount{},
	}
	if ci.HostConfig.LogConfig.Config == nil {
		ci.HostConfig.LogConfig.Config = map[string]string{}
	}
	if co.EntrypointSet && co.Entrypoint == nil {
		ci.Config.Entrypoint = []string{}
	}
	if st.Status == "" && !st.Running {
		ci.State.Status = runtime.StatusCreated
	}
	if co.PidsLimit != 0 {
		n := co.PidsLimit
		ci.HostConfig.PidsLimit = &n
	}
	if co.Init {
		t := true
		ci.HostConfig.Init = &t
	}
	if co.NoNewPrivileges {
		ci.HostConfig.SecurityOpt = []string{"no-new-privileges"}
	}
	for _, u := range co.Ulimits {
		ci.HostConfig.Ulimits = append(ci.HostConfig.Ulimits, inspectUlimit{Name: u.Name, Hard: u.Hard, Soft: u.Soft})
	}
	if hc := cfg.Healthcheck; hc != nil {
		ci.Config.Healthcheck = &inspectHealthcheck{Test: hc.Test, Interval: int64(hc.Interval), Timeout: int64(hc.Timeout),
			StartPeriod: int64(hc.StartPeriod), StartInterval: int64(hc.StartInterval), Retries: hc.Retries}
	}
	for _, p := range cfg.Ports {
		key := strconv.Itoa(int(p.ContainerPort)) + "/" + cmpOr(p.Proto, "tcp")
		hp := ""
		if p.HostPort != 0 {
			hp = strconv.Itoa(int(p.HostPort))
		}
		ci.HostConfig.PortBindings[key] = append(ci.HostConfig.PortBindings[key], inspectPortBinding{HostIP: p.HostIP, HostPort: hp})
		if ci.Config.ExposedPorts == nil {
			ci.Config.ExposedPorts = map[string]struct{}{}
		}
		ci.Config.ExposedPorts[key] = struct{}{}
	}
	for _, p := range st.Ports {
		key := strconv.Itoa(int(p.ContainerPort)) + "/" + cmpOr(p.Proto, "tcp")
		ci.NetworkSettings.Ports[key] = append(ci.NetworkSettings.Ports[key], inspectPortBinding{HostIP: cmpOr(p.HostIP, "0.0.0.0"), HostPort: strconv.Itoa(int(p.HostPort))})
	}
	for _, e := range st.Endpoints {
		ci.NetworkSettings.Networks[e.Network] = inspectNetworkDetail{Aliases: e.Aliases, Gateway: e.Gateway, IPAddress: e.IPAddress, IPPrefixLen: e.PrefixLen, MacAddress: e.MacAddress}
		if e.Network == "bridge" || ci.NetworkSettings.IPAddress == "" {
			ci.NetworkSettings.IPAddress, ci.NetworkSettings.Gateway = e.IPAddress, e.Gateway
			ci.NetworkSettings.IPPrefixLen, ci.NetworkSettings.MacAddress = e.PrefixLen, e.MacAddress
		}
	}
	if len(st.Endpoints) == 0 {
		for _, n := range containerNetworks(c) {
			ci.NetworkSettings.Networks[n] = inspectNetworkDetail{Aliases: cfg.Aliases}
		}
	}
	for _, m := range cfg.Mounts {
		im := inspectMount{Type: m.Type, Destination: m.Target, RW: !m.ReadOnly, Propagation: ""}
		if m.ReadOnly {
			im.Mode = "ro"
		}
		switch m.Type {
		case runtime.MountTypeBind:
			im.Source = m.Source
			im.Propagation = "rprivate"
			for _, o := range m.Options {
				if o != "norbind" {
					im.Propagation = o
				}
			}
			bind := m.Source + ":" + m.Target
			if m.ReadOnly {
				bind += ":ro"
			}
			ci.HostConfig.Binds = append(ci.HostConfig.Binds, bind)
		case runtime.MountTypeVolume:
			im.Name = m.Source
			if im.Name == "" {
				im.Name = runtime.AnonymousVolumeName(cfg.ID, m.Target)
			}
			im.Driver = "local"
		case runtime.MountTypeTmpfs:
			if ci.HostConfig.Tmpfs == nil {
				ci.HostConfig.Tmpfs = map[string]string{}
			}
			ci.HostConfig.Tmpfs[m.Target] = joinOpts(m.Options)
		}
		ci.Mounts = append(ci.Mounts, im)
	}
	sort.SliceStable(ci.Mounts, func(i, j int) bool { return ci.Mounts[i].Destination < ci.Mounts[j].Destination })
	return ci
}

func joinOpts(o []string) string {
	s := ""
	for i, x := range o {
		if i > 0 {
			s += ","
		}
		s += x
	}
	return s
}

func cmpOrInt(v, def int64) int64 {
	if v == 0 {
		return def
	}
	return v
}

// containerInspector returns the inspect object of a container; the
// manager is opened on first use.
func containerInspector(ctx context.Context, g *globals) func(string) (any, error) {
	var m *runtime.Manager
	var st *store.Store
	var r *commandResolver
	return func(name string) (any, error) {
		if m == nil {
			var err error
			if st, err = g.openStore(ctx); err == nil {
				m, err = g.openManagerIfAny(ctx, st)
			}
			if err != nil || m == nil {
				// Without containers, names are tried as other objects.
				return nil, fmt.Errorf("no containers (%v): %w", err, errdefs.ErrNotFound)
			}
			r = &commandResolver{ctx: ctx, st: st}
		}
		c, err := m.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		return newContainerInspect(c, r, m.LogPath(c)), nil
	}
}

func newContainerInspectCmd(g *globals) *cobra.Command {
	var format string
	var size bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Display detailed information on one or more containers",
		Args:  argsBetween(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ins := []inspector{{typ: "container", get: containerInspector(cmd.Context(), g)}}
			return runInspect(g, ins, args, format, func(name string) string { return "No such container: " + name })
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format the output with a Go template, or json")
	cmd.Flags().BoolVarP(&size, "size", "s", false, "display total file sizes (ignored)")
	return cmd
}
