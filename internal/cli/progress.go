package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/berthsh/berth/pkg/store"
)

// progressPrinter renders per-blob progress of a pull, push or load: a
// redrawn block of bars on a terminal, one plain line per finished blob
// otherwise, nothing when quiet. It is safe for concurrent Update calls.
type progressPrinter struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	quiet    bool
	verb     string // "Pulling", "Pushing", "Loading"
	order    []string
	rows     map[string]*progressRow
	drawn    int
	lastDraw time.Time
}

type progressRow struct {
	id              string
	complete, total int64
	status          string
}

// newProgressPrinter prints to w; verb names the work ("Pulling").
func newProgressPrinter(w io.Writer, verb string, quiet bool) *progressPrinter {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &progressPrinter{w: w, tty: tty, quiet: quiet, verb: verb, rows: map[string]*progressRow{}}
}

// Update records one progress report.
func (p *progressPrinter) Update(ev store.Progress) {
	if p.quiet || ev.Kind == "manifest" || ev.Kind == "config" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	id := ev.Digest.Hex
	if len(id) > 12 {
		id = id[:12]
	}
	r, ok := p.rows[id]
	if !ok {
		r = &progressRow{id: id}
		p.rows[id] = r
		p.order = append(p.order, id)
	}
	r.complete, r.total = ev.Complete, ev.Total
	finished := false
	switch {
	case ev.Exists:
		r.status, finished = "Already exists", true
	case ev.Done:
		r.status, finished = p.doneWord(), true
	default:
		r.status = p.verb
	}
	if !p.tty {
		if finished {
			fmt.Fprintf(p.w, "%s: %s\n", r.id, r.status)
		}
		return
	}
	if finished || time.Since(p.lastDraw) > 100*time.Millisecond {
		p.draw()
	}
}

func (p *progressPrinter) doneWord() string {
	switch p.verb {
	case "Pushing":
		return "Pushed"
	case "Loading":
		return "Loaded"
	}
	return "Pull complete"
}

func (p *progressPrinter) draw() {
	p.lastDraw = time.Now()
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	for _, id := range p.order {
		r := p.rows[id]
		b.WriteString("\x1b[2K")
		if r.status == p.verb && r.total > 0 {
			fmt.Fprintf(&b, "%s: %s %s %s/%s\n", r.id, r.status, bar(r.complete, r.total, 40),
				humanSize(r.complete), humanSize(r.total))
		} else {
			fmt.Fprintf(&b, "%s: %s\n", r.id, r.status)
		}
	}
	p.drawn = len(p.order)
	io.WriteString(p.w, b.String())
}

// Close draws the final state.
func (p *progressPrinter) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && !p.quiet && len(p.order) > 0 {
		p.draw()
	}
}

func bar(n, total int64, width int) string {
	if total <= 0 {
		return ""
	}
	fill := int(n * int64(width) / total)
	if fill > width {
		fill = width
	}
	if fill == width {
		return "[" + strings.Repeat("=", width) + "]"
	}
	return "[" + strings.Repeat("=", fill) + ">" + strings.Repeat(" ", width-fill-1) + "]"
}

// humanSize formats bytes as docker does (decimal units: kB, MB, GB).
func humanSize(n int64) string {
	f := float64(n)
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%dB", n)
	}
	return fmt.Sprintf("%.3g%s", f, units[i])
}
