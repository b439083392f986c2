// Package filterargs reads docker's "--filter key=value" arguments: the
// parts every listing's filter shares (splitting, dangling=true|false).
package filterargs

import (
	"fmt"
	"strings"

	"github.com/berthsh/berth/pkg/errdefs"
)

// Split splits one argument into its lower-cased key and its value.
func Split(arg string) (key, val string, err error) {
	key, val, ok := strings.Cut(arg, "=")
	key = strings.ToLower(strings.TrimSpace(key))
	if !ok || key == "" {
		return "", "", fmt.Errorf("bad format of filter %q (expected name=value): %w", arg, errdefs.ErrInvalidArgument)
	}
	return key, val, nil
}

// Dangling collects dangling=true|false values; the zero value has none.
type Dangling struct{ sawTrue, sawFalse bool }

// Add records one dangling= value.
func (d *Dangling) Add(val string) error {
	switch strings.ToLower(val) {
	case "true", "1":
		d.sawTrue = true
	case "false", "0":
		d.sawFalse = true
	default:
		return fmt.Errorf("invalid filter 'dangling=%s': use true or false: %w", val, errdefs.ErrInvalidArgument)
	}
	return nil
}

// Value is the filter's dangling condition: nil when none was given.
// Both true and false is an error.
func (d Dangling) Value() (*bool, error) {
	switch {
	case d.sawTrue && d.sawFalse:
		return nil, fmt.Errorf("conflicting filter values: dangling=true and dangling=false: %w", errdefs.ErrInvalidArgument)
	case d.sawTrue || d.sawFalse:
		v := d.sawTrue
		return &v, nil
	}
	return nil, nil
}
