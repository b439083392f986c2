package events

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/berthsh/berth/internal/filterargs"
	"github.com/berthsh/berth/pkg/errdefs"
)

// Filter selects events: a time range and docker's "--filter" keys.
type Filter struct {
	// Since and Until bound the events' time (both inclusive); zero means
	// unbounded. Follow with a zero Since starts at the time of the call.
	Since, Until time.Time
	// Args maps a filter key to its values, as ParseFilters returns them.
	// Several values of one key match any of them (label: all of them,
	// as docker), different keys must all match.
	Args map[string][]string
}

// FilterKeys are the filter keys berth understands.
var FilterKeys = []string{"container", "event", "image", "label", "network", "type", "volume"}

// ParseFilters reads docker's --filter values ("key=value") into a map of
// key to values. An unknown key, a missing "=" or an unknown type fails
// with errdefs.ErrInvalidArgument naming the value.
func ParseFilters(list []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, s := range list {
		k, v, err := filterargs.Split(s)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(FilterKeys, k) {
			return nil, fmt.Errorf("invalid filter %q: use one of %s: %w", k, strings.Join(FilterKeys, ", "), errdefs.ErrInvalidArgument)
		}
		if k == "type" {
			switch v {
			case TypeContainer, TypeImage, TypeNetwork, TypeVolume:
			default:
				return nil, fmt.Errorf("invalid filter type=%s: use container, image, network or volume: %w", v, errdefs.ErrInvalidArgument)
			}
		}
		if !slices.Contains(out[k], v) {
			out[k] = append(out[k], v)
		}
	}
	return out, nil
}

// Match reports whether f selects e.
func (f Filter) Match(e Event) bool {
	if !f.inRange(e) {
		return false
	}
	a := f.Args
	return anyOf(a["type"], func(v string) bool { return v == e.Type }) &&
		anyOf(a["event"], func(v string) bool { return matchAction(v, e.Action) }) &&
		anyOf(a["container"], func(v string) bool { return e.Type == TypeContainer && matchObject(v, e) }) &&
		anyOf(a["network"], func(v string) bool { return e.Type == TypeNetwork && matchObject(v, e) }) &&
		anyOf(a["volume"], func(v string) bool { return e.Type == TypeVolume && matchObject(v, e) }) &&
		anyOf(a["image"], func(v string) bool { return matchImage(v, e) }) &&
		matchLabels(a["label"], e.Actor.Attributes)
}

func (f Filter) inRange(e Event) bool {
	t := e.TimeNano
	if !f.Since.IsZero() && t < f.Since.UnixNano() {
		return false
	}
	if !f.Until.IsZero() && t > f.Until.UnixNano() {
		return false
	}
	return true
}

// anyOf is true when no values are given or one of them matches.
func anyOf(values []string, match func(string) bool) bool {
	if len(values) == 0 {
		return true
	}
	return slices.ContainsFunc(values, match)
}

// matchAction matches "health_status" to "health_status: healthy" too, as
// docker does.
func matchAction(want, action string) bool {
	return want == action || strings.HasPrefix(action, want+":")
}

// matchObject matches an ID, a unique-enough ID prefix or a name.
func matchObject(want string, e Event) bool {
	if want == "" {
		return false
	}
	return strings.HasPrefix(e.Actor.ID, want) || e.Actor.Attributes["name"] == strings.TrimPrefix(want, "/")
}

// matchImage matches the event's image (an image event's ID or name, a
// container event's image attribute), with or without its tag.
func matchImage(want string, e Event) bool {
	attr := "image"
	if e.Type == TypeImage {
		attr = "name"
	}
	name := e.Actor.Attributes[attr]
	for _, c := range []string{e.Actor.ID, name} {
		if c == "" {
			continue
		}
		if c == want || stripTag(c) == want || strings.TrimPrefix(c, "sha256:") == want {
			return true
		}
	}
	return false
}

// stripTag drops ":tag" from a reference (not a registry's ":port").
func stripTag(ref string) string {
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') && !strings.HasPrefix(ref, "sha256:") {
		return ref[:i]
	}
	return ref
}

// matchLabels needs every "key" or "key=value" among the attributes.
func matchLabels(want []string, attrs map[string]string) bool {
	for _, w := range want {
		k, v, hasValue := strings.Cut(w, "=")
		got, ok := attrs[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}

// ParseTime reads a --since/--until value as docker does: an RFC 3339
// time (with or without fractional seconds; without a zone it is local
// time; "2006-01-02", "2006-01-02T15:04" and the like are accepted too),
// a Unix timestamp ("1700000000" or "1700000000.123456789"), or a
// duration ("10m", "1h30m") meaning now minus the duration.
func ParseTime(value string, now time.Time) (time.Time, error) {
	value = strings.TrimSpace(value)
	bad := func() (time.Time, error) {
		return time.Time{}, fmt.Errorf("invalid time %q: use an RFC 3339 time (2006-01-02T15:04:05Z), a Unix timestamp or a duration such as 10m: %w", value, errdefs.ErrInvalidArgument)
	}
	if value == "" {
		return bad()
	}
	if d, err := time.ParseDuration(value); err == nil && value != "0" {
		return now.Add(-d), nil
	}
	if t, ok := parseUnix(value); ok {
		return t, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02T15Z07:00", "2006-01-02Z07:00"} {
		if t, err := time.Parse(layout, value); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02T15", "2006-01-02", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.ParseInLocation(layout, value, time.Local); err == nil {
			return t, nil
		}
	}
	return bad()
}

// parseUnix reads "seconds[.fraction]".
func parseUnix(s string) (time.Time, bool) {
	sec, frac, hasFrac := strings.Cut(s, ".")
	if sec == "" || !allDigits(sec) || len(sec) > 12 || (hasFrac && (frac == "" || !allDigits(frac) || len(frac) > 9)) {
		return time.Time{}, false
	}
	var n, ns int64
	for _, c := range sec {
		n = n*10 + int64(c-'0')
	}
	if hasFrac {
		frac += strings.Repeat("0", 9-len(frac))
		for _, c := range frac {
			ns = ns*10 + int64(c-'0')
		}
	}
	return time.Unix(n, ns), true
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
