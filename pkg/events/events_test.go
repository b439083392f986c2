package events

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const helperEnv = "BERTH_EVENTS_TEST_HELPER"

// TestMain lets the test binary act as one of several emitting processes.
func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		// "ROOT PROC COUNT"
		f := strings.Fields(spec)
		n, _ := strconv.Atoi(f[2])
		for i := 0; i < n; i++ {
			if err := Emit(f[0], testEvent(f[1], i)); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testEvent has a payload of varying length so that torn or interleaved
// writes would show.
func testEvent(writer string, i int) Event {
	return Event{Type: TypeContainer, Action: "start", Actor: Actor{
		ID: writer,
		Attributes: map[string]string{
			"seq":     strconv.Itoa(i),
			"payload": strings.Repeat(writer, 1+i%50),
		},
	}}
}

// checkIntact reads the raw journal files: every line must be a whole
// event; it returns them in file order.
func checkIntact(t *testing.T, root string) []Event {
	t.Helper()
	var out []Event
	for _, name := range []string{oldFile, currentFile} {
		data, err := os.ReadFile(filepath.Join(Dir(root), name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > 0 && data[len(data)-1] != '\n' {
			t.Errorf("%s does not end with a newline", name)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var e Event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("%s: torn line %q: %v", name, sc.Text(), err)
			}
			if want := strings.Repeat(e.Actor.ID, 1+atoi(t, e.Actor.Attributes["seq"])%50); e.Actor.Attributes["payload"] != want {
				t.Fatalf("%s: mixed line %q", name, sc.Text())
			}
			out = append(out, e)
		}
	}
	return out
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("bad seq %q", s)
	}
	return n
}

// checkAll wants every writer's events 0..n-1 exactly once, each writer's
// in order.
func checkAll(t *testing.T, evs []Event, writers []string, n int) {
	t.Helper()
	next := map[string]int{}
	for _, e := range evs {
		seq := atoi(t, e.Actor.Attributes["seq"])
		if seq != next[e.Actor.ID] {
			t.Fatalf("writer %s: got seq %d, want %d", e.Actor.ID, seq, next[e.Actor.ID])
		}
		next[e.Actor.ID]++
	}
	for _, w := range writers {
		if next[w] != n {
			t.Errorf("writer %s: %d events, want %d", w, next[w], n)
		}
	}
}

func TestEmitConcurrentGoroutines(t *testing.T) {
	root := t.TempDir()
	const writers, n = 32, 60
	var names []string
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		name := fmt.Sprintf("g%02d", w)
		names = append(names, name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				if err := Emit(root, testEvent(name, i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	evs := checkIntact(t, root)
	checkAll(t, evs, names, n)
	got, err := Read(context.Background(), root, Filter{})
	if err != nil || len(got) != writers*n {
		t.Errorf("Read: %d events, %v; want %d", len(got), err, writers*n)
	}
}

func TestEmitConcurrentProcesses(t *testing.T) {
	root := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const procs, n = 6, 150
	var names []string
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for p := 0; p < procs; p++ {
		name := fmt.Sprintf("p%d", p)
		names = append(names, name)
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d", helperEnv, root, name, n))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, &out)
	}
	// Emit from this process at the same time too.
	for i := 0; i < n; i++ {
		if err := Emit(root, testEvent("parent", i)); err != nil {
			t.Fatal(err)
		}
	}
	names = append(names, "parent")
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper %d: %v: %s", i, err, outs[i])
		}
	}
	checkAll(t, checkIntact(t, root), names, n)
}

func setMaxSize(t *testing.T, n int64) {
	old := maxSize
	maxSize = n
	t.Cleanup(func() { maxSize = old })
}

func TestRotationKeepsNewest(t *testing.T) {
	setMaxSize(t, 8<<10)
	root := t.TempDir()
	const n = 600
	for i := 0; i < n; i++ {
		if err := Emit(root, testEvent("w", i)); err != nil {
			t.Fatal(err)
		}
	}
	var total int64
	for _, name := range []string{oldFile, currentFile} {
		fi, err := os.Stat(filepath.Join(Dir(root), name))
		if err != nil {
			t.Fatalf("%s: %v (no rotation?)", name, err)
		}
		total += fi.Size()
	}
	if total > maxSize+1024 {
		t.Errorf("journal is %d bytes, bound %d", total, maxSize)
	}
	evs, err := Read(context.Background(), root, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 || len(evs) == n {
		t.Fatalf("Read after rotation: %d events of %d", len(evs), n)
	}
	first := atoi(t, evs[0].Actor.Attributes["seq"])
	for i, e := range evs {
		if got := atoi(t, e.Actor.Attributes["seq"]); got != first+i {
			t.Fatalf("event %d: seq %d, want %d (a gap)", i, got, first+i)
		}
	}
	if last := atoi(t, evs[len(evs)-1].Actor.Attributes["seq"]); last != n-1 {
		t.Errorf("newest kept is %d, want %d", last, n-1)
	}
}

func TestRotationUnderConcurrentWriters(t *testing.T) {
	setMaxSize(t, 16<<10)
	root := t.TempDir()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				_ = Emit(root, testEvent(fmt.Sprintf("r%d", w), i))
			}
		}()
	}
	wg.Wait()
	evs := checkIntact(t, root)
	// Each writer's surviving events are its newest, without gaps.
	last := map[string]int{}
	for _, e := range evs {
		seq := atoi(t, e.Actor.Attributes["seq"])
		if prev, ok := last[e.Actor.ID]; ok && seq != prev+1 {
			t.Fatalf("writer %s: seq %d after %d", e.Actor.ID, seq, prev)
		}
		last[e.Actor.ID] = seq
	}
	for w, seq := range last {
		if seq != 199 {
			t.Errorf("writer %s: newest kept %d, want 199", w, seq)
		}
	}
}

