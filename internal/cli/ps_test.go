package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berthsh/berth/pkg/runtime"
)

var psNow = time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)

func fakeContainer(id, name string, st runtime.State) runtime.Container {
	return runtime.Container{
		Config: runtime.ContainerConfig{
			ID:          strings.Repeat(id, 64/len(id)),
			Name:        name,
			Created:     psNow.Add(-time.Hour),
			Image:       "python:3.12",
			ImageID:     v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)},
			NetworkMode: "bridge",
			Networks:    []string{"bridge"},
			Labels:      map[string]string{"b": "2", "a": "1"},
			Create: runtime.CreateOptions{
				Cmd:           []string{"python", "-m", "http.server", "--bind", "0.0.0.0"},
				EntrypointSet: true,
			},
			Mounts: []runtime.MountSpec{{Type: "volume", Source: "averyveryverylongvolumename", Target: "/data"}},
		},
		State: st,
		Dir:   "/nonexistent",
	}
}

func TestContainerStatus(t *testing.T) {
	for _, tc := range []struct {
		st   runtime.State
		want string
	}{
		{runtime.State{Status: "created"}, "Created"},
		{runtime.State{}, "Created"},
		{runtime.State{Status: "running", Running: true, StartedAt: psNow.Add(-3 * time.Minute)}, "Up 3 minutes"},
		{runtime.State{Status: "running", Running: true, StartedAt: psNow.Add(-time.Second)}, "Up 1 second"},
		{runtime.State{Status: "running", Running: true, StartedAt: psNow.Add(-time.Second), Health: &runtime.Health{Status: "healthy"}}, "Up 1 second (healthy)"},
		{runtime.State{Status: "running", Running: true, StartedAt: psNow.Add(-time.Second), Health: &runtime.Health{Status: "starting"}}, "Up 1 second (health: starting)"},
		{runtime.State{Status: "running", Running: true, Paused: true, StartedAt: psNow.Add(-time.Hour)}, "Up About an hour (Paused)"},
		{runtime.State{Status: "exited", ExitCode: 0, StartedAt: psNow.Add(-time.Hour), FinishedAt: psNow.Add(-2 * time.Second)}, "Exited (0) 2 seconds ago"},
		{runtime.State{Status: "exited", ExitCode: 137, StartedAt: psNow.Add(-time.Hour), FinishedAt: psNow.Add(-48 * time.Hour)}, "Exited (137) 2 days ago"},
		{runtime.State{Status: "restarting", Restarting: true, ExitCode: 1, StartedAt: psNow.Add(-time.Hour), FinishedAt: psNow.Add(-5 * time.Second)}, "Restarting (1) 5 seconds ago"},
		{runtime.State{Status: "dead", Dead: true, StartedAt: psNow}, "Dead"},
		{runtime.State{Status: "removing", StartedAt: psNow}, "Removal In Progress"},
	} {
		if got := containerStatus(tc.st, psNow); got != tc.want {
			t.Errorf("containerStatus(%+v) = %q, want %q", tc.st, got, tc.want)
		}
	}
	if got := containerState(runtime.State{Status: "running", Running: true, Paused: true}); got != "paused" {
		t.Errorf("state of a paused container = %q", got)
	}
}

func TestDisplayPorts(t *testing.T) {
	for _, tc := range []struct {
		ports []runtime.PortBinding
		want  string
	}{
		{nil, ""},
		{[]runtime.PortBinding{{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}}, "0.0.0.0:8080->80/tcp"},
		{[]runtime.PortBinding{{HostIP: "127.0.0.1", HostPort: 5353, ContainerPort: 53, Proto: "udp"}, {HostPort: 8080, ContainerPort: 80}}, "127.0.0.1:5353->53/udp, 0.0.0.0:8080->80/tcp"},
		{[]runtime.PortBinding{
			{HostPort: 8001, ContainerPort: 9001, Proto: "tcp"},
			{HostPort: 8000, ContainerPort: 9000, Proto: "tcp"},
			{HostPort: 8002, ContainerPort: 9002, Proto: "tcp"},
		}, "0.0.0.0:8000-8002->9000-9002/tcp"},
		{[]runtime.PortBinding{{HostIP: "::", HostPort: 8080, ContainerPort: 80, Proto: "tcp"}}, "[::]:8080->80/tcp"},
		{[]runtime.PortBinding{{ContainerPort: 80, Proto: "tcp"}, {ContainerPort: 81, Proto: "tcp"}}, "80-81/tcp"},
	} {
		if got := displayPorts(tc.ports); got != tc.want {
			t.Errorf("displayPorts(%+v) = %q, want %q", tc.ports, got, tc.want)
		}
	}
}

