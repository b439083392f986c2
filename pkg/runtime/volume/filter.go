package volume

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/berthsh/berth/pkg/errdefs"
)

// Filter selects volumes, as docker's volume filters do. Values of one
// kind are alternatives except labels, which must all match.
type Filter struct {
	// Names are regular expressions (or exact names); a volume matches
	// when one of them matches its name.
	Names []string
	// Drivers are driver names; only "local" exists.
	Drivers []string
	// Labels are KEY or KEY=VALUE; a volume must have every one.
	Labels []string
	// NotLabels are KEY or KEY=VALUE; a volume must have none of them.
	NotLabels []string
	// Dangling, when set, keeps only volumes no container uses (true) or
	// only volumes in use (false).
	Dangling *bool
}

// ParseListFilter parses "volume ls --filter" arguments: name=, driver=,
// label=KEY[=VALUE], label!=KEY[=VALUE] and dangling=true|false.
func ParseListFilter(args []string) (Filter, error) {
	return parseFilter(args, "dangling, driver, label and name", map[string]bool{
		"name": true, "driver": true, "label": true, "label!": true, "dangling": true,
	})
}

// ParsePruneFilter parses "volume prune --filter" arguments:
// label=KEY[=VALUE] and label!=KEY[=VALUE].
func ParsePruneFilter(args []string) (Filter, error) {
	return parseFilter(args, "label and label!", map[string]bool{"label": true, "label!": true})
}

func parseFilter(args []string, supported string, allowed map[string]bool) (Filter, error) {
	var f Filter
	var sawTrue, sawFalse bool
	for _, a := range args {
		key, val, ok := strings.Cut(a, "=")
		key = strings.ToLower(strings.TrimSpace(key))
		if !ok || key == "" {
			return Filter{}, fmt.Errorf("bad format of filter %q (expected name=value): %w", a, errdefs.ErrInvalidArgument)
		}
		if !allowed[key] {
			return Filter{}, fmt.Errorf("invalid filter '%s': supported filters are %s: %w", key, supported, errdefs.ErrInvalidArgument)
		}
		switch key {
		case "name":
			if _, err := regexp.Compile(val); err != nil {
				return Filter{}, fmt.Errorf("invalid filter 'name=%s': %v: %w", val, err, errdefs.ErrInvalidArgument)
			}
			f.Names = append(f.Names, val)
		case "driver":
			f.Drivers = append(f.Drivers, val)
		case "label", "label!":
			if val == "" {
				return Filter{}, fmt.Errorf("invalid filter '%s=': give %[1]s=KEY or %[1]s=KEY=VALUE: %w", key, errdefs.ErrInvalidArgument)
			}
			if key == "label" {
				f.Labels = append(f.Labels, val)
			} else {
				f.NotLabels = append(f.NotLabels, val)
			}
		case "dangling":
			switch strings.ToLower(val) {
			case "true", "1":
				sawTrue = true
			case "false", "0":
				sawFalse = true
			default:
				return Filter{}, fmt.Errorf("invalid filter 'dangling=%s': use true or false: %w", val, errdefs.ErrInvalidArgument)
			}
		}
	}
	if sawTrue && sawFalse {
		return Filter{}, fmt.Errorf("conflicting filter values: dangling=true and dangling=false: %w", errdefs.ErrInvalidArgument)
	}
	if sawTrue || sawFalse {
		f.Dangling = &sawTrue
	}
	return f, nil
}

// filterMatcher is a Filter with its expressions compiled.
type filterMatcher struct {
	f     Filter
	names []*regexp.Regexp
}

func (f Filter) matcher() (filterMatcher, error) {
	m := filterMatcher{f: f}
	for _, n := range f.Names {
		re, err := regexp.Compile(n)
		if err != nil {
			return filterMatcher{}, fmt.Errorf("invalid filter 'name=%s': %v: %w", n, err, errdefs.ErrInvalidArgument)
		}
		m.names = append(m.names, re)
	}
	return m, nil
}

func (m filterMatcher) match(v Volume, inUse InUseFunc) bool {
	if len(m.f.Names) > 0 {
		ok := false
		for i, re := range m.names {
			if m.f.Names[i] == v.Name || re.MatchString(v.Name) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(m.f.Drivers) > 0 {
		ok := false
		for _, d := range m.f.Drivers {
			ok = ok || d == v.Driver
		}
		if !ok {
			return false
		}
	}
	for _, l := range m.f.Labels {
		if !hasLabel(v.Labels, l) {
			return false
		}
	}
	for _, l := range m.f.NotLabels {
		if hasLabel(v.Labels, l) {
			return false
		}
	}
	if m.f.Dangling != nil {
		if dangling := len(inUse.users(v.Name)) == 0; dangling != *m.f.Dangling {
			return false
		}
	}
	return true
}

// hasLabel reports whether labels has KEY (any value) or KEY=VALUE.
func hasLabel(labels map[string]string, want string) bool {
	k, val, withValue := strings.Cut(want, "=")
	got, ok := labels[k]
	return ok && (!withValue || got == val)
}
