package dockerfile

import (
	"maps"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// ConfigBuilder applies a stage's steps to an image config the way Docker
// does. Start it from the base's config (an empty Config for scratch).
type ConfigBuilder struct {
	Config v1.Config
	cmdSet bool // a CMD was set in this stage
}

// NewConfigBuilder starts from base. The base's ONBUILD triggers are
// dropped: they run in this stage (as Steps) and are not inherited.
func NewConfigBuilder(base v1.Config) *ConfigBuilder {
	c := base
	c.Env = slices.Clone(base.Env)
	c.Cmd = slices.Clone(base.Cmd)
	c.Entrypoint = slices.Clone(base.Entrypoint)
	c.Shell = slices.Clone(base.Shell)
	c.Labels = maps.Clone(base.Labels)
	c.Volumes = maps.Clone(base.Volumes)
	c.ExposedPorts = maps.Clone(base.ExposedPorts)
	c.OnBuild = nil
	if base.Healthcheck != nil {
		h := *base.Healthcheck
		h.Test = slices.Clone(h.Test)
		c.Healthcheck = &h
	}
	return &ConfigBuilder{Config: c}
}

// Apply records the step's effect on the config. ENTRYPOINT clears a CMD
// inherited from the base, but not one set earlier in the same stage.
// Steps that only change the file system (RUN, COPY, ADD) and ARG leave it
// alone; MAINTAINER sets the image author, which is not part of Config.
// HEALTHCHECK --start-interval has no field in v1.HealthConfig and is
// dropped.
func (b *ConfigBuilder) Apply(s Step) {
	c := &b.Config
	switch in := s.Instruction.(type) {
	case *instructions.EnvCommand:
		for _, kv := range in.Env {
			c.Env = setEnv(c.Env, kv.Key, kv.Value)
		}
	case *instructions.LabelCommand:
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		for _, kv := range in.Labels {
			c.Labels[kv.Key] = kv.Value
		}
	case *instructions.ExposeCommand:
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range in.Ports {
			c.ExposedPorts[p] = struct{}{}
		}
	case *instructions.VolumeCommand:
		if c.Volumes == nil {
			c.Volumes = map[string]struct{}{}
		}
		for _, v := range in.Volumes {
			c.Volumes[v] = struct{}{}
		}
	case *instructions.WorkdirCommand:
		c.WorkingDir = ResolveWorkdir(c.WorkingDir, in.Path)
	case *instructions.UserCommand:
		c.User = in.User
	case *instructions.StopSignalCommand:
		c.StopSignal = in.Signal
	case *instructions.ShellCommand:
		c.Shell = slices.Clone(in.Shell)
	case *instructions.HealthCheckCommand:
		h := in.Health
		c.Healthcheck = &v1.HealthConfig{
			Test:        slices.Clone(h.Test),
			Interval:    h.Interval,
			Timeout:     h.Timeout,
			StartPeriod: h.StartPeriod,
			Retries:     h.Retries,
		}
	case *instructions.CmdCommand:
		c.Cmd = b.withShell(in.ShellDependantCmdLine)
		c.ArgsEscaped = true
		b.cmdSet = true
	case *instructions.EntrypointCommand:
		c.Entrypoint = b.withShell(in.ShellDependantCmdLine)
		if !b.cmdSet {
			c.Cmd = nil
		}
	case *instructions.OnbuildCommand:
		c.OnBuild = append(c.OnBuild, in.Expression)
	}
}

func (b *ConfigBuilder) withShell(cl instructions.ShellDependantCmdLine) []string {
	args := slices.Clone(cl.CmdLine)
	if !cl.PrependShell {
		return args
	}
	sh := slices.Clone(b.Config.Shell)
	if len(sh) == 0 {
		sh = []string{"/bin/sh", "-c"}
	}
	return append(sh, strings.Join(args, " "))
}

// setEnv sets k in env, in place when it is there.
func setEnv(env []string, k, v string) []string {
	for i, kv := range env {
		if key, _, _ := strings.Cut(kv, "="); key == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}
