package dockerfile

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/berthsh/berth/pkg/errdefs"
)

func mustParse(t *testing.T, src string) *File {
	t.Helper()
	f, err := Parse(strings.NewReader(src), "Dockerfile")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return f
}

func rules(ws []Warning) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Rule)
	}
	return out
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		line     int
		instr    string
		want     string // exact error text when set
		contains string
	}{
		{
			name:  "unknown instruction with suggestion",
			src:   "FROM alpine\nRUNN echo hi\n",
			line:  2,
			instr: "RUNN",
			want:  "Dockerfile:2: unknown instruction: RUNN (did you mean RUN?)",
		},
		{
			name:  "unknown instruction without suggestion",
			src:   "FROM alpine\n\n# comment\nFROBNICATE x\n",
			line:  4,
			instr: "FROBNICATE",
			want:  "Dockerfile:4: unknown instruction: FROBNICATE",
		},
		{
			name:  "lower-case typo keeps its case in the suggestion",
			src:   "from alpine\ncopyy a b\n",
			line:  2,
			instr: "COPYY",
			want:  "Dockerfile:2: unknown instruction: copyy (did you mean copy?)",
		},
		{
			name:     "COPY without destination",
			src:      "FROM alpine\nWORKDIR /app\nCOPY requirements.txt\n",
			line:     3,
			instr:    "COPY",
			contains: "Dockerfile:3: COPY requires at least two arguments",
		},
		{
			name:  "unknown flag names the instruction",
			src:   "FROM alpine\nRUN --foo=bar echo\n",
			line:  2,
			instr: "RUN",
			want:  "Dockerfile:2: RUN: unknown flag: --foo",
		},
		{
			name:     "unterminated heredoc",
			src:      "FROM alpine\nRUN <<EOF\necho hi\n",
			line:     2,
			instr:    "",
			contains: "Dockerfile:2: unterminated heredoc",
		},
		{
			name:     "instruction before FROM",
			src:      "RUN echo\nFROM alpine\n",
			line:     1,
			instr:    "RUN",
			contains: "Dockerfile:1: RUN: no build stage in current context",
		},
		{
			name:     "FROM with two words",
			src:      "FROM alpine latest\n",
			line:     1,
			instr:    "FROM",
			contains: "Dockerfile:1: FROM requires either one or three arguments",
		},
		{
			name:     "invalid stage name",
			src:      "FROM alpine AS 1st\n",
			line:     1,
			instr:    "FROM",
			contains: `invalid name for build stage: "1st"`,
		},
		{
			name:     "bad healthcheck interval on a continued line",
			src:      "FROM alpine\nHEALTHCHECK \\\n  --interval=1x CMD true\n",
			line:     2,
			instr:    "HEALTHCHECK",
			contains: `Dockerfile:2: HEALTHCHECK: time: unknown unit "x"`,
		},
		{
			name:     "chained ONBUILD",
			src:      "FROM alpine\nONBUILD ONBUILD RUN true\n",
			line:     2,
			instr:    "ONBUILD",
			contains: "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
		},
		{
			name:     "SHELL needs JSON",
			src:      "FROM alpine\nSHELL /bin/bash -c\n",
			line:     2,
			instr:    "SHELL",
			contains: "SHELL requires the arguments to be in JSON form",
		},
		{
			name:     "RUN --mount from= with a variable",
			src:      "FROM alpine\nRUN --mount=from=$S,target=/x true\n",
			line:     2,
			instr:    "RUN",
			contains: "'from' doesn't support variable expansion, define alias stage instead",
		},
		{
			name:     "only meta ARGs",
			src:      "ARG A=1\n",
			contains: "Dockerfile: the Dockerfile has no FROM instruction",
		},
		{
			name:     "empty file",
			src:      "# just a comment\n\n",
			contains: "file with no instructions",
		},
		{
			name:     "bad escape directive",
			src:      "# escape=x\nFROM alpine\n",
			contains: "invalid escape token 'x'",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.src), "Dockerfile")
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("error %v is not ErrInvalidArgument", err)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not *Error", err)
			}
			if tt.line != 0 && e.Line != tt.line {
				t.Errorf("line = %d, want %d (%v)", e.Line, tt.line, err)
			}
			if tt.instr != "" && e.Instruction != tt.instr {
				t.Errorf("instruction = %q, want %q", e.Instruction, tt.instr)
			}
			if tt.want != "" && err.Error() != tt.want {
				t.Errorf("error = %q\nwant    %q", err, tt.want)
			}
			if tt.contains != "" && !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error = %q, want it to contain %q", err, tt.contains)
			}
		})
	}
}

