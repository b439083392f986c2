package cli

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthsh/berth/pkg/build"
)

// fakeTerminal is the screen of a terminal that understands what
// ttyProgress writes: "\r", "\n", ESC[2K (clear line) and ESC[nA (up n).
type fakeTerminal struct {
	t      *testing.T
	screen []string
	row    int
	writes int
}

func (f *fakeTerminal) Write(p []byte) (int, error) {
	f.writes++
	s := string(p)
	for len(s) > 0 {
		switch {
		case strings.HasPrefix(s, "\x1b[2K"):
			f.line()
			f.screen[f.row] = ""
			s = s[4:]
		case strings.HasPrefix(s, "\x1b["):
			end := strings.IndexByte(s, 'A')
			n, err := strconv.Atoi(s[2:end])
			if end < 0 || err != nil {
				f.t.Fatalf("unknown escape sequence in %q", s)
			}
			f.row -= n
			if f.row < 0 {
				f.t.Fatalf("cursor moved above the first line")
			}
			s = s[end+1:]
		case s[0] == '\r':
			s = s[1:]
		case s[0] == '\n':
			f.row++
			s = s[1:]
		default:
			i := strings.IndexAny(s, "\r\n\x1b")
			if i < 0 {
				i = len(s)
			}
			f.line()
			f.screen[f.row] += s[:i]
			s = s[i:]
		}
	}
	return len(p), nil
}

func (f *fakeTerminal) line() {
	for len(f.screen) <= f.row {
		f.screen = append(f.screen, "")
	}
}

// text is the screen up to the cursor's line.
func (f *fakeTerminal) text() string {
	return strings.Join(f.screen[:min(f.row, len(f.screen))], "\n")
}

func TestTTYProgress(t *testing.T) {
	term := &fakeTerminal{t: t}
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	p := newTTYProgress(term, 60, now)
	step := func(n int, in string) build.Event {
		return build.Event{Step: n, Total: 3, Stage: "stage-0", Instruction: in}
	}
	ev := step(1, "COPY requirements.txt .")
	ev.Started = true
	p.event(ev)
	ev.Started, ev.Done, ev.Cached = false, true, true
	p.event(ev)

	ev = step(2, "RUN pip install -r requirements.txt")
	ev.Started = true
	p.event(ev)
	clock = clock.Add(1500 * time.Millisecond)
	for i := 1; i <= 8; i++ {
		o := step(2, "")
		o.Output = []byte("line " + strconv.Itoa(i) + "\n")
		p.event(o)
	}
	o := step(2, "")
	o.Output = []byte("partial")
	p.event(o)
	want := strings.Join([]string{
		"[+] Building 1.5s (1/3)",
		" => CACHED [1/3] COPY requirements.txt .",
		" => [2/3] RUN pip install -r requirements.txt          1.5s",
		" => => # line 4",
		" => => # line 5",
		" => => # line 6",
		" => => # line 7",
		" => => # line 8",
		" => => # partial",
	}, "\n")
	if got := term.text(); got != want {
		t.Errorf("while running:\n%s\nwant:\n%s", got, want)
	}

	// Done: the logs go, the frame is redrawn over the old one.
	clock = clock.Add(500 * time.Millisecond)
	ev = step(2, "RUN pip install -r requirements.txt")
	ev.Done, ev.Duration = true, 2*time.Second
	p.event(ev)
	ev = step(3, "RUN false\nand a heredoc line")
	ev.Started = true
	p.event(ev)
	ev.Started, ev.Done, ev.Err, ev.Duration = false, true, errors.New("exit code: 1"), 100*time.Millisecond
	p.event(ev)
	p.finish()
	want = strings.Join([]string{
		"[+] Building 2.0s (3/3)",
		" => CACHED [1/3] COPY requirements.txt .",
		" => [2/3] RUN pip install -r requirements.txt          2.0s",
		" => [3/3] RUN false ...                          ERROR 0.1s",
	}, "\n")
	if got := term.text(); got != want {
		t.Errorf("at the end:\n%s\nwant:\n%s", got, want)
	}
	for i, l := range term.screen {
		if len([]rune(l)) >= 60 {
			t.Errorf("line %d is %d columns wide on a 60-column terminal: %q", i, len([]rune(l)), l)
		}
		if i >= term.row && l != "" {
			t.Errorf("stale line %d below the frame: %q", i, l)
		}
	}
}

func TestTTYProgressFit(t *testing.T) {
	p := newTTYProgress(&fakeTerminal{t: t}, 20, nil)
	if got := p.fit("0123456789abcdefghijklmnop", "1.0s"); got != "0123456789abcd 1.0s" {
		t.Errorf("fit = %q", got)
	}
	if got := p.fit("tab\there\x1b[31m", ""); strings.ContainsAny(got, "\t\x1b") {
		t.Errorf("control characters kept: %q", got)
	}
}
