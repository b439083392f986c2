package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/berthsh/berth/pkg/monitor"
)

func TestStatsRows(t *testing.T) {
	id := strings.Repeat("ab", 32)
	cs := []monitor.ContainerStats{{
		Stats: monitor.Stats{ID: id, Name: "web", MemoryUsage: 12.5 * (1 << 20), MemoryLimit: 256 << 20,
			NetRx: 1234, NetTx: 648, BlockRead: 3_500_000, BlockWrite: 0, PIDs: 7},
		Running: true, CPUPercent: 99.996, MemPercent: 4.8828125,
	}, {
		Stats: monitor.Stats{ID: strings.Repeat("cd", 32), Name: "stopped"},
	}}
	for _, tc := range []struct {
		name    string
		names   []string
		noTrunc bool
		want    []statsRow
	}{
		{"listed", nil, false, []statsRow{
			{BlockIO: "3.5MB / 0B", CPUPerc: "100.00%", Container: id[:12], ID: id[:12], MemPerc: "4.88%",
				MemUsage: "12.5MiB / 256MiB", Name: "web", NetIO: "1.23kB / 648B", PIDs: "7"},
			{BlockIO: "0B / 0B", CPUPerc: "0.00%", Container: "cdcdcdcdcdcd", ID: "cdcdcdcdcdcd", MemPerc: "0.00%",
				MemUsage: "0B / 0B", Name: "stopped", NetIO: "0B / 0B", PIDs: "0"},
		}},
		{"listed, untruncated", nil, true, []statsRow{
			{BlockIO: "3.5MB / 0B", CPUPerc: "100.00%", Container: id[:12], ID: id, MemPerc: "4.88%",
				MemUsage: "12.5MiB / 256MiB", Name: "web", NetIO: "1.23kB / 648B", PIDs: "7"},
			{BlockIO: "0B / 0B", CPUPerc: "0.00%", Container: "cdcdcdcdcdcd", ID: strings.Repeat("cd", 32), MemPerc: "0.00%",
				MemUsage: "0B / 0B", Name: "stopped", NetIO: "0B / 0B", PIDs: "0"},
		}},
		{"named, untruncated", []string{"web", "cdcd"}, true, []statsRow{
			{BlockIO: "3.5MB / 0B", CPUPerc: "100.00%", Container: "web", ID: id, MemPerc: "4.88%",
				MemUsage: "12.5MiB / 256MiB", Name: "web", NetIO: "1.23kB / 648B", PIDs: "7"},
			{BlockIO: "0B / 0B", CPUPerc: "0.00%", Container: "cdcd", ID: strings.Repeat("cd", 32), MemPerc: "0.00%",
				MemUsage: "0B / 0B", Name: "stopped", NetIO: "0B / 0B", PIDs: "0"},
		}},
	} {
		rows := statsRows(cs, tc.names, tc.noTrunc)
		if len(rows) != len(tc.want) {
			t.Fatalf("%s: %d rows, want %d", tc.name, len(rows), len(tc.want))
		}
		for i, r := range rows {
			if r.(statsRow) != tc.want[i] {
				t.Errorf("%s: row %d\n got %+v\nwant %+v", tc.name, i, r, tc.want[i])
			}
		}
	}
}

// A container that could not be read shows docker's "--" row; one
// without a name shows "--" as its name.
func TestStatsRowsInvalid(t *testing.T) {
	rows := statsRows([]monitor.ContainerStats{{
		Stats:   monitor.Stats{ID: strings.Repeat("ef", 32), Name: "broken", PIDs: 3, MemoryUsage: 5},
		Running: true, Err: errors.New("stats broken: read cgroup: permission denied"),
	}, {
		Stats: monitor.Stats{ID: strings.Repeat("01", 32)},
	}}, nil, false)
	want := []statsRow{
		{BlockIO: "--", CPUPerc: "--", Container: "efefefefefef", ID: "efefefefefef", MemPerc: "--",
			MemUsage: "-- / --", Name: "broken", NetIO: "--", PIDs: "--"},
		{BlockIO: "0B / 0B", CPUPerc: "0.00%", Container: "010101010101", ID: "010101010101", MemPerc: "0.00%",
			MemUsage: "0B / 0B", Name: "--", NetIO: "0B / 0B", PIDs: "0"},
	}
	for i, r := range rows {
		if r.(statsRow) != want[i] {
			t.Errorf("row %d\n got %+v\nwant %+v", i, r, want[i])
		}
	}
}