func TestParseFileName(t *testing.T) {
	_, err := Parse(strings.NewReader("FROM alpine\nRUNN x\n"), "docker/Dockerfile.dev")
	if err == nil || !strings.HasPrefix(err.Error(), "docker/Dockerfile.dev:2: ") {
		t.Fatalf("error = %v, want it to start with the file name and line", err)
	}
}

func TestParseHeredocs(t *testing.T) {
	f := mustParse(t, `FROM alpine
RUN <<EOF
apk add python3
echo done
EOF
RUN <<-EOT bash
	set -e
	echo "tabs go"
	EOT
RUN python3 <<PY > /out
print("hi")
PY
COPY <<CONF /etc/app.conf
level=$LEVEL
CONF
COPY <<"RAW" <<OTHER /dst/
keep $LEVEL
RAW
b
OTHER
`)
	cmds := f.Stages[0].Commands
	if len(cmds) != 5 {
		t.Fatalf("got %d commands, want 5", len(cmds))
	}

	run := cmds[0].(*instructions.RunCommand)
	if !slices.Equal(run.CmdLine, []string{"<<EOF"}) || len(run.Files) != 1 {
		t.Fatalf("RUN <<EOF: CmdLine %q, %d files", run.CmdLine, len(run.Files))
	}
	if run.Files[0].Data != "apk add python3\necho done\n" {
		t.Errorf("heredoc body = %q", run.Files[0].Data)
	}

	chomp := cmds[1].(*instructions.RunCommand)
	if !chomp.Files[0].Chomp {
		t.Error("<<-EOT: Chomp not set")
	}

	py := cmds[2].(*instructions.RunCommand)
	if py.CmdLine[0] != "python3 <<PY > /out" || py.Files[0].Data != "print(\"hi\")\n" {
		t.Errorf("python heredoc: %q %q", py.CmdLine, py.Files[0].Data)
	}

	cp := cmds[3].(*instructions.CopyCommand)
	if cp.DestPath != "/etc/app.conf" || len(cp.SourceContents) != 1 || cp.SourceContents[0].Data != "level=$LEVEL\n" || !cp.SourceContents[0].Expand {
		t.Errorf("COPY <<CONF: %+v", cp.SourcesAndDest)
	}

	two := cmds[4].(*instructions.CopyCommand)
	if len(two.SourceContents) != 2 || two.SourceContents[0].Expand || !two.SourceContents[1].Expand {
		t.Errorf("COPY <<\"RAW\" <<OTHER: %+v", two.SourceContents)
	}
}

