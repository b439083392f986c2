package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/berthsh/berth/pkg/build"
)

// ttyLogLines is how many of a running step's last output lines the live
// view shows, as BuildKit's.
const ttyLogLines = 6

// ttyRefresh is how often the live view redraws to move elapsed times on.
const ttyRefresh = 100 * time.Millisecond

// ttyProgress is "berth build"'s live view on a terminal, in BuildKit's
// style: a header with the elapsed time and steps done, one line per step
// (CACHED, DONE with its time, or running with its time so far) and, under
// a running step, its last output lines. Each frame is drawn over the
// previous one with cursor movements.
type ttyProgress struct {
	mu    sync.Mutex
	w     io.Writer
	width int
	now   func() time.Time
	start time.Time
	total int
	steps []*ttyStep
	byNum map[int]*ttyStep
	drawn int // lines of the last frame
	stop  chan struct{}
	done  chan struct{}
}

type ttyStep struct {
	num, total   int
	title        string
	began        time.Time
	dur          time.Duration
	finished     bool
	cached, fail bool
	logs         []string // last output lines
	partial      string   // output not yet ended by a newline
}

// newTTYProgress draws on w, lines cut to width columns (0: 80).
func newTTYProgress(w io.Writer, width int, now func() time.Time) *ttyProgress {
	if width <= 0 {
		width = 80
	}
	if now == nil {
		now = time.Now
	}
	return &ttyProgress{w: w, width: width, now: now, start: now(), byNum: map[int]*ttyStep{}}
}

// terminalWidth is the width of the terminal w, or 0.
func terminalWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil {
			return cols
		}
	}
	return 0
}

// event records a build event and redraws.
func (p *ttyProgress) event(ev build.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ev.Total > 0 {
		p.total = ev.Total
	}
	s := p.byNum[ev.Step]
	if s == nil {
		stage := ""
		if ev.Stage != "" && !strings.HasPrefix(ev.Stage, "stage-") {
			stage = ev.Stage + " "
		}
		s = &ttyStep{num: ev.Step, total: ev.Total, title: fmt.Sprintf("[%s%d/%d] %s", stage, ev.Step, ev.Total, oneLine(ev.Instruction)), began: p.now()}
		p.byNum[ev.Step] = s
		p.steps = append(p.steps, s)
	}
	switch {
	case ev.Done:
		s.finished, s.cached, s.fail, s.dur = true, ev.Cached, ev.Err != nil, ev.Duration
	case len(ev.Output) > 0:
		s.addOutput(ev.Output)
	}
	p.drawLocked()
}

func (s *ttyStep) addOutput(out []byte) {
	text := s.partial + string(out)
	lines := strings.Split(text, "\n")
	s.partial = lines[len(lines)-1]
	for _, l := range lines[:len(lines)-1] {
		s.logs = append(s.logs, strings.TrimRight(l, "\r"))
	}
	if len(s.logs) > ttyLogLines {
		s.logs = s.logs[len(s.logs)-ttyLogLines:]
	}
}

// run redraws every ttyRefresh until finish is called.
func (p *ttyProgress) run() {
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.done)
		t := time.NewTicker(ttyRefresh)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.mu.Lock()
				p.drawLocked()
				p.mu.Unlock()
			}
		}
	}()
}

// finish stops the redraws and draws the last frame.
func (p *ttyProgress) finish() {
	if p.stop != nil {
		close(p.stop)
		<-p.done
		p.stop = nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drawLocked()
}

// frame is the lines of the current view.
func (p *ttyProgress) frame() []string {
	now := p.now()
	finished := 0
	for _, s := range p.steps {
		if s.finished {
			finished++
		}
	}
	lines := []string{fmt.Sprintf("[+] Building %.1fs (%d/%d)", now.Sub(p.start).Seconds(), finished, p.total)}
	for _, s := range p.steps {
		var status string
		switch {
		case s.cached:
			lines = append(lines, p.fit(" => CACHED "+s.title, ""))
			continue
		case s.fail:
			status = fmt.Sprintf("ERROR %.1fs", s.dur.Seconds())
		case s.finished:
			status = fmt.Sprintf("%.1fs", s.dur.Seconds())
		default:
			status = fmt.Sprintf("%.1fs", now.Sub(s.began).Seconds())
		}
		lines = append(lines, p.fit(" => "+s.title, status))
		if !s.finished || s.fail {
			logs := s.logs
			if s.partial != "" {
				logs = append(logs[:len(logs):len(logs)], s.partial)
				if len(logs) > ttyLogLines {
					logs = logs[len(logs)-ttyLogLines:]
				}
			}
			for _, l := range logs {
				lines = append(lines, p.fit(" => => # "+l, ""))
			}
		}
	}
	return lines
}

// fit cuts text so that it and status (right-aligned) fit the width.
func (p *ttyProgress) fit(text, status string) string {
	text = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, text)
	room := p.width - 1 // never write the last column: some terminals wrap there
	if status != "" {
		room -= len(status) + 1
	}
	if utf8.RuneCountInString(text) > room {
		r := []rune(text)
		if room < 1 {
			room = 1
		}
		text = string(r[:room])
	}
	if status == "" {
		return text
	}
	pad := p.width - 1 - utf8.RuneCountInString(text) - len(status)
	if pad < 1 {
		pad = 1
	}
	return text + strings.Repeat(" ", pad) + status
}

// drawLocked draws the frame over the previous one.
func (p *ttyProgress) drawLocked() {
	lines := p.frame()
	var b bytes.Buffer
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	for _, l := range lines {
		b.WriteString("\r\x1b[2K")
		b.WriteString(l)
		b.WriteByte('\n')
	}
	// A shorter frame (a step's log lines gone) leaves blank lines below.
	for i := len(lines); i < p.drawn; i++ {
		b.WriteString("\r\x1b[2K\n")
	}
	if extra := p.drawn - len(lines); extra > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", extra)
	}
	p.drawn = len(lines)
	_, _ = p.w.Write(b.Bytes())
}

// oneLine is the first line of an instruction (heredocs span several).
func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}