// followCollector runs Follow in the background and hands out its events.
type followCollector struct {
	ch     chan Event
	done   chan error
	cancel context.CancelFunc
}

// startFollow runs Follow until cancel is called or the test ends (and
// waits for it then, before the temporary directory goes).
func startFollow(t *testing.T, root string, f Filter) *followCollector {
	ctx, cancel := context.WithCancel(context.Background())
	c := &followCollector{ch: make(chan Event, 1000), done: make(chan error, 1), cancel: cancel}
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		c.done <- Follow(ctx, root, f, func(e Event) error {
			c.ch <- e
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-ended
	})
	return c
}

func (c *followCollector) next(t *testing.T) Event {
	t.Helper()
	select {
	case e := <-c.ch:
		return e
	case err := <-c.done:
		t.Fatalf("Follow ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Follow delivered nothing in 10 s")
	}
	return Event{}
}

func TestFollowNewEventsAndCancel(t *testing.T) {
	root := t.TempDir()
	start := time.Now()
	old := testEvent("old", 0)
	old.TimeNano = start.Add(-time.Minute).UnixNano()
	if err := Emit(root, old); err != nil {
		t.Fatal(err)
	}
	c := startFollow(t, root, Filter{Since: start, Args: map[string][]string{"container": {"new"}}})
	for i := 0; i < 3; i++ {
		if err := Emit(root, testEvent("other", i)); err != nil {
			t.Fatal(err)
		}
		if err := Emit(root, testEvent("new", i)); err != nil {
			t.Fatal(err)
		}
		if e := c.next(t); e.Actor.ID != "new" || e.Actor.Attributes["seq"] != strconv.Itoa(i) {
			t.Fatalf("event %d: got %+v", i, e)
		}
	}
	c.cancel()
	select {
	case err := <-c.done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Follow after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Follow did not stop at cancel")
	}
	select {
	case e := <-c.ch:
		t.Errorf("unexpected event %+v", e)
	default:
	}
}

