package pyproject

import (
	"errors"
	"testing"

	"github.com/berthsh/berth/pkg/errdefs"
)

func TestSpecifierMatch(t *testing.T) {
	tests := []struct {
		spec    string
		poetry  bool
		match   []string
		nomatch []string
	}{
		{spec: ">=3.10", match: []string{"3.10.0", "3.13.1"}, nomatch: []string{"3.9.18"}},
		{spec: ">=3.9,<3.12", match: []string{"3.9.0", "3.11.9"}, nomatch: []string{"3.12.0", "3.8.10"}},
		{spec: "==3.11.*", match: []string{"3.11.0", "3.11.14"}, nomatch: []string{"3.12.0", "3.1.1"}},
		{spec: "!=3.12.*, >=3.10", match: []string{"3.11.2", "3.13.0"}, nomatch: []string{"3.12.4", "3.9.1"}},
		{spec: "==3.11", match: []string{"3.11.0", "3.11"}, nomatch: []string{"3.11.4"}},
		{spec: "!=3.11.4", match: []string{"3.11.5"}, nomatch: []string{"3.11.4"}},
		{spec: ">3.11", match: []string{"3.11.1", "3.12.0"}, nomatch: []string{"3.11.0", "3.10.9"}},
		{spec: "<=3.11.2", match: []string{"3.11.2", "3.9.0"}, nomatch: []string{"3.11.3"}},
		{spec: "<3.11", match: []string{"3.10.19"}, nomatch: []string{"3.11.0"}},
		{spec: "~=3.10", match: []string{"3.10.0", "3.13.2"}, nomatch: []string{"3.9.5", "4.0.0"}},
		{spec: "~=3.10.2", match: []string{"3.10.2", "3.10.9"}, nomatch: []string{"3.10.1", "3.11.0"}},
		{spec: "===3.12.1", match: []string{"3.12.1"}, nomatch: []string{"3.12.2"}},
		{spec: "^3.9", poetry: true, match: []string{"3.9.0", "3.13.0"}, nomatch: []string{"3.8.9", "4.0.0"}},
		{spec: "^0.2.3", poetry: true, match: []string{"0.2.3", "0.2.9"}, nomatch: []string{"0.3.0"}},
		{spec: "~3.10", poetry: true, match: []string{"3.10.4"}, nomatch: []string{"3.11.0", "3.9.0"}},
		{spec: "~3", poetry: true, match: []string{"3.13.0"}, nomatch: []string{"4.0"}},
		{spec: "3.11", poetry: true, match: []string{"3.11.0"}, nomatch: []string{"3.12.0"}},
		{spec: "3.11.*", poetry: true, match: []string{"3.11.7"}, nomatch: []string{"3.12.0"}},
		{spec: ">=3.9 <3.11", poetry: true, match: []string{"3.10.3"}, nomatch: []string{"3.11.0"}},
		{spec: ">= 3.9, < 3.11", poetry: true, match: []string{"3.9.0"}, nomatch: []string{"3.11.0"}},
		{spec: "~3.9 || ^3.12", poetry: true, match: []string{"3.9.1", "3.12.0"}, nomatch: []string{"3.10.0", "3.11.0"}},
		{spec: "*", poetry: true, match: []string{"3.9.0", "3.13.0"}},
		{spec: ">=3.12.0rc1", match: []string{"3.12.0"}, nomatch: []string{"3.11.9"}},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			s, err := ParseSpecifier(tt.spec, tt.poetry)
			if err != nil {
				t.Fatalf("ParseSpecifier: %v", err)
			}
			for _, v := range tt.match {
				if !s.Match(v) {
					t.Errorf("%q does not match %s", tt.spec, v)
				}
			}
			for _, v := range tt.nomatch {
				if s.Match(v) {
					t.Errorf("%q matches %s", tt.spec, v)
				}
			}
		})
	}
}

func TestSpecifierErrors(t *testing.T) {
	tests := []struct {
		spec   string
		poetry bool
	}{
		{"^3.9", false},    // Poetry syntax in PEP 440
		{"3.9", false},     // no operator
		{">=three", false}, // not a version
		{"~=3", false},     // ~= needs two components
		{">=3.*", false},   // wildcard with >=
		{"", false},        // empty
		{"=3.9", false},    // single =
		{"~3.9 ||", true},  // empty alternative
	}
	for _, tt := range tests {
		if _, err := ParseSpecifier(tt.spec, tt.poetry); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseSpecifier(%q, %t) = %v, want an invalid-argument error", tt.spec, tt.poetry, err)
		}
	}
}

func TestPickPython(t *testing.T) {
	mk := func(specs ...string) []versionConstraint {
		var cs []versionConstraint
		for _, s := range specs {
			p, err := ParseSpecifier(s, true)
			if err != nil {
				t.Fatal(err)
			}
			cs = append(cs, versionConstraint{origin: "test", spec: p})
		}
		return cs
	}
	tests := []struct {
		specs []string
		want  string
	}{
		{nil, "3.13"},
		{[]string{">=3.9"}, "3.13"},
		{[]string{"<3.13"}, "3.12"},
		{[]string{"^3.9", "<3.12"}, "3.11"},
		{[]string{"==3.11.*", ">=3.10"}, "3.11"},
		{[]string{">=3.11.4,<3.11.6"}, "3.11"}, // a patch range inside one minor
		{[]string{"!=3.13.*", "!=3.12.*"}, "3.11"},
		{[]string{"~=3.9.0"}, "3.9"},
	}
	for _, tt := range tests {
		got, err := pickPython(mk(tt.specs...))
		if err != nil || got != tt.want {
			t.Errorf("pickPython(%q) = %q, %v; want %q", tt.specs, got, err, tt.want)
		}
	}
	if _, err := pickPython(mk(">=3.14")); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("pickPython(>=3.14) = %v, want an error", err)
	}
	if _, err := pickPython(mk("<3.9")); err == nil {
		t.Error("pickPython(<3.9) succeeded")
	}
}
