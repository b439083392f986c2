package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthsh/berth/pkg/events"
	"github.com/berthsh/berth/pkg/reference"
	"github.com/berthsh/berth/pkg/store"
)

type eventsOptions struct {
	since, until string
	filters      []string
	format       string
}

func newEventsCmd(g *globals) *cobra.Command {
	var o eventsOptions
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Show container and image events, as they happen",
		Long: `Print the events of containers (create, start, die, oom, health_status, stop,
kill, restart, pause, unpause, rename, destroy) and images (pull, push, tag,
untag, delete, import, load, save, build) recorded in the data directory's
journal. With --since the events already recorded are shown first; without
--until the command then waits for new ones until interrupted.

--since and --until take an RFC 3339 time ("2026-11-22T02:55:00Z"; without a
zone it is local time), a Unix timestamp ("1700000000.5") or a duration
("10m", "1h30m") meaning that long ago.

Filters (-f key=value, repeatable; several values of one key match any,
different keys must all match; labels must all match):
  type=container|image|network|volume   event=ACTION (event=health_status
  matches every health status)   container=NAME|ID   image=NAME[:TAG]|ID
  label=KEY or label=KEY=VALUE   network=NAME|ID   volume=NAME

--format: "json" prints one JSON object a line; otherwise a Go template, such
as '{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}' or
'{{json .}}'.`,
		Example: `  berth events --since 1h --until 0s
  berth events -f type=container -f event=die --format json
  berth events --filter container=web --format '{{.Time}} {{.Action}}'`,
		Args: argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runEvents(cmd.Context(), g, cmd.CommandPath(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.since, "since", "", "show events created since this time (timestamp, RFC 3339 time or duration ago)")
	f.StringVar(&o.until, "until", "", "stop at this time (timestamp, RFC 3339 time or duration ago)")
	f.StringArrayVarP(&o.filters, "filter", "f", nil, "filter the events (key=value, repeatable)")
	f.StringVar(&o.format, "format", "", `format the output: "json" or a Go template`)
	return cmd
}

func runEvents(ctx context.Context, g *globals, cmdPath string, o eventsOptions) error {
	now := time.Now()
	var f events.Filter
	var err error
	if o.since != "" {
		if f.Since, err = events.ParseTime(o.since, now); err != nil {
			return usageError{err: errors.New("--since: " + message(err)), cmd: cmdPath}
		}
	}
	if o.until != "" {
		if f.Until, err = events.ParseTime(o.until, now); err != nil {
			return usageError{err: errors.New("--until: " + message(err)), cmd: cmdPath}
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return usageError{err: fmt.Errorf("--since %s is after --until %s: nothing can match", o.since, o.until), cmd: cmdPath}
	}
	if f.Args, err = events.ParseFilters(o.filters); err != nil {
		return usageError{err: errors.New("--filter: " + message(err)), cmd: cmdPath}
	}
	print, err := eventPrinter(g.Out, o.format)
	if err != nil {
		return err
	}
	err = events.Follow(ctx, g.Root, f, print)
	if errors.Is(err, context.Canceled) {
		return nil // interrupted: the normal end of a stream
	}
	return err
}

// eventView is an event as docker's API shows it, with the legacy
// status/id/from fields for containers and images.
type eventView struct {
	Status   string       `json:"status,omitempty"`
	ID       string       `json:"id,omitempty"`
	From     string       `json:"from,omitempty"`
	Type     string       `json:"Type"`
	Action   string       `json:"Action"`
	Actor    events.Actor `json:"Actor"`
	Scope    string       `json:"scope"`
	Time     int64        `json:"time"`
	TimeNano int64        `json:"timeNano"`
}

func newEventView(e events.Event) eventView {
	v := eventView{Type: e.Type, Action: e.Action, Actor: e.Actor, Scope: "local", Time: e.Time, TimeNano: e.TimeNano}
	if v.Actor.Attributes == nil {
		v.Actor.Attributes = map[string]string{}
	}
	switch e.Type {
	case events.TypeContainer:
		v.Status, v.ID, v.From = e.Action, e.Actor.ID, e.Actor.Attributes["image"]
	case events.TypeImage:
		v.Status, v.ID = e.Action, e.Actor.ID
	}
	return v
}

// eventPrinter returns the function printing one event for --format.
func eventPrinter(w io.Writer, format string) (func(events.Event) error, error) {
	switch format {
	case "":
		return func(e events.Event) error {
			_, err := io.WriteString(w, eventLine(e))
			return err
		}, nil
	case "json":
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		return func(e events.Event) error { return enc.Encode(newEventView(e)) }, nil
	}
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	t, err := template.New("format").Funcs(templateFuncs).Parse(format)
	if err != nil {
		return nil, usageErrorf("invalid --format template %q: %v", format, err)
	}
	// A template that cannot run on an event is a usage error, found now
	// rather than when the first event arrives.
	if err := t.Execute(io.Discard, newEventView(events.Event{Type: events.TypeContainer, Action: "create"})); err != nil {
		return nil, usageErrorf("invalid --format template %q: %v", format, err)
	}
	return func(e events.Event) error { return runEventTemplate(w, t, e) }, nil
}

func runEventTemplate(w io.Writer, t *template.Template, e events.Event) error {
	var b bytes.Buffer
	if err := t.Execute(&b, newEventView(e)); err != nil {
		return usageErrorf("invalid --format template: %v", err)
	}
	_, err := fmt.Fprintln(w, strings.TrimRight(b.String(), "\n"))
	return err
}

// eventLine is docker's default line:
// "TIME TYPE ACTION ID (key=value, ...)".
func eventLine(e events.Event) string {
	var b strings.Builder
	b.WriteString(e.Timestamp().Format("2006-01-02T15:04:05.000000000Z07:00"))
	fmt.Fprintf(&b, " %s %s %s", e.Type, e.Action, e.Actor.ID)
	if len(e.Actor.Attributes) > 0 {
		keys := make([]string, 0, len(e.Actor.Attributes))
		for k := range e.Actor.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString(" (")
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(k + "=" + e.Actor.Attributes[k])
		}
		b.WriteString(")")
	}
	b.WriteString("\n")
	return b.String()
}

// emitImageEvent records an image event (ID an image ID or a reference,
// name the image's name); a lost event never fails the command.
func (g *globals) emitImageEvent(action, id, name string) {
	if name == "" {
		name = id
	}
	_ = events.Emit(g.Root, events.Event{Type: events.TypeImage, Action: action, Actor: events.Actor{ID: id, Attributes: map[string]string{"name": name}}})
}

// emitImage records an image event for img, named name (else its first
// name, else its ID).
func (g *globals) emitImage(ctx context.Context, s *store.Store, img store.Image, action, name string) {
	id, err := s.ID(ctx, img)
	if err != nil {
		return
	}
	if name == "" && len(img.Names) > 0 {
		name = img.Names[0].Familiar()
	}
	g.emitImageEvent(action, id.String(), name)
}

// imageIDOf is the ID of the image nameOrID, or "" (for events only).
func imageIDOf(ctx context.Context, s *store.Store, nameOrID string) string {
	img, err := s.Get(ctx, nameOrID)
	if err != nil {
		return ""
	}
	id, err := s.ID(ctx, img)
	if err != nil {
		return ""
	}
	return id.String()
}

// buildEventName is a build event's name: the first tag, or "" for the ID.
func buildEventName(tags []reference.Reference) string {
	if len(tags) == 0 {
		return ""
	}
	return tags[0].Familiar()
}