func TestWritePs(t *testing.T) {
	running := fakeContainer("a1", "web", runtime.State{Status: "running", Running: true, StartedAt: psNow.Add(-3 * time.Minute),
		Ports: []runtime.PortBinding{{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}}})
	exited := fakeContainer("b2", "job", runtime.State{Status: "exited", ExitCode: 3, StartedAt: psNow.Add(-time.Hour), FinishedAt: psNow.Add(-2 * time.Second)})
	cs := []runtime.Container{running, exited}
	run := func(o psOptions) string {
		var out bytes.Buffer
		g := &globals{Out: &out}
		if err := writePs(g, cs, nil, o, psNow); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	table := run(psOptions{trunc: true})
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("table:\n%s", table)
	}
	for _, h := range []string{"CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"} {
		if !strings.Contains(lines[0], h) {
			t.Errorf("header %q missing: %q", h, lines[0])
		}
	}
	for _, want := range []string{"a1a1a1a1a1a1 ", "python:3.12", `"python -m http.serv…"`, "About an hour ago", "Up 3 minutes", "0.0.0.0:8080->80/tcp", "web"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row %q lacks %q", lines[1], want)
		}
	}
	if !strings.Contains(lines[2], "Exited (3) 2 seconds ago") {
		t.Errorf("exited row %q", lines[2])
	}

	if got := run(psOptions{quiet: true, trunc: true}); got != "a1a1a1a1a1a1\nb2b2b2b2b2b2\n" {
		t.Errorf("quiet = %q", got)
	}
	if got := run(psOptions{quiet: true}); got != running.Config.ID+"\n"+exited.Config.ID+"\n" {
		t.Errorf("quiet no-trunc = %q", got)
	}
	noTrunc := run(psOptions{format: "{{.Command}}|{{.Labels}}|{{.Label \"b\"}}|{{.Mounts}}|{{.Networks}}|{{.State}}|{{.LocalVolumes}}"})
	want := `"python -m http.server --bind 0.0.0.0"|a=1,b=2|2|averyveryverylongvolumename|bridge|running|1` + "\n"
	if !strings.HasPrefix(noTrunc, want) {
		t.Errorf("template = %q, want prefix %q", noTrunc, want)
	}
	trunc := run(psOptions{trunc: true, format: "{{.Mounts}}"})
	if !strings.HasPrefix(trunc, "averyveryveryl…\n") {
		t.Errorf("truncated mounts = %q", trunc)
	}

	js := run(psOptions{trunc: true, format: "json"})
	var row map[string]any
	if err := json.Unmarshal([]byte(strings.Split(js, "\n")[0]), &row); err != nil {
		t.Fatalf("json %q: %v", js, err)
	}
	for _, k := range []string{"Command", "CreatedAt", "ID", "Image", "Labels", "LocalVolumes", "Mounts", "Names", "Networks", "Ports", "RunningFor", "Size", "State", "Status"} {
		if _, ok := row[k]; !ok {
			t.Errorf("json row lacks %s: %v", k, row)
		}
	}
	if len(row) != 14 {
		t.Errorf("json row has extra keys: %v", row)
	}
}

func TestPsFilter(t *testing.T) {
	running := fakeContainer("a1", "web", runtime.State{Status: "running", Running: true})
	exited := fakeContainer("b2", "job-1", runtime.State{Status: "exited", ExitCode: 3})
	exited.Config.Image = "localhost:5000/app:v1"
	exited.Config.Labels = map[string]string{"tier": "batch"}
	for _, tc := range []struct {
		filters []string
		want    []string
		all     bool
	}{
		{nil, []string{"web", "job-1"}, false},
		{[]string{"status=running"}, []string{"web"}, false},
		{[]string{"status=exited"}, []string{"job-1"}, true},
		{[]string{"status=exited", "status=running"}, []string{"web", "job-1"}, true},
		{[]string{"name=^job"}, []string{"job-1"}, false},
		{[]string{"id=a1a1"}, []string{"web"}, false},
		{[]string{"label=tier"}, []string{"job-1"}, false},
		{[]string{"label=tier=web"}, nil, false},
		{[]string{"label=a=1"}, []string{"web"}, false},
		{[]string{"ancestor=python:3.12"}, []string{"web"}, false},
		{[]string{"ancestor=docker.io/library/python:3.12"}, []string{"web"}, false},
		{[]string{"ancestor=abab"}, []string{"web", "job-1"}, false},
		{[]string{"exited=3"}, []string{"job-1"}, true},
		{[]string{"exited=0"}, nil, true},
	} {
		f, err := parsePsFilter(tc.filters)
		if err != nil {
			t.Fatalf("%q: %v", tc.filters, err)
		}
		var got []string
		for _, c := range []runtime.Container{running, exited} {
			if f.match(c) {
				got = append(got, containerName(c))
			}
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") || f.impliesAll() != tc.all {
			t.Errorf("%q matched %q (all %v), want %q (all %v)", tc.filters, got, f.impliesAll(), tc.want, tc.all)
		}
	}
	for _, bad := range []string{"status=sleeping", "color=red", "novalue", "exited=x", "name=("} {
		if _, err := parsePsFilter([]string{bad}); err == nil {
			t.Errorf("filter %q accepted", bad)
		}
	}
}

