package volume

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/berthsh/berth/internal/filterargs"
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
	var dangling filterargs.Dangling
	for _, a := range args {
		key, val, err := filterargs.Split(a)
		if err != nil {
			return Filter{}, err
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
			if err := dangling.Add(val); err != nil {
				return Filter{}, err
			}
		}
	}
	var err error
	if f.Dangling, err = dangling.Value(); err != nil {
		return Filter{}, err
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
