package filterargs

import (
	"errors"
	"testing"

	"github.com/berthsh/berth/pkg/errdefs"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		in, key, val string
		bad          bool
	}{
		{"label=a=b", "label", "a=b", false},
		{" Dangling =true", "dangling", "true", false},
		{"name=", "name", "", false},
		{"novalue", "", "", true},
		{"=x", "", "", true},
	} {
		k, v, err := Split(tc.in)
		if (err != nil) != tc.bad || k != tc.key || v != tc.val {
			t.Errorf("Split(%q) = %q, %q, %v", tc.in, k, v, err)
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Split(%q): %v is not ErrInvalidArgument", tc.in, err)
		}
	}
}

func TestDangling(t *testing.T) {
	for _, tc := range []struct {
		vals    []string
		want    string // "nil", "true", "false"
		addErr  bool
		conflic bool
	}{
		{nil, "nil", false, false},
		{[]string{"true"}, "true", false, false},
		{[]string{"0", "FALSE"}, "false", false, false},
		{[]string{"true", "false"}, "", false, true},
		{[]string{"maybe"}, "", true, false},
	} {
		var d Dangling
		var addErr error
		for _, v := range tc.vals {
			if err := d.Add(v); err != nil {
				addErr = err
			}
		}
		if (addErr != nil) != tc.addErr {
			t.Errorf("%v: Add error %v", tc.vals, addErr)
			continue
		}
		if tc.addErr {
			continue
		}
		got, err := d.Value()
		if tc.conflic {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("%v: Value error %v, want a conflict", tc.vals, err)
			}
			continue
		}
		s := "nil"
		if got != nil {
			s = map[bool]string{true: "true", false: "false"}[*got]
		}
		if err != nil || s != tc.want {
			t.Errorf("%v: Value = %s, %v; want %s", tc.vals, s, err, tc.want)
		}
	}
}
