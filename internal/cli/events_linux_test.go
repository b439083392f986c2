package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berthsh/berth/internal/testutil"
)

func TestEventsCLI(t *testing.T) {
	e := newCtrEnv(t)
	start := time.Now()
	if _, errOut, code := e.berth("", "run", "--name", "evt", "-l", "team=data", "mini:1", "sh", "-c", "exit 3"); code != 3 {
		t.Fatalf("run exit 3: %d %s", code, errOut)
	}
	id := strings.TrimSpace(e.must("inspect", "-f", "{{.ID}}", "evt"))
	e.must("rm", "evt")
	e.must("tag", "mini:1", "mini:evt")
	imageID := strings.TrimSpace(e.must("image", "inspect", "-f", "{{.Id}}", "mini:1"))
	since := start.Format(time.RFC3339Nano)
	until := time.Now().Format(time.RFC3339Nano)

	// The default lines, in order.
	out := e.must("events", "--since", since, "--until", until)
	line := regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(?:Z|[+-]\d\d:\d\d)) (\w+) (\S+) (\S+)(?: \((.*)\))?$`)
	var actions []string
	sawTag := false
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("events line %q is not docker's format", l)
		}
		switch {
		case m[2] == "container" && m[4] == id:
			if !strings.Contains(m[5], "name=evt") || !strings.Contains(m[5], "image=mini:1") || !strings.Contains(m[5], "team=data") {
				t.Errorf("container event attributes: %q", l)
			}
			if m[3] == "die" && !strings.Contains(m[5], "exitCode=3") {
				t.Errorf("die without exitCode=3: %q", l)
			}
			actions = append(actions, m[3])
		case m[2] == "image" && m[3] == "tag":
			sawTag = m[4] == imageID && m[5] == "name=mini:evt"
			if !sawTag {
				t.Errorf("tag event: %q (image %s)", l, imageID)
			}
		}
	}
	if got := strings.Join(actions, ","); got != "create,start,die,destroy" {
		t.Errorf("container events %q, want create,start,die,destroy; output:\n%s", got, out)
	}
	if !sawTag {
		t.Errorf("no tag event in:\n%s", out)
	}

	// JSON, filtered.
	out = e.must("events", "--since", since, "--until", until, "--filter", "event=die", "--format", "json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 {
		t.Fatalf("--filter event=die: %d lines:\n%s", len(lines), out)
	}
	var ev struct {
		Status string `json:"status"`
		ID     string `json:"id"`
		Type   string
		Action string
		Actor  struct {
			ID         string
			Attributes map[string]string
		}
		TimeNano int64 `json:"timeNano"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &ev); err != nil {
		t.Fatalf("json line %q: %v", lines[0], err)
	}
	if ev.Type != "container" || ev.Action != "die" || ev.Actor.ID != id || ev.Status != "die" || ev.ID != id || ev.Actor.Attributes["exitCode"] != "3" ||
		ev.Actor.Attributes["name"] != "evt" || ev.TimeNano < start.UnixNano() {
		t.Errorf("die event: %s", lines[0])
	}

	// A template, and filters of two keys.
	out = e.must("events", "--since", since, "--until", until, "-f", "type=container", "-f", "container=evt",
		"-f", "event=create", "-f", "event=destroy", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Status}} {{.From}}")
	if out != "container create evt create mini:1\ncontainer destroy evt destroy mini:1\n" {
		t.Errorf("template output %q", out)
	}
	if out := e.must("events", "--since", since, "--until", until, "-f", "image=mini:evt", "--format", "{{.Action}}"); out != "tag\n" {
		t.Errorf("--filter image=mini:evt: %q", out)
	}

	// More image events: import, untag, save, load.
	var rootfs bytes.Buffer
	tw := tar.NewWriter(&rootfs)
	_ = tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
	_, _ = tw.Write([]byte("hi\n"))
	_ = tw.Close()
	out, errOut, code := e.berth(rootfs.String(), "import", "-", "evimp:1")
	if code != 0 {
		t.Fatalf("import: %d %s", code, errOut)
	}
	importedID := strings.TrimSpace(out)
	e.must("rmi", "mini:evt")
	tarball := filepath.Join(t.TempDir(), "mini.tar")
	e.must("save", "-o", tarball, "mini:1")
	e.must("load", "-q", "-i", tarball)
	out = e.must("events", "--since", since, "--until", time.Now().Format(time.RFC3339Nano),
		"-f", "type=image", "-f", "event=import", "-f", "event=untag", "-f", "event=save", "-f", "event=load",
		"--format", "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}")
	if want := fmt.Sprintf("import %s evimp:1\nuntag %[2]s mini:evt\nsave %[2]s mini:1\nload %[2]s mini:1\n", importedID, imageID); out != want {
		t.Errorf("image events:\n%s\nwant:\n%s", out, want)
	}

	// Bad values are usage errors naming them.
	for _, bad := range [][]string{
		{"--since", "yesterday"},
		{"--until", "10 minutes"},
		{"--filter", "colour=red"},
		{"--filter", "type=plugin"},
		{"--format", "{{.Nope"},
	} {
		_, errOut, code := e.berth("", append([]string{"events", "--until", "0s"}, bad...)...)
		if code != 125 || !strings.Contains(errOut, strings.SplitN(bad[1], "=", 2)[0]) {
			t.Errorf("events %q: %d %q", bad, code, errOut)
		}
	}

	// The other container verbs, in order, with their attributes.
	lstart := time.Now().Format(time.RFC3339Nano)
	lid := strings.TrimSpace(e.must("run", "-d", "--name", "evl", "mini:1", "sleep", "100"))
	e.must("pause", "evl")
	e.must("unpause", "evl")
	e.must("rename", "evl", "evl2")
	e.must("restart", "-t", "0", "evl2")
	e.must("kill", "evl2")
	e.must("wait", "evl2")
	e.must("rm", "evl2")
	out = e.must("events", "--since", lstart, "--until", time.Now().Format(time.RFC3339Nano), "-f", "container="+lid[:12],
		"--format", `{{.Action}} {{.Actor.Attributes.name}} {{index .Actor.Attributes "signal"}}{{index .Actor.Attributes "oldName"}}`)
	want := []string{"create evl ", "start evl ", "pause evl ", "unpause evl ", "rename evl2 /evl",
		"kill evl2 15", "die evl2 ", "stop evl2 ", "start evl2 ", "restart evl2 ", "kill evl2 9", "die evl2 ", "destroy evl2 "}
	if got := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("container verbs' events:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}

	// Without --until it streams until interrupted.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var streamOut, streamErr testutil.LockedBuffer
	done := make(chan int, 1)
	liveSince := time.Now().Format(time.RFC3339Nano)
	go func() {
		done <- Main(ctx, []string{"--root", e.root, "events", "--since", liveSince, "--filter", "type=image"}, strings.NewReader(""), &streamOut, &streamErr)
	}()
	e.must("tag", "mini:1", "mini:live")
	eventually(t, "the streamed tag event", func() bool { return strings.Contains(streamOut.String(), "(name=mini:live)") })
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("events after interrupt: exit %d: %s", code, streamErr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("events did not end when its context was cancelled")
	}
	if strings.Contains(streamOut.String(), "mini:evt") || strings.Contains(streamOut.String(), "container") {
		t.Errorf("the stream shows events from before --since or of another type:\n%s", streamOut.String())
	}
}