func TestStatsFormats(t *testing.T) {
	rows := statsRows([]monitor.ContainerStats{{
		Stats:   monitor.Stats{ID: strings.Repeat("ab", 32), Name: "web", MemoryUsage: 1 << 30, MemoryLimit: 2 << 30, PIDs: 3},
		Running: true, CPUPercent: 12.5, MemPercent: 50,
	}}, nil, false)

	var b bytes.Buffer
	if err := writeList(&b, "", statsFormat, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("table: %q", b.String())
	}
	header := strings.Join(strings.Fields(lines[0]), " ")
	if header != "CONTAINER ID NAME CPU % MEM USAGE / LIMIT MEM % NET I/O BLOCK I/O PIDS" {
		t.Errorf("header %q", lines[0])
	}
	if got := strings.Join(strings.Fields(lines[1]), " "); got != "abababababab web 12.50% 1GiB / 2GiB 50.00% 0B / 0B 0B / 0B 3" {
		t.Errorf("row %q", lines[1])
	}

	b.Reset()
	if err := writeList(&b, "json", statsFormat, rows); err != nil {
		t.Fatal(err)
	}
	var obj map[string]string
	if err := json.Unmarshal(b.Bytes(), &obj); err != nil {
		t.Fatalf("json %q: %v", b.String(), err)
	}
	for k, v := range map[string]string{"ID": "abababababab", "Name": "web", "CPUPerc": "12.50%", "MemUsage": "1GiB / 2GiB", "PIDs": "3"} {
		if obj[k] != v {
			t.Errorf("json %s = %q, want %q", k, obj[k], v)
		}
	}

	b.Reset()
	if err := writeList(&b, "table {{.Container}}\t{{.CPUPerc}}", statsFormat, rows); err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(b.String()); strings.Join(got, " ") != "CONTAINER CPU % abababababab 12.50%" {
		t.Errorf("table template: %q", b.String())
	}
}

func TestStatsRedraw(t *testing.T) {
	var b bytes.Buffer
	redraw(&b, []byte("A\nB\n"), true)
	if got, want := b.String(), "\033[2J\033[HA\033[K\nB\033[K\n\033[J"; got != want {
		t.Errorf("first frame %q, want %q", got, want)
	}
	b.Reset()
	redraw(&b, []byte("A\n"), false)
	if got, want := b.String(), "\033[HA\033[K\n\033[J"; got != want {
		t.Errorf("next frame %q, want %q", got, want)
	}
}

func TestStatsErrors(t *testing.T) {
	root := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"stats", "--no-stream", "--format", "{{.Nope}}"}, 125, "invalid --format template"},
		{[]string{"stats", "--no-stream", "--format", "{{.ID"}, 125, "invalid --format template"},
		{[]string{"stats", "--no-stream", "--bogus"}, 125, "unknown flag"},
		{[]string{"stats", "--no-stream", "nosuchcontainer"}, 1, "No such container: nosuchcontainer"},
		{[]string{"container", "stats", "--no-stream", "nosuchcontainer"}, 1, "No such container: nosuchcontainer"},
	} {
		code, out, errOut := runBerth(t, root, nil, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.args, code, out, errOut, tc.code, tc.want)
		}
	}
	// No containers: the header alone.
	code, out, errOut := runBerth(t, root, nil, "stats", "--no-stream")
	if code != 0 || !strings.HasPrefix(out, "CONTAINER ID") || strings.Count(out, "\n") != 1 {
		t.Errorf("empty: exit %d, %q, %q", code, out, errOut)
	}
}
