package archive

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/berthsh/berth/pkg/errdefs"
)

// changeInstructions are the Dockerfile instructions "docker import
// --change" (and "docker commit --change") accept.
var changeInstructions = []string{"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "ONBUILD", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}

// defaultShell is what shell-form CMD and ENTRYPOINT run under.
var defaultShell = []string{"/bin/sh", "-c"}

// ApplyChanges applies Dockerfile instructions, one per string, to cfg as
// "docker import --change" does. Each is parsed with buildkit's Dockerfile
// parser; variables are expanded from the environment set so far.
func ApplyChanges(cfg *v1.Config, changes []string) error {
	cmdSet := false
	for _, change := range changes {
		if err := applyChange(cfg, change, &cmdSet); err != nil {
			return fmt.Errorf("--change %q: %w", change, err)
		}
	}
	return nil
}

func applyChange(cfg *v1.Config, change string, cmdSet *bool) error {
	if strings.TrimSpace(change) == "" {
		return fmt.Errorf("empty instruction: %w", errdefs.ErrInvalidArgument)
	}
	res, err := parser.Parse(strings.NewReader("FROM scratch\n" + change + "\n"))
	if err != nil {
		return fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
	}
	nodes := res.AST.Children
	if len(nodes) != 2 {
		return fmt.Errorf("want exactly one instruction, got %d: %w", len(nodes)-1, errdefs.ErrInvalidArgument)
	}
	node := nodes[1]
	name := strings.ToUpper(node.Value)
	supported := false
	for _, n := range changeInstructions {
		supported = supported || n == name
	}
	if !supported {
		return fmt.Errorf("%s is not supported here (supported: %s): %w", name, strings.Join(changeInstructions, ", "), errdefs.ErrInvalidArgument)
	}
	cmd, err := instructions.ParseCommand(node)
	if err != nil {
		return fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
	}
	if e, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		lex := shell.NewLex(res.EscapeToken)
		env := shell.EnvsFromSlice(cfg.Env)
		err := e.Expand(func(word string) (string, error) {
			s, _, err := lex.ProcessWord(word, env)
			return s, err
		})
		if err != nil {
			return fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
		}
	}
	switch c := cmd.(type) {
	case *instructions.CmdCommand:
		cfg.Cmd = commandLine(cfg, c.ShellDependantCmdLine)
		*cmdSet = true
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = commandLine(cfg, c.ShellDependantCmdLine)
		if !*cmdSet {
			cfg.Cmd = nil // as in a Dockerfile: ENTRYPOINT resets an inherited CMD
		}
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			setEnv(cfg, kv.Key, kv.Value)
		}
	case *instructions.ExposeCommand:
		for _, p := range c.Ports {
			ports, err := parsePorts(p)
			if err != nil {
				return err
			}
			if cfg.ExposedPorts == nil {
				cfg.ExposedPorts = map[string]struct{}{}
			}
			for _, port := range ports {
				cfg.ExposedPorts[port] = struct{}{}
			}
		}
	case *instructions.LabelCommand:
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			cfg.Labels[kv.Key] = kv.Value
		}
	case *instructions.OnbuildCommand:
		cfg.OnBuild = append(cfg.OnBuild, strings.TrimSpace(c.Expression))
	case *instructions.UserCommand:
		cfg.User = c.User
	case *instructions.VolumeCommand:
		for _, v := range c.Volumes {
			v = strings.TrimSpace(v)
			if v == "" {
				return fmt.Errorf("VOLUME with an empty path: %w", errdefs.ErrInvalidArgument)
			}
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			cfg.Volumes[v] = struct{}{}
		}
	case *instructions.WorkdirCommand:
		p := c.Path
		if !path.IsAbs(p) {
			p = path.Join("/", cfg.WorkingDir, p)
		}
		cfg.WorkingDir = path.Clean(p)
	case *instructions.StopSignalCommand:
		cfg.StopSignal = c.Signal
	case *instructions.HealthCheckCommand:
		h := c.Health
		if h.StartInterval != 0 {
			return fmt.Errorf("HEALTHCHECK --start-interval is not supported: %w", errdefs.ErrNotImplemented)
		}
		cfg.Healthcheck = &v1.HealthConfig{
			Test:        h.Test,
			Interval:    h.Interval,
			Timeout:     h.Timeout,
			StartPeriod: h.StartPeriod,
			Retries:     h.Retries,
		}
	default:
		return fmt.Errorf("%s is not supported here: %w", name, errdefs.ErrInvalidArgument)
	}
	return nil
}

// commandLine is the exec form of a CMD or ENTRYPOINT: JSON form as is,
// shell form run by the image's shell (/bin/sh -c).
func commandLine(cfg *v1.Config, c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		return append([]string{}, c.CmdLine...)
	}
	sh := defaultShell
	if len(cfg.Shell) > 0 {
		sh = cfg.Shell
	}
	return append(append([]string{}, sh...), strings.Join(c.CmdLine, " "))
}

func setEnv(cfg *v1.Config, key, value string) {
	for i, e := range cfg.Env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			cfg.Env[i] = key + "=" + value
			return
		}
	}
	cfg.Env = append(cfg.Env, key+"="+value)
}

// parsePorts parses an EXPOSE argument: PORT, PORT/PROTO or a range
// START-END[/PROTO], into "PORT/PROTO" keys (tcp by default).
func parsePorts(spec string) ([]string, error) {
	bad := func(why string) error {
		return fmt.Errorf("EXPOSE %q: %s: %w", spec, why, errdefs.ErrInvalidArgument)
	}
	portPart, proto, hasProto := strings.Cut(spec, "/")
	proto = strings.ToLower(proto)
	if !hasProto {
		proto = "tcp"
	}
	switch proto {
	case "tcp", "udp", "sctp":
	default:
		return nil, bad("protocol must be tcp, udp or sctp")
	}
	startS, endS, isRange := strings.Cut(portPart, "-")
	start, err := strconv.ParseUint(startS, 10, 16)
	if err != nil || start == 0 {
		return nil, bad("invalid port")
	}
	end := start
	if isRange {
		end, err = strconv.ParseUint(endS, 10, 16)
		if err != nil || end < start {
			return nil, bad("invalid port range")
		}
	}
	out := make([]string, 0, end-start+1)
	for p := start; p <= end; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	return out, nil
}
