package dockerfile

import (
	"slices"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func buildConfig(t *testing.T, p *BuildPlan, base v1.Config) v1.Config {
	t.Helper()
	b := NewConfigBuilder(base)
	for _, s := range p.TargetStage().Steps {
		b.Apply(s)
	}
	return b.Config
}

func TestConfigBuilder(t *testing.T) {
	base := v1.Config{
		Env:        []string{"PATH=/usr/bin", "LANG=C.UTF-8"},
		Cmd:        []string{"python3"},
		WorkingDir: "/base",
		Labels:     map[string]string{"from": "base"},
		OnBuild:    []string{"RUN echo trigger"},
	}
	p := mustPlan(t, `FROM python:3.12
ENV PATH=/venv/bin:/usr/bin A=1
LABEL version=2
WORKDIR app
EXPOSE 8000
VOLUME /data
USER app
STOPSIGNAL SIGINT
HEALTHCHECK --interval=10s --retries=2 CMD ["curl", "-f", "http://localhost"]
ONBUILD COPY . /src
ENTRYPOINT ["tini", "--"]
`, PlanOptions{})
	cfg := buildConfig(t, p, base)

	if !slices.Equal(cfg.Env, []string{"PATH=/venv/bin:/usr/bin", "LANG=C.UTF-8", "A=1"}) {
		t.Errorf("Env = %q", cfg.Env)
	}
	if cfg.Labels["from"] != "base" || cfg.Labels["version"] != "2" {
		t.Errorf("Labels = %v", cfg.Labels)
	}
	if base.Labels["version"] != "" {
		t.Error("the base config was modified")
	}
	if cfg.WorkingDir != "/base/app" {
		t.Errorf("WorkingDir = %q", cfg.WorkingDir)
	}
	if _, ok := cfg.ExposedPorts["8000/tcp"]; !ok {
		t.Errorf("ExposedPorts = %v", cfg.ExposedPorts)
	}
	if _, ok := cfg.Volumes["/data"]; !ok || cfg.User != "app" || cfg.StopSignal != "SIGINT" {
		t.Errorf("Volumes %v User %q StopSignal %q", cfg.Volumes, cfg.User, cfg.StopSignal)
	}
	if h := cfg.Healthcheck; h == nil || !slices.Equal(h.Test, []string{"CMD", "curl", "-f", "http://localhost"}) || h.Interval != 10*time.Second || h.Retries != 2 {
		t.Errorf("Healthcheck = %+v", cfg.Healthcheck)
	}
	if !slices.Equal(cfg.OnBuild, []string{"COPY . /src"}) {
		t.Errorf("OnBuild = %q, want only this stage's trigger", cfg.OnBuild)
	}
	// ENTRYPOINT clears the CMD inherited from the base.
	if !slices.Equal(cfg.Entrypoint, []string{"tini", "--"}) || cfg.Cmd != nil {
		t.Errorf("Entrypoint %q Cmd %q", cfg.Entrypoint, cfg.Cmd)
	}
}

func TestConfigCmdEntrypoint(t *testing.T) {
	base := v1.Config{Cmd: []string{"bash"}, Entrypoint: []string{"docker-entrypoint.sh"}}
	tests := []struct {
		name       string
		src        string
		cmd, entry []string
	}{
		{"CMD only keeps the entrypoint", "FROM x\nCMD [\"python3\"]\n", []string{"python3"}, []string{"docker-entrypoint.sh"}},
		{"ENTRYPOINT clears the inherited CMD", "FROM x\nENTRYPOINT [\"app\"]\n", nil, []string{"app"}},
		{"CMD then ENTRYPOINT keeps the CMD", "FROM x\nCMD [\"--help\"]\nENTRYPOINT [\"app\"]\n", []string{"--help"}, []string{"app"}},
		{"ENTRYPOINT then CMD", "FROM x\nENTRYPOINT [\"app\"]\nCMD [\"--help\"]\n", []string{"--help"}, []string{"app"}},
		{"shell form uses SHELL", "FROM x\nSHELL [\"/bin/bash\", \"-c\"]\nCMD echo $HOME\n", []string{"/bin/bash", "-c", "echo $HOME"}, []string{"docker-entrypoint.sh"}},
		{"shell form ENTRYPOINT", "FROM x\nENTRYPOINT exec gunicorn app:app\n", nil, []string{"/bin/sh", "-c", "exec gunicorn app:app"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := buildConfig(t, mustPlan(t, tt.src, PlanOptions{}), base)
			if !slices.Equal(cfg.Cmd, tt.cmd) || !slices.Equal(cfg.Entrypoint, tt.entry) {
				t.Errorf("Cmd %q Entrypoint %q, want %q %q", cfg.Cmd, cfg.Entrypoint, tt.cmd, tt.entry)
			}
		})
	}
}