func TestContainerInspectShape(t *testing.T) {
	c := fakeContainer("c3", "api", runtime.State{Status: "running", Running: true, Pid: 42, StartedAt: psNow,
		Ports:     []runtime.PortBinding{{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}},
		Endpoints: []runtime.EndpointState{{Network: "bridge", IPAddress: "172.17.0.2", PrefixLen: 16, Gateway: "172.17.0.1", MacAddress: "02:42:ac:11:00:02"}}})
	c.Config.Ports = []runtime.PortSpec{{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}}
	c.Config.Create.Memory = 256 << 20
	c.Config.Create.CPUs = 0.5
	c.Config.Create.PidsLimit = 100
	c.Config.RestartPolicy = runtime.RestartPolicy{Name: "on-failure", MaximumRetryCount: 3}
	c.Config.Mounts = append(c.Config.Mounts, runtime.MountSpec{Type: "bind", Source: "/srv", Target: "/app", ReadOnly: true})
	ci := newContainerInspect(c, nil, "/x/container-json.log")
	raw, err := json.Marshal(ci)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	get := func(path ...string) any {
		var v any = m
		for _, p := range path {
			mm, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = mm[p]
		}
		return v
	}
	for _, tc := range []struct {
		path []string
		want any
	}{
		{[]string{"Id"}, c.Config.ID},
		{[]string{"Name"}, "/api"},
		{[]string{"Path"}, "python"},
		{[]string{"Image"}, "sha256:" + strings.Repeat("ab", 32)},
		{[]string{"State", "Status"}, "running"},
		{[]string{"State", "Running"}, true},
		{[]string{"State", "Pid"}, 42.0},
		{[]string{"State", "StartedAt"}, "2026-01-02T15:00:00Z"},
		{[]string{"State", "FinishedAt"}, "0001-01-01T00:00:00Z"},
		{[]string{"HostConfig", "Memory"}, float64(256 << 20)},
		{[]string{"HostConfig", "NanoCpus"}, 5e8},
		{[]string{"HostConfig", "PidsLimit"}, 100.0},
		{[]string{"HostConfig", "RestartPolicy", "Name"}, "on-failure"},
		{[]string{"HostConfig", "RestartPolicy", "MaximumRetryCount"}, 3.0},
		{[]string{"HostConfig", "NetworkMode"}, "bridge"},
		{[]string{"Config", "Image"}, "python:3.12"},
		{[]string{"Config", "Labels", "a"}, "1"},
		{[]string{"NetworkSettings", "IPAddress"}, "172.17.0.2"},
		{[]string{"NetworkSettings", "Networks", "bridge", "Gateway"}, "172.17.0.1"},
		{[]string{"LogPath"}, "/x/container-json.log"},
	} {
		if got := get(tc.path...); got != tc.want {
			t.Errorf("%s = %#v, want %#v", strings.Join(tc.path, "."), got, tc.want)
		}
	}
	if b, _ := json.Marshal(get("NetworkSettings", "Ports")); string(b) != `{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"}]}` {
		t.Errorf("NetworkSettings.Ports = %s", b)
	}
	if b, _ := json.Marshal(get("HostConfig", "PortBindings")); string(b) != `{"80/tcp":[{"HostIp":"","HostPort":"8080"}]}` {
		t.Errorf("HostConfig.PortBindings = %s", b)
	}
	if b, _ := json.Marshal(get("HostConfig", "Binds")); string(b) != `["/srv:/app:ro"]` {
		t.Errorf("Binds = %s", b)
	}
	if mounts, _ := get("Mounts").([]any); len(mounts) != 2 {
		t.Errorf("Mounts = %v", get("Mounts"))
	}
	var out bytes.Buffer
	if err := writeFormatted(&out, "{{.Name}} {{.State.Status}} {{json .Config.Cmd}}", []any{ci}); err != nil || out.String() != "/api running [\"python\",\"-m\",\"http.server\",\"--bind\",\"0.0.0.0\"]\n" {
		t.Errorf("template output %q, %v", out.String(), err)
	}
}
