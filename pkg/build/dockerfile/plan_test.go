package dockerfile

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/berthsh/berth/pkg/errdefs"
)

func mustPlan(t *testing.T, src string, opts PlanOptions) *BuildPlan {
	t.Helper()
	p, err := Plan(mustParse(t, src), opts)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return p
}

func planErr(t *testing.T, src string, opts PlanOptions) error {
	t.Helper()
	_, err := Plan(mustParse(t, src), opts)
	if err == nil {
		t.Fatal("Plan succeeded, want an error")
	}
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("error %v is not ErrInvalidArgument", err)
	}
	return err
}

// envOf is the image environment after the target's last step, as a map.
func envOf(p *BuildPlan) map[string]string {
	m := map[string]string{}
	for _, kv := range p.TargetStage().Scope.Env() {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func buildEnvOf(p *BuildPlan) map[string]string {
	m := map[string]string{}
	for _, kv := range p.TargetStage().Scope.BuildEnv() {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func TestExpansion(t *testing.T) {
	p := mustPlan(t, `FROM scratch
ARG SET=value
ENV DEF=${UNSET:-fallback} \
    DEF2=${SET:-fallback} \
    ALT=${SET:+alternative} \
    ALT2=${UNSET:+alternative} \
    ESC=\$SET \
    SQ='$SET' \
    DQ="$SET and ${SET}" \
    SUF=${SET%ue} \
    PRE=${SET#va}
ENV LATER=$DEF
`, PlanOptions{})
	want := map[string]string{
		"DEF": "fallback", "DEF2": "value", "ALT": "alternative", "ALT2": "",
		"ESC": "$SET", "SQ": "$SET", "DQ": "value and value",
		"SUF": "val", "PRE": "lue", "LATER": "fallback",
	}
	env := envOf(p)
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	// UNSET is referenced but never defined.
	var undefined []string
	for _, w := range p.Warnings {
		if w.Rule == "UndefinedVar" {
			undefined = append(undefined, w.Message)
		}
	}
	if len(undefined) == 0 || !strings.Contains(undefined[0], "'$UNSET'") {
		t.Errorf("UndefinedVar warnings = %q", undefined)
	}
}

func TestExpansionEveryInstruction(t *testing.T) {
	p := mustPlan(t, `FROM scratch
ARG D=/srv U=app P=8000 SIG=SIGINT V=/data
ENV N=name
WORKDIR $D
LABEL "$N"="$U"
COPY --chown=$U:$U --chmod=0755 ${N}.py $D/
ADD --chown=$U ${N}.tgz ./
USER $U
EXPOSE $P ${P}/udp
VOLUME $V
STOPSIGNAL $SIG
RUN echo $N
`, PlanOptions{})
	steps := p.TargetStage().Steps
	get := func(i int) instructions.Command { return steps[i].Instruction }
	if w := get(2).(*instructions.WorkdirCommand); w.Path != "/srv" {
		t.Errorf("WORKDIR %q", w.Path)
	}
	if l := get(3).(*instructions.LabelCommand); l.Labels[0].Key != "name" || l.Labels[0].Value != "app" {
		t.Errorf("LABEL %+v", l.Labels)
	}
	if c := get(4).(*instructions.CopyCommand); c.Chown != "app:app" || c.SourcePaths[0] != "name.py" || c.DestPath != "/srv/" {
		t.Errorf("COPY %+v", c)
	}
	if a := get(5).(*instructions.AddCommand); a.Chown != "app" || a.SourcePaths[0] != "name.tgz" {
		t.Errorf("ADD %+v", a)
	}
	if u := get(6).(*instructions.UserCommand); u.User != "app" {
		t.Errorf("USER %q", u.User)
	}
	if e := get(7).(*instructions.ExposeCommand); !slices.Equal(e.Ports, []string{"8000/tcp", "8000/udp"}) {
		t.Errorf("EXPOSE %q", e.Ports)
	}
	if v := get(8).(*instructions.VolumeCommand); v.Volumes[0] != "/data" {
		t.Errorf("VOLUME %q", v.Volumes)
	}
	if s := get(9).(*instructions.StopSignalCommand); s.Signal != "SIGINT" {
		t.Errorf("STOPSIGNAL %q", s.Signal)
	}
	// RUN's command line is left to the shell.
	if r := get(10).(*instructions.RunCommand); r.CmdLine[0] != "echo $N" {
		t.Errorf("RUN %q", r.CmdLine)
	}
	if steps[10].Workdir != "/srv" {
		t.Errorf("workdir at RUN = %q", steps[10].Workdir)
	}
}

func TestExpansionHeredocs(t *testing.T) {
	p := mustPlan(t, `FROM scratch
ARG LEVEL=debug
COPY <<CONF <<'RAW' /etc/
level=$LEVEL "quoted" \n
CONF
level=$LEVEL
RAW
RUN <<EOF
echo $LEVEL
EOF
`, PlanOptions{})
	cp := p.TargetStage().Steps[1].Instruction.(*instructions.CopyCommand)
	// As in BuildKit, quotes stay but backslash escapes are processed.
	if got := cp.SourceContents[0].Data; got != "level=debug \"quoted\" n\n" {
		t.Errorf("expanded heredoc = %q", got)
	}
	if got := cp.SourceContents[1].Data; got != "level=$LEVEL\n" {
		t.Errorf("quoted heredoc = %q, want no expansion", got)
	}
	run := p.TargetStage().Steps[2].Instruction.(*instructions.RunCommand)
	if run.Files[0].Data != "echo $LEVEL\n" {
		t.Errorf("RUN heredoc = %q, want it left to the shell", run.Files[0].Data)
	}
}

func TestExpansionErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"required variable", "FROM scratch\nARG NAME\nENV X=\"${NAME:?NAME is required}\"\n", "Dockerfile:3: ENV: failed to process"},
		{"required meta arg", "ARG IMG=${IMG:?set IMG}\nFROM scratch\n", "Dockerfile:1: ARG"},
		{"bad port", "FROM scratch\nEXPOSE 80/xyz\n", `Dockerfile:2: EXPOSE: invalid port "80/xyz"`},
		{"bad mount type after expansion", "FROM scratch\nARG T=cahce\nRUN --mount=type=$T,target=/c true\n", `unsupported mount type "cahce" (did you mean cache?)`},
		{"blank base", "ARG IMG\nFROM $IMG\n", "Dockerfile:2: FROM: base name ($IMG) should not be blank"},
		{"bad platform", "FROM --platform=linux scratch\n", "Dockerfile:1: FROM: --platform=linux: invalid platform"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := planErr(t, tt.src, PlanOptions{})
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
	// The required meta ARG is satisfied by a build arg.
	mustPlan(t, "ARG IMG=${IMG:?set IMG}\nFROM scratch\n", PlanOptions{BuildArgs: map[string]string{"IMG": "x"}})
}

func TestArgScoping(t *testing.T) {
	tests := []struct {
		name      string
		src       string
		args      map[string]string
		want      map[string]string // image env after the target
		wantBuild map[string]string // build env (ARG values) after the target
		unused    []string
	}{
		{
			name: "meta ARG only in FROM unless redeclared",
			src:  "ARG V=3.12\nFROM scratch\nENV X=$V\n",
			want: map[string]string{"X": ""},
		},
		{
			name:      "redeclared without value inherits the meta default",
			src:       "ARG V=3.12\nFROM scratch\nARG V\nENV X=$V\n",
			want:      map[string]string{"X": "3.12"},
			wantBuild: map[string]string{"V": "3.12"},
		},
		{
			name: "build arg overrides the meta ARG and reaches the redeclaration",
			src:  "ARG V=3.12\nFROM scratch\nARG V\nENV X=$V\n",
			args: map[string]string{"V": "3.13"},
			want: map[string]string{"X": "3.13"},
		},
		{
			name: "redeclared with its own default keeps it",
			src:  "ARG V=3.12\nFROM scratch\nARG V=own\nENV X=$V\n",
			want: map[string]string{"X": "own"},
		},
		{
			name:   "build arg only for declared ARGs",
			src:    "FROM scratch\nENV X=${Y:-unset}\n",
			args:   map[string]string{"Y": "9"},
			want:   map[string]string{"X": "unset"},
			unused: []string{"Y"},
		},
		{
			name: "build arg overrides a declared default",
			src:  "FROM scratch\nARG Y=1\nENV X=$Y\n",
			args: map[string]string{"Y": "9"},
			want: map[string]string{"X": "9"},
		},
		{
			name: "build arg value is not expanded",
			src:  "FROM scratch\nARG Y\nENV X=$Y\n",
			args: map[string]string{"Y": "$HOME"},
			want: map[string]string{"X": "$HOME"},
		},
		{
			name:      "ENV overrides ARG of the same name",
			src:       "FROM scratch\nARG A=1\nENV A=2\nENV B=$A\n",
			args:      map[string]string{"A": "5"},
			want:      map[string]string{"A": "2", "B": "2"},
			wantBuild: map[string]string{"A": "2"},
		},
		{
			name: "one ENV sees the values from before it",
			src:  "FROM scratch\nENV A=old\nENV A=new B=$A\n",
			want: map[string]string{"A": "new", "B": "old"},
		},
		{
			// BuildKit adds the ARG to the build environment after the
			// ENV; the image keeps the ENV value.
			name:      "ARG after ENV of the same name",
			src:       "FROM scratch\nENV A=1\nARG A=2\nENV B=$A\n",
			want:      map[string]string{"A": "1", "B": "2"},
			wantBuild: map[string]string{"A": "2"},
		},
		{
			name:      "ARG default sees ENV",
			src:       "FROM scratch\nENV P=/opt\nARG D=$P/bin\nENV X=$D\n",
			want:      map[string]string{"X": "/opt/bin"},
			wantBuild: map[string]string{"D": "/opt/bin"},
		},
		{
			name: "ARG values are not persisted",
			src:  "FROM scratch\nARG SECRET=s\nRUN true\n",
			want: map[string]string{"SECRET": "<none>"},
		},
		{
			name: "declaration order: use before ARG is empty",
			src:  "FROM scratch\nENV X=$A\nARG A=1\nENV Y=$A\n",
			want: map[string]string{"X": "", "Y": "1"},
		},
		{
			name:      "meta ARGs chain (BuildKit testMultiArgs)",
			src:       "ARG a1=\"foo bar\" a2=box\nARG a3=\"$a2-foo\"\nFROM scratch AS build\nARG a3 a4=\"123 456\" a1\n",
			wantBuild: map[string]string{"a1": "foo bar", "a3": "box-foo", "a4": "123 456", "a2": "<none>"},
		},
		{
			name:      "meta ARG default expansion (BuildKit testArgDefaultExpansion)",
			src:       "ARG a1=\"box\"\nARG a2=\"$a1-foo\"\nFROM scratch AS build\nARG a2\nARG a3=\"bar-$a2\"\n",
			wantBuild: map[string]string{"a3": "bar-box-foo"},
		},
		{
			name: "child stage inherits ENV and ARGs",
			src:  "FROM scratch AS a\nARG X=1\nENV E=e\nFROM a\nENV Y=$X$E\n",
			want: map[string]string{"Y": "1e", "E": "e"},
		},
		{
			name: "PATH defaults for scratch and can be extended",
			src:  "FROM scratch\nENV PATH=/opt/venv/bin:$PATH\n",
			want: map[string]string{"PATH": "/opt/venv/bin:" + defaultPath},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustPlan(t, tt.src, PlanOptions{BuildArgs: tt.args})
			check := func(kind string, got, want map[string]string) {
				for k, v := range want {
					g, ok := got[k]
					if v == "<none>" {
						if ok {
							t.Errorf("%s %s = %q, want it unset", kind, k, g)
						}
						continue
					}
					if g != v {
						t.Errorf("%s %s = %q, want %q", kind, k, g, v)
					}
				}
			}
			check("env", envOf(p), tt.want)
			check("build env", buildEnvOf(p), tt.wantBuild)
			if !slices.Equal(p.UnusedBuildArgs, tt.unused) {
				t.Errorf("unused build args = %q, want %q", p.UnusedBuildArgs, tt.unused)
			}
		})
	}
}

func TestPredefinedArgs(t *testing.T) {
	amd := &v1.Platform{OS: "linux", Architecture: "amd64"}
	arm := &v1.Platform{OS: "linux", Architecture: "arm64"}
	src := `FROM --platform=$BUILDPLATFORM scratch AS build
ARG TARGETPLATFORM TARGETARCH BUILDARCH
ENV T=$TARGETPLATFORM A=$TARGETARCH B=$BUILDARCH
FROM scratch
ENV T=$TARGETARCH
`
	p := mustPlan(t, src, PlanOptions{BuildPlatform: amd, TargetPlatform: arm, Target: "build"})
	st := p.TargetStage()
	if st.Platform != "linux/amd64" {
		t.Errorf("--platform=$BUILDPLATFORM = %q", st.Platform)
	}
	env := envOf(p)
	if env["T"] != "linux/arm64" || env["A"] != "arm64" || env["B"] != "amd64" {
		t.Errorf("declared predefined ARGs: %v", env)
	}
	if !slices.Contains(p.GlobalArgs, "TARGETSTAGE=build") {
		t.Errorf("GlobalArgs = %q", p.GlobalArgs)
	}

	// As in Docker, a stage sees TARGETARCH only after "ARG TARGETARCH".
	p = mustPlan(t, src, PlanOptions{BuildPlatform: amd, TargetPlatform: arm})
	if env := envOf(p); env["T"] != "" {
		t.Errorf("undeclared TARGETARCH expanded to %q", env["T"])
	}
	if !slices.Contains(rules(p.Warnings), "UndefinedVar") {
		t.Errorf("warnings %v lack UndefinedVar", p.Warnings)
	}

	// Predefined ARGs in FROM, overridable with a build arg.
	p = mustPlan(t, "FROM python:3.12-$TARGETARCH\n", PlanOptions{TargetPlatform: arm, BuildArgs: map[string]string{"TARGETARCH": "riscv64"}})
	if got := p.TargetStage().Base.Image; got != "docker.io/library/python:3.12-riscv64" {
		t.Errorf("base = %q", got)
	}
	if len(p.UnusedBuildArgs) != 0 {
		t.Errorf("unused = %q", p.UnusedBuildArgs)
	}
}

func TestProxyArgs(t *testing.T) {
	p := mustPlan(t, "FROM scratch\nRUN curl example.com\n", PlanOptions{BuildArgs: map[string]string{
		"HTTP_PROXY": "http://proxy:3128", "no_proxy": "localhost", "OTHER": "x",
	}})
	if !slices.Equal(p.ProxyEnv, []string{"HTTP_PROXY=http://proxy:3128", "no_proxy=localhost"}) {
		t.Errorf("ProxyEnv = %q", p.ProxyEnv)
	}
	if !slices.Equal(p.UnusedBuildArgs, []string{"OTHER"}) {
		t.Errorf("UnusedBuildArgs = %q", p.UnusedBuildArgs)
	}
	if got := p.UnusedBuildArgsWarning(); got != "[Warning] One or more build-args [OTHER] were not consumed" {
		t.Errorf("warning = %q", got)
	}
	step := p.TargetStage().Steps[0]
	for _, kv := range append(step.Env, step.BuildEnv...) {
		if strings.Contains(kv, "proxy") {
			t.Errorf("proxy leaked into the step env: %q", kv)
		}
	}
	if got := CreatedBy(step); strings.Contains(got, "proxy") {
		t.Errorf("proxy leaked into history: %q", got)
	}
}

func TestRunMountExpansion(t *testing.T) {
	src := `FROM python:3.12 AS deps
FROM python:3.12
ARG DIR=/root/.cache/pip
RUN --mount=type=cache,target=$DIR,id=pip-$DIR \
    --mount=type=bind,from=deps,source=/wheels,target=/w \
    --mount=type=secret,id=token,env=TOKEN \
    --mount=type=tmpfs,target=/tmp,size=64m \
    --network=none \
    pip install -r requirements.txt
RUN true
`
	// The pitfall: before expansion, BuildKit reports the cache mount as
	// a bind mount with no target.
	f := mustParse(t, src)
	raw := instructions.GetMounts(f.Stages[1].Commands[1].(*instructions.RunCommand))
	if raw[0].Type != instructions.MountTypeBind || raw[0].Target != "" {
		t.Errorf("unexpanded mount: %+v; BuildKit changed, revisit the expansion of mounts", raw[0])
	}

	p, err := Plan(f, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	step := p.TargetStage().Steps[1]
	ms := step.Mounts()
	if len(ms) != 4 {
		t.Fatalf("got %d mounts", len(ms))
	}
	if ms[0].Type != instructions.MountTypeCache || ms[0].Target != "/root/.cache/pip" || ms[0].CacheID != "pip-/root/.cache/pip" {
		t.Errorf("cache mount = %+v", ms[0])
	}
	if ms[1].Type != instructions.MountTypeBind || ms[1].From != "deps" || !ms[1].ReadOnly {
		t.Errorf("bind mount = %+v", ms[1])
	}
	if ms[2].Type != instructions.MountTypeSecret || ms[2].CacheID != "token" || ms[2].Env == nil || *ms[2].Env != "TOKEN" {
		t.Errorf("secret mount = %+v", ms[2])
	}
	if ms[3].Type != instructions.MountTypeTmpfs || ms[3].SizeLimit != 64<<20 {
		t.Errorf("tmpfs mount = %+v", ms[3])
	}
	want := []Source{{Kind: SourceContext}, {Kind: SourceStage, Stage: 0}, {Kind: SourceContext}, {Kind: SourceContext}}
	if !slices.Equal(step.MountSources, want) {
		t.Errorf("mount sources = %+v", step.MountSources)
	}
	if step.Network() != "none" || step.Security() != "sandbox" {
		t.Errorf("network %q security %q", step.Network(), step.Security())
	}
	if other := p.TargetStage().Steps[2]; other.Network() != "default" || len(other.Mounts()) != 0 {
		t.Errorf("plain RUN: network %q mounts %v", other.Network(), other.Mounts())
	}
	if !slices.Equal(p.TargetStage().DependsOn, []int{0}) {
		t.Errorf("DependsOn = %v", p.TargetStage().DependsOn)
	}
}

func TestMultiStage(t *testing.T) {
	src := `ARG PY=3.12
FROM python:${PY}-slim AS base
RUN pip install uv
FROM base AS deps
RUN uv sync
FROM node:20 AS web
RUN npm ci
FROM scratch AS unused
COPY --from=web / /
FROM base AS final
COPY --from=deps /venv /venv
COPY --from=web /dist /static
COPY --from=ghcr.io/astral-sh/uv:latest /uv /bin/uv
`
	p := mustPlan(t, src, PlanOptions{})
	if p.Target != 4 {
		t.Fatalf("default target = %d, want the last stage", p.Target)
	}
	if want := [][]int{{0, 2}, {1}, {4}}; fmt.Sprint(p.Waves) != fmt.Sprint(want) {
		t.Errorf("waves = %v, want %v", p.Waves, want)
	}
	if p.Stages[3].Needed || p.Stages[3].Steps != nil {
		t.Errorf("unused stage planned: %+v", p.Stages[3])
	}
	final := p.Stages[4]
	if !slices.Equal(final.DependsOn, []int{0, 1, 2}) {
		t.Errorf("final depends on %v", final.DependsOn)
	}
	if !slices.Equal(final.Images, []string{"ghcr.io/astral-sh/uv:latest"}) {
		t.Errorf("final images = %v", final.Images)
	}
	if b := p.Stages[0].Base; b.Kind != BaseImage || b.Image != "docker.io/library/python:3.12-slim" || b.Name != "python:3.12-slim" {
		t.Errorf("base of stage 0 = %+v", b)
	}
	if b := final.Base; b.Kind != BaseStage || b.Stage != 0 {
		t.Errorf("base of final = %+v", b)
	}
	if s := final.Steps[0].From; s.Kind != SourceStage || s.Stage != 1 {
		t.Errorf("COPY --from=deps source = %+v", s)
	}
	if s := final.Steps[2].From; s.Kind != SourceImage || s.Image != "ghcr.io/astral-sh/uv:latest" {
		t.Errorf("COPY --from=image source = %+v", s)
	}

	// --target picks a stage, case-insensitively; only what it needs stays.
	p = mustPlan(t, src, PlanOptions{Target: "DEPS"})
	if p.Target != 1 || fmt.Sprint(p.Waves) != "[[0] [1]]" {
		t.Errorf("target deps: target %d waves %v", p.Target, p.Waves)
	}
	for _, i := range []int{2, 3, 4} {
		if p.Stages[i].Needed {
			t.Errorf("stage %d needed for target deps", i)
		}
	}

	err := planErr(t, src, PlanOptions{Target: "dep"})
	for _, want := range []string{`target stage "dep" could not be found (did you mean deps?)`, "stages: base, deps, web, unused, final"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestStageReferences(t *testing.T) {
	t.Run("COPY --from index", func(t *testing.T) {
		p := mustPlan(t, "FROM alpine\nRUN make\nFROM scratch\nCOPY --from=0 /out /out\n", PlanOptions{})
		if s := p.TargetStage().Steps[0].From; s.Kind != SourceStage || s.Stage != 0 {
			t.Errorf("source = %+v", s)
		}
		if fmt.Sprint(p.Waves) != "[[0] [1]]" {
			t.Errorf("waves = %v", p.Waves)
		}
	})
	t.Run("FROM index is an image name, as in Docker", func(t *testing.T) {
		p := mustPlan(t, "FROM alpine\nFROM 0\n", PlanOptions{})
		if b := p.TargetStage().Base; b.Kind != BaseImage || b.Image != "docker.io/library/0:latest" {
			t.Errorf("FROM 0 base = %+v", b)
		}
		if p.Stages[0].Needed {
			t.Error("stage 0 needed")
		}
	})
	t.Run("FROM stage is case-insensitive", func(t *testing.T) {
		p := mustPlan(t, "FROM alpine AS builder\nFROM Builder\n", PlanOptions{})
		if b := p.TargetStage().Base; b.Kind != BaseStage || b.Stage != 0 {
			t.Errorf("base = %+v", b)
		}
	})
	t.Run("FROM a later stage name is an image", func(t *testing.T) {
		p := mustPlan(t, "FROM later\nFROM alpine AS later\n", PlanOptions{})
		if b := p.Stages[0].Base; b.Kind != BaseImage || b.Image != "docker.io/library/later:latest" {
			t.Errorf("base = %+v", b)
		}
	})
	t.Run("undefined --from stage is an image", func(t *testing.T) {
		p := mustPlan(t, "FROM scratch\nCOPY --from=nonexist-stage /a /a\n", PlanOptions{})
		if s := p.TargetStage().Steps[0].From; s.Kind != SourceImage || s.Image != "docker.io/library/nonexist-stage:latest" {
			t.Errorf("source = %+v", s)
		}
	})
	t.Run("RUN --mount from a stage", func(t *testing.T) {
		p := mustPlan(t, "FROM alpine AS b\nFROM alpine\nRUN --mount=from=b,target=/b ls /b\n", PlanOptions{})
		if !slices.Equal(p.TargetStage().DependsOn, []int{0}) {
			t.Errorf("DependsOn = %v", p.TargetStage().DependsOn)
		}
	})

	errs := []struct{ name, src, want string }{
		{"forward COPY --from", "FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\nFROM a\n", `Dockerfile:2: COPY: cannot copy from stage "b", it needs to be defined before current stage "a"`},
		{"FROM neither stage nor image", "FROM alpine AS builder\nFROM BUILDR\n", `Dockerfile:2: FROM: "BUILDR" is neither a stage defined before this one nor a valid image reference (did you mean BUILDER?)`},
		{"FROM invalid reference", "FROM scratch\nFROM Nonexist_Stage:x:y\n", `Dockerfile:2: FROM: "Nonexist_Stage:x:y" is neither`},
		{"COPY --from invalid", "FROM scratch\nCOPY --from=Bad:Ref:x /a /a\n", `Dockerfile:2: COPY: --from=Bad:Ref:x: "Bad:Ref:x" is neither a stage name nor a valid image reference`},
		{"COPY --from index out of range", "FROM scratch\nCOPY --from=3 /a /a\n", "Dockerfile:2: COPY: --from=3: invalid stage index 3"},
		{"COPY --from variable", "FROM scratch\nARG S=x\nCOPY --from=$S /a /a\n", "Dockerfile:3: COPY: variable expansion is not supported for --from"},
		{"self cycle", "FROM busybox AS stage0\nCOPY --from=stage0 f1 /sub/\n", "Dockerfile:2: COPY: circular dependency detected on stage: stage0 (stage0 -> stage0)"},
		{"three-stage cycle", "FROM busybox AS stage0\nCOPY --from=stage2 f1 /sub/\nFROM busybox AS stage1\nCOPY --from=stage0 f2 /sub/\nFROM busybox AS stage2\nCOPY --from=stage1 f2 /sub/\n", "Dockerfile:2: COPY: circular dependency detected on stage: stage0 (stage0 -> stage2 -> stage1 -> stage0)"},
		{"cycle through FROM and COPY --from", "FROM busybox AS a\nCOPY --from=b /x /x\nFROM a AS b\n", "circular dependency detected on stage: a (a -> b -> a)"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			err := planErr(t, tt.src, PlanOptions{})
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q\nwant it to contain %q", err, tt.want)
			}
		})
	}

	// A forward reference in a stage the target does not need is fine.
	mustPlan(t, "FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\n", PlanOptions{Target: "b"})
}

func TestOnbuild(t *testing.T) {
	p := mustPlan(t, `FROM alpine AS tools
FROM scratch AS base
ONBUILD ENV FROM_TRIGGER=1
ONBUILD COPY --from=tools /bin/sh /sh
FROM base
RUN true
`, PlanOptions{})
	st := p.TargetStage()
	if len(st.Steps) != 3 || !st.Steps[0].OnBuild || !st.Steps[1].OnBuild || st.Steps[2].OnBuild {
		t.Fatalf("steps = %+v", st.Steps)
	}
	if st.Steps[0].Original != "ONBUILD ENV FROM_TRIGGER=1" || st.Steps[0].Line != 5 {
		t.Errorf("trigger step: %q at line %d", st.Steps[0].Original, st.Steps[0].Line)
	}
	if !slices.Equal(st.DependsOn, []int{0, 1}) || fmt.Sprint(p.Waves) != "[[0 1] [2]]" {
		t.Errorf("DependsOn %v waves %v", st.DependsOn, p.Waves)
	}
	if envOf(p)["FROM_TRIGGER"] != "1" {
		t.Errorf("trigger ENV not applied: %v", envOf(p))
	}
	if CreatedBy(p.Stages[1].Steps[0]) != "" {
		t.Error("ONBUILD must not add history")
	}

	// Triggers from a base image's config.
	p = mustPlan(t, "FROM example.com/onbuild-base\nRUN true\n", PlanOptions{BaseConfigs: map[string]BaseConfig{
		"example.com/onbuild-base:latest": {OnBuild: []string{"ENV X=1"}},
	}})
	if s := p.TargetStage().Steps; len(s) != 2 || !s[0].OnBuild {
		t.Errorf("image trigger steps = %+v", s)
	}
}

func TestBaseConfig(t *testing.T) {
	src := `FROM python:3.12
ENV PATH=/venv/bin:$PATH
RUN echo $PYTHON_VERSION
WORKDIR src
COPY . .
ENV V=$PYTHON_VERSION U=$UNDEFINED
CMD python app.py
`
	// Unknown base config: no UndefinedVar warnings (the base env is
	// unknown), default PATH, workdir relative to /.
	p := mustPlan(t, src, PlanOptions{})
	if slices.Contains(rules(p.Warnings), "UndefinedVar") {
		t.Errorf("UndefinedVar with an unknown base: %v", p.Warnings)
	}
	if got := p.TargetStage().Steps[2].Workdir; got != "/src" {
		t.Errorf("workdir = %q", got)
	}

	p = mustPlan(t, src, PlanOptions{BaseConfigs: map[string]BaseConfig{
		"docker.io/library/python:3.12": {
			Env:        []string{"PATH=/usr/local/bin:/usr/bin", "PYTHON_VERSION=3.12.7"},
			WorkingDir: "/app",
			Shell:      []string{"/bin/bash", "-c"},
		},
	}})
	env := envOf(p)
	if env["PATH"] != "/venv/bin:/usr/local/bin:/usr/bin" || env["V"] != "3.12.7" {
		t.Errorf("env = %v", env)
	}
	steps := p.TargetStage().Steps
	if steps[2].Workdir != "/app/src" || CreatedBy(steps[2]) != "WORKDIR /app/src" {
		t.Errorf("workdir = %q (%q)", steps[2].Workdir, CreatedBy(steps[2]))
	}
	if got := CreatedBy(steps[1]); got != "RUN /bin/bash -c echo $PYTHON_VERSION # buildkit" {
		t.Errorf("RUN history = %q", got)
	}
	var undefined []string
	for _, w := range p.Warnings {
		if w.Rule == "UndefinedVar" {
			undefined = append(undefined, w.Message)
		}
	}
	if !slices.Equal(undefined, []string{"Usage of undefined variable '$UNDEFINED'"}) {
		t.Errorf("UndefinedVar = %q", undefined)
	}
	// The base image sets a shell, so CMD's shell form is not flagged.
	if slices.Contains(rules(p.Warnings), "JSONArgsRecommended") {
		t.Errorf("JSONArgsRecommended despite the base shell: %v", p.Warnings)
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"JSON args recommended", "FROM scratch\nCMD python app.py\nENTRYPOINT exec app\n", []string{"JSONArgsRecommended", "JSONArgsRecommended"}},
		{"exec form is fine", "FROM scratch\nCMD [\"python\", \"app.py\"]\n", nil},
		{"SHELL silences JSONArgsRecommended", "FROM scratch\nSHELL [\"/bin/bash\", \"-c\"]\nCMD python app.py\n", nil},
		{"multiple CMD", "FROM scratch\nCMD [\"a\"]\nCMD [\"b\"]\n", []string{"MultipleInstructionsDisallowed"}},
		{"legacy ENV", "FROM scratch\nENV A b\n", []string{"LegacyKeyValueFormat"}},
		{"relative WORKDIR", "FROM scratch\nWORKDIR app\nWORKDIR sub\n", []string{"WorkdirRelativePath"}},
		{"absolute WORKDIR first", "FROM scratch\nWORKDIR /app\nWORKDIR sub\n", nil},
		{"undefined ARG in FROM", "ARG VERSION=1\nFROM python$VERSIN\n", []string{"UndefinedArgInFrom"}},
		{"duplicate stage", "FROM scratch AS a\nFROM scratch AS a\n", []string{"DuplicateStageName"}},
		{"reserved stage name", "FROM scratch AS context\n", []string{"ReservedStageName"}},
		{"check comment on one instruction", "FROM scratch\n# check=skip=JSONArgsRecommended\nCMD python app.py\nENTRYPOINT python app.py\n", []string{"JSONArgsRecommended"}},
		{"check directive skips a rule", "# check=skip=JSONArgsRecommended\nFROM scratch\nCMD python app.py\n", nil},
		{"expose with host port", "FROM scratch\nEXPOSE 80:80\n", []string{"ExposeInvalidFormat"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustPlan(t, tt.src, PlanOptions{})
			if got := rules(p.Warnings); !slices.Equal(got, tt.want) {
				t.Errorf("warnings = %v, want rules %v", p.Warnings, tt.want)
			}
		})
	}

	p := mustPlan(t, "ARG VERSION=1\nFROM python$VERSIN\n", PlanOptions{})
	if got := p.Warnings[0].String(); got != "UndefinedArgInFrom: FROM argument 'VERSIN' is not declared (did you mean VERSION?) (line 2)" {
		t.Errorf("warning text = %q", got)
	}

	err := planErr(t, "# check=error=true\nFROM scratch\nCMD python app.py\n", PlanOptions{})
	if !strings.Contains(err.Error(), "JSONArgsRecommended") {
		t.Errorf("error = %v", err)
	}
}

func TestPlanTwiceSameResult(t *testing.T) {
	f := mustParse(t, "FROM scratch\nARG A=1\nENV B=\\$A C=$A\n")
	for i := range 2 {
		p, err := Plan(f, PlanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if env := envOf(p); env["B"] != "$A" || env["C"] != "1" {
			t.Fatalf("plan %d: env %v", i, env)
		}
	}
	if env := f.Stages[0].Commands[1].(*instructions.EnvCommand); env.Env[1].Value != "$A" {
		t.Errorf("Plan modified the File: %+v", env.Env)
	}
}

func TestPlanConcurrent(t *testing.T) {
	f := mustParse(t, "FROM scratch AS a\nARG X=1\nENV Y=$X\nFROM scratch AS b\nCOPY --from=a /y /y\nFROM b\n")
	done := make(chan *BuildPlan, 4)
	for i := range 4 {
		go func() {
			p, err := Plan(f, PlanOptions{BuildArgs: map[string]string{"X": fmt.Sprint(i)}})
			if err != nil {
				t.Error(err)
			}
			done <- p
		}()
	}
	for range 4 {
		if p := <-done; p != nil && fmt.Sprint(p.Waves) != "[[0] [1] [2]]" {
			t.Errorf("waves = %v", p.Waves)
		}
	}
}

func TestEscapeTokenInExpansion(t *testing.T) {
	p := mustPlan(t, "# escape=`\nFROM scratch\nARG B=x\nENV A=`$B C=$B D=C:\\dir\\$B\n", PlanOptions{})
	env := envOf(p)
	if env["A"] != "$B" || env["C"] != "x" || env["D"] != `C:\dir\x` {
		t.Errorf("env = %v", env)
	}
}

func TestPlanNil(t *testing.T) {
	if _, err := Plan(nil, PlanOptions{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Plan(nil) = %v", err)
	}
	if _, err := Plan(&File{}, PlanOptions{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Plan(empty File) = %v", err)
	}
}