func TestFollowUntilInThePast(t *testing.T) {
	root := t.TempDir()
	base := time.Now().Add(-time.Hour)
	for i := 0; i < 5; i++ {
		e := testEvent("w", i)
		e.TimeNano = base.Add(time.Duration(i) * time.Minute).UnixNano()
		if err := Emit(root, e); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	err := Follow(context.Background(), root, Filter{Since: base.Add(time.Minute), Until: base.Add(3 * time.Minute)}, func(e Event) error {
		got = append(got, e.Actor.Attributes["seq"])
		return nil
	})
	if err != nil || strings.Join(got, ",") != "1,2,3" {
		t.Errorf("Follow with a past Until: %v, %v; want 1,2,3", got, err)
	}
}

func TestFollowSurvivesRotation(t *testing.T) {
	setMaxSize(t, 4<<10)
	root := t.TempDir()
	c := startFollow(t, root, Filter{Since: time.Now()})
	const n = 300 // about 20 rotations
	for i := 0; i < n; i += 3 {
		// A few at a time: at most one rotation between Follow's reads
		// matters; Follow must see each batch across the rotations.
		for j := i; j < i+3; j++ {
			if err := Emit(root, testEvent("w", j)); err != nil {
				t.Fatal(err)
			}
		}
		for j := i; j < i+3; j++ {
			if e := c.next(t); atoi(t, e.Actor.Attributes["seq"]) != j {
				t.Fatalf("got seq %s, want %d", e.Actor.Attributes["seq"], j)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(Dir(root), oldFile)); err != nil {
		t.Fatalf("no rotation happened: %v", err)
	}
}

func TestCorruptLinesSkipped(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(Dir(root), 0o700); err != nil {
		t.Fatal(err)
	}
	good := func(i int) string {
		b, _ := json.Marshal(Event{Type: TypeImage, Action: "tag", Actor: Actor{ID: "sha256:" + strconv.Itoa(i)}, Time: 1700000000, TimeNano: 1700000000_000000000 + int64(i)})
		return string(b)
	}
	content := good(1) + "\n" +
		"garbage\n" +
		`{"Type":"container","Action":"st` + "\n" + // torn by a crash
		"{}\n" +
		"\x00\x00\x00\n" +
		good(2) + "\n" +
		good(3)[:20] // a write in progress
	if err := os.WriteFile(filepath.Join(Dir(root), currentFile), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	evs, err := Read(context.Background(), root, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Actor.ID != "sha256:1" || evs[1].Actor.ID != "sha256:2" {
		t.Fatalf("Read = %+v, want the two good events", evs)
	}
	// Follow picks the partial line up once it is complete.
	c := startFollow(t, root, Filter{Since: time.Unix(0, 1)})
	for _, want := range []string{"sha256:1", "sha256:2"} {
		if e := c.next(t); e.Actor.ID != want {
			t.Fatalf("Follow: got %s, want %s", e.Actor.ID, want)
		}
	}
	f, err := os.OpenFile(filepath.Join(Dir(root), currentFile), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(good(3)[20:] + "\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if e := c.next(t); e.Actor.ID != "sha256:3" {
		t.Fatalf("Follow: got %s, want sha256:3", e.Actor.ID)
	}
}

func TestEmitStampsTime(t *testing.T) {
	root := t.TempDir()
	before := time.Now()
	if err := Emit(root, Event{Type: TypeContainer, Action: "create", Actor: Actor{ID: "x"}}); err != nil {
		t.Fatal(err)
	}
	evs, err := Read(context.Background(), root, Filter{Since: before})
	if err != nil || len(evs) != 1 {
		t.Fatalf("Read = %v, %v", evs, err)
	}
	if e := evs[0]; e.TimeNano < before.UnixNano() || e.Time != e.TimeNano/1e9 {
		t.Errorf("time %d/%d, emitted after %d", e.Time, e.TimeNano, before.UnixNano())
	}
	if err := Emit(root, Event{Actor: Actor{ID: "x"}}); err == nil {
		t.Error("Emit without type and action succeeded")
	}
}

// The data directory is removed (berth system reset) while the journal
// is followed: the follower does not make it again (which would break
// the removal), reads nothing meanwhile, and picks up the new journal
// when berth makes one.
func TestTailDataDirReset(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	if err := Emit(root, testEvent("before", 0)); err != nil {
		t.Fatal(err)
	}
	tl := &tail{dir: Dir(root)}
	defer tl.close()
	var got []string
	collect := func(e Event) error { got = append(got, e.Actor.ID); return nil }
	if err := tl.read(collect); err != nil || strings.Join(got, ",") != "before" {
		t.Fatalf("first read: %v, %v", got, err)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := tl.read(collect); err != nil {
			t.Fatalf("read after the reset: %v", err)
		}
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the follower made the removed data directory again (%v)", err)
	}
	if err := Emit(root, testEvent("after", 0)); err != nil {
		t.Fatal(err)
	}
	if err := tl.read(collect); err != nil || strings.Join(got, ",") != "before,after" {
		t.Errorf("after the reset: %v, %v; want before,after", got, err)
	}
}

// A deleted journal file is not the file now at its path, even when
// the new one reuses its inode number.
func TestSameFileDeleted(t *testing.T) {
	p := filepath.Join(t.TempDir(), currentFile)
	if err := os.WriteFile(p, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if !sameFile(f, fi) {
		t.Fatal("sameFile of a file and its own stat is false")
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if sameFile(f, fi) { // fi stands for a new file with the old inode
		t.Error("a deleted file is the same as one with its inode number")
	}
}

// Follow keeps going across a reset of the data directory.
func TestFollowAcrossDataDirReset(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	c := startFollow(t, root, Filter{Since: time.Now()})
	if err := Emit(root, testEvent("before", 0)); err != nil {
		t.Fatal(err)
	}
	if e := c.next(t); e.Actor.ID != "before" {
		t.Fatalf("got %+v", e)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := Emit(root, testEvent("after", i)); err != nil {
			t.Fatal(err)
		}
		if e := c.next(t); e.Actor.ID != "after" || atoi(t, e.Actor.Attributes["seq"]) != i {
			t.Fatalf("after the reset: got %+v, want after #%d", e, i)
		}
	}
}