func TestParseEscapeAndContinuations(t *testing.T) {
	t.Run("backtick escape", func(t *testing.T) {
		f := mustParse(t, "# escape=`\nFROM alpine\nRUN echo a `\n    b\nCOPY C:\\src\\ C:\\dst\\\n")
		if f.EscapeToken != '`' {
			t.Fatalf("EscapeToken = %q", f.EscapeToken)
		}
		run := f.Stages[0].Commands[0].(*instructions.RunCommand)
		if run.CmdLine[0] != "echo a     b" {
			t.Errorf("continued RUN = %q", run.CmdLine[0])
		}
		cp := f.Stages[0].Commands[1].(*instructions.CopyCommand)
		if cp.SourcePaths[0] != `C:\src\` || cp.DestPath != `C:\dst\` {
			t.Errorf("backslashes not kept: %q -> %q", cp.SourcePaths, cp.DestPath)
		}
	})
	t.Run("backslash continuation with comments and empty lines", func(t *testing.T) {
		f := mustParse(t, "FROM alpine\nRUN apt-get update \\\n# a comment inside\n    && apt-get install -y \\\n\n      curl\nENV A=1\n")
		run := f.Stages[0].Commands[0].(*instructions.RunCommand)
		if run.CmdLine[0] != "apt-get update     && apt-get install -y       curl" {
			t.Errorf("continued RUN = %q", run.CmdLine[0])
		}
		env := f.Stages[0].Commands[1]
		if lineOf(env.Location()) != 7 {
			t.Errorf("ENV line = %d, want 7", lineOf(env.Location()))
		}
		if !slices.Contains(rules(f.Warnings), "NoEmptyContinuation") {
			t.Errorf("warnings %v lack NoEmptyContinuation", f.Warnings)
		}
	})
	t.Run("escaped backslash at end of line is no continuation", func(t *testing.T) {
		f := mustParse(t, "FROM alpine\nRUN echo \\\\\nRUN echo two\n")
		if n := len(f.Stages[0].Commands); n != 2 {
			t.Fatalf("got %d commands, want 2", n)
		}
	})
}

// Scenarios modelled on BuildKit's parser testfiles, written afresh.
func TestParseScenarios(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		check func(t *testing.T, f *File)
	}{
		{"env forms", "FROM scratch\nENV A B C\nENV D=1 E=\"two words\" F=three\\ words\n", func(t *testing.T, f *File) {
			legacy := f.Stages[0].Commands[0].(*instructions.EnvCommand)
			if len(legacy.Env) != 1 || legacy.Env[0].Key != "A" || legacy.Env[0].Value != "B C" || !legacy.Env[0].NoDelim {
				t.Errorf("legacy ENV = %+v", legacy.Env)
			}
			kv := f.Stages[0].Commands[1].(*instructions.EnvCommand)
			if len(kv.Env) != 3 || kv.Env[1].Value != `"two words"` {
				t.Errorf("ENV k=v = %+v", kv.Env)
			}
		}},
		{"JSON and shell forms", "FROM scratch\nCMD [\"python3\", \"app.py\"]\nENTRYPOINT [\"tini\", \"--\"]\nCMD [not json\n", func(t *testing.T, f *File) {
			cmd := f.Stages[0].Commands[0].(*instructions.CmdCommand)
			if cmd.PrependShell || !slices.Equal(cmd.CmdLine, []string{"python3", "app.py"}) {
				t.Errorf("exec CMD = %+v", cmd.ShellDependantCmdLine)
			}
			bad := f.Stages[0].Commands[2].(*instructions.CmdCommand)
			if !bad.PrependShell || bad.CmdLine[0] != "[not json" {
				t.Errorf("invalid JSON must be shell form: %+v", bad.ShellDependantCmdLine)
			}
		}},
		{"labels with quotes", "FROM scratch\nLABEL \"org.opencontainers.image.title\"=\"my app\" version=1.0 \\\n  desc='a b'\n", func(t *testing.T, f *File) {
			l := f.Stages[0].Commands[0].(*instructions.LabelCommand)
			if len(l.Labels) != 3 || l.Labels[0].Key != `"org.opencontainers.image.title"` {
				t.Errorf("labels = %+v", l.Labels)
			}
		}},
		{"mixed-case instructions and stage names", "from alpine AS Build\nRun echo\nFROM build\n", func(t *testing.T, f *File) {
			if f.Stages[0].Name != "build" {
				t.Errorf("stage name = %q, want lower-cased", f.Stages[0].Name)
			}
			if !slices.Contains(rules(f.Warnings), "StageNameCasing") || !slices.Contains(rules(f.Warnings), "FromAsCasing") {
				t.Errorf("warnings = %v", f.Warnings)
			}
		}},
		{"FROM --platform and meta ARGs", "ARG PY=3.12\nARG EMPTY\nFROM --platform=$BUILDPLATFORM python:$PY AS b\n", func(t *testing.T, f *File) {
			if len(f.MetaArgs) != 2 || f.Stages[0].Platform != "$BUILDPLATFORM" || f.Stages[0].BaseName != "python:$PY" {
				t.Errorf("meta %+v stage %+v", f.MetaArgs, f.Stages[0])
			}
		}},
		{"ADD with flags and several sources", "FROM scratch\nADD --chown=app:app --chmod=0644 --checksum=sha256:abc https://example.com/a.tgz /opt/\nADD a.tar.gz b c /dst/\n", func(t *testing.T, f *File) {
			add := f.Stages[0].Commands[0].(*instructions.AddCommand)
			if add.Chown != "app:app" || add.Chmod != "0644" || add.Checksum != "sha256:abc" {
				t.Errorf("ADD flags = %+v", add)
			}
			multi := f.Stages[0].Commands[1].(*instructions.AddCommand)
			if len(multi.SourcePaths) != 3 || multi.DestPath != "/dst/" {
				t.Errorf("ADD sources = %+v", multi.SourcesAndDest)
			}
		}},
		{"COPY flags", "FROM scratch\nCOPY --from=build --link --chmod=755 --exclude=*.pyc /src/ /app/\n", func(t *testing.T, f *File) {
			c := f.Stages[0].Commands[0].(*instructions.CopyCommand)
			if c.From != "build" || !c.Link || c.Chmod != "755" || !slices.Equal(c.ExcludePatterns, []string{"*.pyc"}) {
				t.Errorf("COPY = %+v", c)
			}
		}},
		{"EXPOSE and VOLUME", "FROM scratch\nEXPOSE 8000 53/udp\nVOLUME [\"/data\", \"/logs\"]\nVOLUME /cache\n", func(t *testing.T, f *File) {
			v := f.Stages[0].Commands[1].(*instructions.VolumeCommand)
			if !slices.Equal(v.Volumes, []string{"/data", "/logs"}) {
				t.Errorf("VOLUME = %q", v.Volumes)
			}
		}},
		{"HEALTHCHECK forms", "FROM scratch\nHEALTHCHECK --interval=5s --retries=3 CMD curl -f http://localhost/\nHEALTHCHECK NONE\n", func(t *testing.T, f *File) {
			h := f.Stages[0].Commands[0].(*instructions.HealthCheckCommand)
			if h.Health.Test[0] != "CMD-SHELL" || h.Health.Retries != 3 || h.Health.Interval.Seconds() != 5 {
				t.Errorf("HEALTHCHECK = %+v", h.Health)
			}
			if n := f.Stages[0].Commands[1].(*instructions.HealthCheckCommand); n.Health.Test[0] != "NONE" {
				t.Errorf("HEALTHCHECK NONE = %+v", n.Health)
			}
		}},
		{"ONBUILD, STOPSIGNAL, USER, MAINTAINER", "FROM scratch\nONBUILD COPY . /src\nSTOPSIGNAL SIGINT\nUSER 1000:1000\nMAINTAINER me@example.com\n", func(t *testing.T, f *File) {
			ob := f.Stages[0].Commands[0].(*instructions.OnbuildCommand)
			if ob.Expression != "COPY . /src" {
				t.Errorf("ONBUILD expression = %q", ob.Expression)
			}
			if !slices.Contains(rules(f.Warnings), "MaintainerDeprecated") {
				t.Errorf("warnings = %v", f.Warnings)
			}
		}},
		{"RUN flags", "FROM scratch\nRUN --network=none --security=insecure --mount=type=secret,id=tok true\n", func(t *testing.T, f *File) {
			r := f.Stages[0].Commands[0].(*instructions.RunCommand)
			if instructions.GetNetwork(r) != "none" || instructions.GetSecurity(r) != "insecure" {
				t.Errorf("network %q security %q", instructions.GetNetwork(r), instructions.GetSecurity(r))
			}
		}},
		{"syntax directive and BOM", "\ufeff# syntax=docker/dockerfile:1\nFROM scratch\n", func(t *testing.T, f *File) {
			if f.Syntax != "docker/dockerfile:1" {
				t.Errorf("Syntax = %q", f.Syntax)
			}
		}},
		{"comments between stages keep line numbers", "# top\nFROM scratch AS a\n\n# build\nFROM a AS b\n", func(t *testing.T, f *File) {
			if lineOf(f.Stages[1].Location) != 5 {
				t.Errorf("second FROM at line %d, want 5", lineOf(f.Stages[1].Location))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, mustParse(t, tt.src))
		})
	}
}
