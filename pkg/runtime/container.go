package runtime

import (
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berthsh/berth/pkg/runtime/logs"
)

// Container states, as docker names them.
const (
	StatusCreated    = "created"
	StatusRunning    = "running"
	StatusPaused     = "paused"
	StatusRestarting = "restarting"
	StatusExited     = "exited"
	StatusDead       = "dead"
	StatusRemoving   = "removing"
)

// Restart policy names (docker's --restart).
const (
	RestartNo            = "no"
	RestartAlways        = "always"
	RestartOnFailure     = "on-failure"
	RestartUnlessStopped = "unless-stopped"
)

// RestartPolicy is docker's --restart value.
type RestartPolicy struct {
	Name              string `json:"Name"`
	MaximumRetryCount int    `json:"MaximumRetryCount"`
}

// PortSpec is one requested port publication (-p), before host ports are
// chosen: HostPort 0 means "any free port".
type PortSpec struct {
	HostIP        string `json:"HostIp"`
	HostPort      uint16 `json:"HostPort"`
	ContainerPort uint16 `json:"ContainerPort"`
	Proto         string `json:"Proto"` // "tcp" or "udp"
}

// MountSpec is one requested mount (-v, --mount, --tmpfs), before named
// volumes are resolved to host paths.
type MountSpec struct {
	// Type is "bind", "volume" or "tmpfs".
	Type string `json:"Type"`
	// Source is a host path (bind), a volume name (volume; empty for an
	// anonymous volume) or empty (tmpfs).
	Source   string   `json:"Source"`
	Target   string   `json:"Target"`
	ReadOnly bool     `json:"ReadOnly"`
	Options  []string `json:"Options,omitempty"`
}

// HealthConfig is a container's health check (docker's HEALTHCHECK and
// --health-* flags).
type HealthConfig struct {
	Test          []string      `json:"Test,omitempty"`
	Interval      time.Duration `json:"Interval,omitempty"`
	Timeout       time.Duration `json:"Timeout,omitempty"`
	StartPeriod   time.Duration `json:"StartPeriod,omitempty"`
	StartInterval time.Duration `json:"StartInterval,omitempty"`
	Retries       int           `json:"Retries,omitempty"`
	// OnFailure is berth's --health-on-failure: "none", "restart", "stop"
	// or "kill".
	OnFailure string `json:"OnFailure,omitempty"`
}

// ContainerConfig is what a container was created with. It is written once
// at create (config.json in the container directory) and changed only by
// rename.
type ContainerConfig struct {
	ID      string    `json:"Id"`
	Name    string    `json:"Name"`
	Created time.Time `json:"Created"`

	// Image is the image reference as the user gave it; ImageID is its
	// config digest and ImageDigest its manifest digest at create time.
	Image       string  `json:"Image"`
	ImageID     v1.Hash `json:"ImageID"`
	ImageDigest v1.Hash `json:"ImageDigest"`

	// Create holds the options the OCI spec is made from. Its Mounts,
	// NetNSPath, Hosts/ResolvConf/HostnamePath and CgroupsPath are filled
	// at start from Mounts and the network settings below.
	Create CreateOptions `json:"Create"`
	// Mounts are the requested mounts, resolved at each start.
	Mounts []MountSpec `json:"Mounts,omitempty"`

	// NetworkMode is "bridge" (default), "host", "none" or a network name.
	NetworkMode string `json:"NetworkMode"`
	// Networks are the networks to join (the first is NetworkMode's).
	Networks []string `json:"Networks,omitempty"`
	// Aliases are extra names on user networks (--network-alias).
	Aliases []string `json:"Aliases,omitempty"`
	// Ports are the requested publications; PublishAll (-P) publishes
	// every exposed port on a free host port.
	Ports      []PortSpec `json:"Ports,omitempty"`
	PublishAll bool       `json:"PublishAll,omitempty"`
	// ExtraHosts ("name:ip", --add-host) and DNS servers (--dns).
	ExtraHosts []string `json:"ExtraHosts,omitempty"`
	DNS        []string `json:"Dns,omitempty"`

	RestartPolicy RestartPolicy `json:"RestartPolicy"`
	// AutoRemove (--rm) removes the container when it exits.
	AutoRemove bool `json:"AutoRemove"`
	// Log configures the json-file log.
	Log logs.Options `json:"-"`
	// LogOpts are the --log-opt values Log was parsed from.
	LogOpts map[string]string `json:"LogOpts,omitempty"`

	Labels map[string]string `json:"Labels,omitempty"`
	// StopSignal overrides the image's STOPSIGNAL ("SIGTERM" by default).
	StopSignal string `json:"StopSignal,omitempty"`
	// StopTimeout overrides the default 10 s grace period of stop.
	StopTimeout *int `json:"StopTimeout,omitempty"`

	// Healthcheck overrides the image's (nil: use the image's; Test
	// ["NONE"]: disabled).
	Healthcheck *HealthConfig `json:"Healthcheck,omitempty"`

	// Interactive (-i) keeps stdin open for attach.
	Interactive bool `json:"Interactive,omitempty"`
}

// Health is a container's health state, docker-shaped.
type Health struct {
	Status        string        `json:"Status"` // "starting", "healthy", "unhealthy"
	FailingStreak int           `json:"FailingStreak"`
	Log           []HealthProbe `json:"Log"`
}

// HealthProbe is one health check run.
type HealthProbe struct {
	Start    time.Time `json:"Start"`
	End      time.Time `json:"End"`
	ExitCode int       `json:"ExitCode"`
	Output   string    `json:"Output"`
}

// PortBinding is a published port as actually bound.
type PortBinding struct {
	HostIP        string `json:"HostIp"`
	HostPort      uint16 `json:"HostPort"`
	ContainerPort uint16 `json:"ContainerPort"`
	Proto         string `json:"Proto"`
}

// EndpointState is the container's address on one network.
type EndpointState struct {
	Network    string   `json:"Network"`
	IPAddress  string   `json:"IPAddress"`
	PrefixLen  int      `json:"IPPrefixLen"`
	Gateway    string   `json:"Gateway"`
	MacAddress string   `json:"MacAddress"`
	Aliases    []string `json:"Aliases,omitempty"`
}

// State is a container's changing state (state.json in the container
// directory), written atomically under the container lock.
type State struct {
	Status     string    `json:"Status"`
	Running    bool      `json:"Running"`
	Paused     bool      `json:"Paused"`
	Restarting bool      `json:"Restarting"`
	OOMKilled  bool      `json:"OOMKilled"`
	Dead       bool      `json:"Dead"`
	Pid        int       `json:"Pid"`
	ExitCode   int       `json:"ExitCode"`
	Error      string    `json:"Error"`
	StartedAt  time.Time `json:"StartedAt"`
	FinishedAt time.Time `json:"FinishedAt"`

	RestartCount int `json:"RestartCount"`
	// StopRequested is set by stop and kill so that restart policies do
	// not bring the container back (and unless-stopped stays stopped).
	StopRequested bool `json:"StopRequested"`
	// SupervisorPid is the pid of the container's supervisor while it runs.
	SupervisorPid int `json:"SupervisorPid"`

	Ports     []PortBinding   `json:"Ports,omitempty"`
	Endpoints []EndpointState `json:"Endpoints,omitempty"`
	Health    *Health         `json:"Health,omitempty"`
}
