package dockerfile

import (
	"fmt"
	"path"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// Step is one instruction of a planned stage, expanded.
type Step struct {
	// Instruction is the typed instruction with variables expanded:
	// *instructions.RunCommand, *instructions.CopyCommand, ... ARG values
	// are the values they resolved to; EXPOSE ports are "port/proto".
	Instruction instructions.Command
	// Original is the instruction's source text.
	Original string
	// Line is the instruction's first line (for an ONBUILD trigger, the
	// FROM line of the stage that runs it).
	Line int
	// OnBuild marks a trigger inherited from the base's ONBUILD.
	OnBuild bool
	// From is COPY --from's source (SourceContext without --from, and
	// for every other instruction).
	From Source
	// MountSources are the sources of RUN's --mount flags, one per
	// Mounts() entry.
	MountSources []Source
	// Env is the image environment ("K=V") after the step.
	Env []string
	// BuildEnv is the environment of the step: Env plus ARG values. RUN
	// steps run with it (plus BuildPlan.ProxyEnv).
	BuildEnv []string
	// Args are the ARGs in scope after the step, with their values.
	Args []instructions.KeyValuePairOptional
	// Shell is the shell in effect after the step.
	Shell []string
	// Workdir is the working directory after the step.
	Workdir string
}

func commandSource(c instructions.Command) string {
	if s, ok := c.(fmt.Stringer); ok {
		return s.String()
	}
	return c.Name()
}

// Mounts are a RUN step's --mount flags, expanded; nil for other steps.
func (s *Step) Mounts() []*instructions.Mount {
	if c, ok := s.Instruction.(*instructions.RunCommand); ok {
		return instructions.GetMounts(c)
	}
	return nil
}

// Network is a RUN step's --network ("default", "none" or "host"); "" for
// other steps.
func (s *Step) Network() string {
	if c, ok := s.Instruction.(*instructions.RunCommand); ok {
		return instructions.GetNetwork(c)
	}
	return ""
}

// Security is a RUN step's --security ("sandbox" or "insecure"); "" for
// other steps.
func (s *Step) Security() string {
	if c, ok := s.Instruction.(*instructions.RunCommand); ok {
		return instructions.GetSecurity(c)
	}
	return ""
}

// InlineFile is a heredoc a RUN step runs as a script.
type InlineFile struct {
	Dir  string // where to mount it read-only: /dev/pipes/
	Name string
	Data string
}

// RunArgs is the argv of a RUN step, as BuildKit builds it: shell form
// gets the shell in front; a single heredoc runs its body (or, when the
// body starts with "#!", runs the body as a script file, returned as
// script); several heredocs are handed to the shell as written. ok is
// false for other steps.
func (s *Step) RunArgs() (args []string, script *InlineFile, ok bool) {
	c, ok := s.Instruction.(*instructions.RunCommand)
	if !ok {
		return nil, nil, false
	}
	args = c.CmdLine
	if len(c.Files) > 0 && len(args) == 1 && c.PrependShell {
		if h := parser.MustParseHeredoc(args[0]); h != nil {
			data := c.Files[0].Data
			if c.Files[0].Chomp {
				data = parser.ChompHeredocContent(data)
			}
			if strings.HasPrefix(data, "#!") {
				script = &InlineFile{Dir: "/dev/pipes/", Name: c.Files[0].Name, Data: data}
				args = []string{path.Join(script.Dir, script.Name)}
			} else {
				args = []string{data}
			}
		} else {
			var b strings.Builder
			b.WriteString(args[0])
			for _, file := range c.Files {
				b.WriteByte('\n')
				b.WriteString(file.Data)
				b.WriteString(file.Name)
			}
			args = []string{b.String()}
		}
	}
	if c.PrependShell {
		args = append(s.shellBefore(), strings.Join(args, " "))
	}
	return args, script, true
}

// shellBefore is the shell a shell-form command of this step uses. A SHELL
// step changes it only for later steps, and is not shell form itself.
func (s *Step) shellBefore() []string {
	if len(s.Shell) == 0 {
		return []string{"/bin/sh", "-c"}
	}
	return append([]string(nil), s.Shell...)
}

// CommandArgs is the CMD or ENTRYPOINT value a CMD/ENTRYPOINT step sets in
// the image config (shell form gets the shell in front); ok is false for
// other steps.
func (s *Step) CommandArgs() (args []string, ok bool) {
	var cl instructions.ShellDependantCmdLine
	switch c := s.Instruction.(type) {
	case *instructions.CmdCommand:
		cl = c.ShellDependantCmdLine
	case *instructions.EntrypointCommand:
		cl = c.ShellDependantCmdLine
	default:
		return nil, false
	}
	args = cl.CmdLine
	if cl.PrependShell {
		args = append(s.shellBefore(), strings.Join(args, " "))
	}
	return args, true
}

// EmptyLayer reports whether the step only changes the image config (it
// adds no layer). RUN, COPY and ADD add a layer, and so does WORKDIR
// unless it is "/".
func (s *Step) EmptyLayer() bool {
	switch s.Instruction.(type) {
	case *instructions.RunCommand, *instructions.CopyCommand, *instructions.AddCommand:
		return false
	case *instructions.WorkdirCommand:
		return s.Workdir == "/"
	}
	return true
}

// CreatedBy is the image history "created_by" text BuildKit writes for
// the step, e.g. "RUN /bin/sh -c pip install x # buildkit",
// "COPY app.py . # buildkit", "WORKDIR /app", "ENV A=b" or
// `CMD ["python3" "app.py"]`. It is "" for ONBUILD, which adds no
// history entry.
func CreatedBy(s Step) string {
	switch c := s.Instruction.(type) {
	case *instructions.RunCommand:
		args, _, _ := s.RunArgs()
		return "RUN " + runCommandString(args, s.Args, s.BuildEnv) + " # buildkit"
	case *instructions.CopyCommand:
		return copyHistory("COPY", c.Parents, c.Chown, c.Chmod, c.SourcesAndDest)
	case *instructions.AddCommand:
		return copyHistory("ADD", false, c.Chown, c.Chmod, c.SourcesAndDest)
	case *instructions.WorkdirCommand:
		return "WORKDIR " + s.Workdir
	case *instructions.EnvCommand:
		var b strings.Builder
		b.WriteString("ENV")
		for _, kv := range c.Env {
			b.WriteString(" " + kv.String())
		}
		return b.String()
	case *instructions.LabelCommand:
		var b strings.Builder
		b.WriteString("LABEL")
		for _, kv := range c.Labels {
			b.WriteString(" " + kv.String())
		}
		return b.String()
	case *instructions.ArgCommand:
		parts := make([]string, 0, len(c.Args))
		for _, a := range c.Args {
			p := a.Key
			if a.Value != nil {
				p += "=" + *a.Value
			}
			parts = append(parts, p)
		}
		return "ARG " + strings.Join(parts, " ")
	case *instructions.CmdCommand:
		args, _ := s.CommandArgs()
		return fmt.Sprintf("CMD %q", args)
	case *instructions.EntrypointCommand:
		args, _ := s.CommandArgs()
		return fmt.Sprintf("ENTRYPOINT %q", args)
	case *instructions.HealthCheckCommand:
		return fmt.Sprintf("HEALTHCHECK %+v", *c.Health)
	case *instructions.ExposeCommand:
		return fmt.Sprintf("EXPOSE %v", c.Ports)
	case *instructions.UserCommand:
		return "USER " + c.User
	case *instructions.VolumeCommand:
		return fmt.Sprintf("VOLUME %v", c.Volumes)
	case *instructions.StopSignalCommand:
		return "STOPSIGNAL " + c.Signal
	case *instructions.ShellCommand:
		return fmt.Sprintf("SHELL %v", c.Shell)
	case *instructions.MaintainerCommand:
		return "MAINTAINER " + c.Maintainer
	}
	return ""
}

func copyHistory(name string, parents bool, chown, chmod string, sd instructions.SourcesAndDest) string {
	var b strings.Builder
	b.WriteString(name)
	if parents {
		b.WriteString(" --parents")
	}
	if chown != "" {
		b.WriteString(" --chown=" + chown)
	}
	if chmod != "" {
		b.WriteString(" --chmod=" + chmod)
	}
	for _, src := range sd.SourcePaths {
		b.WriteString(" " + src)
	}
	for _, src := range sd.SourceContents {
		b.WriteString(" <<" + src.Path)
	}
	b.WriteString(" " + sd.DestPath + " # buildkit")
	return b.String()
}

// runCommandString prefixes a RUN's argv with the ARGs in scope, as
// BuildKit records it: "|2 A=1 B=2 /bin/sh -c ...".
func runCommandString(args []string, buildArgs []instructions.KeyValuePairOptional, env []string) string {
	envMap := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		envMap[k] = v
	}
	var tmp []string
	idx := map[string]int{}
	for _, a := range buildArgs {
		v, ok := envMap[a.Key]
		if !ok {
			v = a.ValueString()
		}
		if i, ok := idx[a.Key]; ok {
			tmp[i] = a.Key + "=" + v
		} else {
			idx[a.Key] = len(tmp)
			tmp = append(tmp, a.Key+"="+v)
		}
	}
	if len(tmp) > 0 {
		tmp = append([]string{fmt.Sprintf("|%d", len(tmp))}, tmp...)
	}
	return strings.Join(append(tmp, args...), " ")
}
