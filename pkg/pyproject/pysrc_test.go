package pyproject

import (
	"testing"
)

func TestParseModule(t *testing.T) {
	src := `#!/usr/bin/env python3
"""Docstring mentioning app = Flask(__name__) which must not count."""
import os, sys as system
from flask import (
    Flask,
    jsonify as js,
)
from . import views
import fastapi.applications

x = 1; y = "two"
NAME = 'a' "b"
FSTR = f"{x}"
app = Flask(
    __name__,
    static_folder="static",  # a comment ( with a paren
)
s = """multi
line = Flask(__name__)
"""

def create_app(config=None):
    inner = Flask(__name__)
    inner.run(port=1)
    return inner

class Thing:
    app = Flask("nested")

if __name__ == "__main__":
    app.run(host="0.0.0.0", port=5001, debug=True)
`
	m := parseModule(src)
	if got := m.imports["Flask"]; got != "flask.Flask" {
		t.Errorf("Flask imports %q", got)
	}
	if got := m.imports["js"]; got != "flask.jsonify" {
		t.Errorf("js imports %q", got)
	}
	if got := m.imports["system"]; got != "sys" {
		t.Errorf("system imports %q", got)
	}
	if got := m.resolve("fastapi.applications.FastAPI"); got != "fastapi.applications.FastAPI" {
		t.Errorf("resolve = %q", got)
	}
	if !m.importsAny["flask"] || !m.importsAny["os"] || m.importsAny["views"] {
		t.Errorf("importsAny = %v", m.importsAny)
	}
	var calls, strs []string
	for _, a := range m.assigns {
		if a.call != nil {
			calls = append(calls, a.target+"="+m.resolve(a.call.fn))
		}
		if a.str != nil {
			strs = append(strs, a.target+"="+*a.str)
		}
	}
	if len(calls) != 1 || calls[0] != "app=flask.Flask" {
		t.Errorf("module-level calls = %q (docstrings, functions and classes must not count)", calls)
	}
	wantStrs := map[string]bool{"y=two": true, "NAME=ab": true, "s=multi\nline = Flask(__name__)\n": true}
	for _, s := range strs {
		if !wantStrs[s] {
			t.Errorf("unexpected string assignment %q", s)
		}
		delete(wantStrs, s)
	}
	if len(wantStrs) != 0 {
		t.Errorf("missing string assignments %v (f-strings must not count)", wantStrs)
	}
	if m.defs["create_app"] != 22 {
		t.Errorf("create_app at line %d, want 22", m.defs["create_app"])
	}
	if m.mainGuard != 30 {
		t.Errorf("main guard at line %d, want 30", m.mainGuard)
	}
	if len(m.mainCalls) != 1 {
		t.Fatalf("main calls = %+v", m.mainCalls)
	}
	if n, ok := m.mainCalls[0].kwInt("port"); !ok || n != 5001 || m.mainCalls[0].fn != "app.run" {
		t.Errorf("main call %+v port %d", m.mainCalls[0], n)
	}
	for _, a := range m.assigns {
		if a.target == "app" && a.line != 14 {
			t.Errorf("app assigned at line %d, want 14", a.line)
		}
	}
}

func TestTokenizeRobustness(t *testing.T) {
	// Unterminated strings and brackets must not panic or loop.
	for _, src := range []string{
		`x = "unterminated`,
		"x = '''never closed",
		"app = Flask(",
		"))))",
		"\\",
		"if __name__ == '__main__':",
		"r'\\'",
		"é = 1\napp = Flask()",
	} {
		parseModule(src)
	}
}

func TestShellFields(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`gunicorn app:app -b 0.0.0.0:80`, []string{"gunicorn", "app:app", "-b", "0.0.0.0:80"}},
		{`python -c "print('hi there')"`, []string{"python", "-c", "print('hi there')"}},
		{`a 'b c' d\ e`, []string{"a", "b c", "d e"}},
	}
	for _, tt := range tests {
		got, err := shellFields(tt.in)
		if err != nil || len(got) != len(tt.want) {
			t.Errorf("shellFields(%q) = %q, %v", tt.in, got, err)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("shellFields(%q) = %q", tt.in, got)
			}
		}
	}
	if _, err := shellFields(`a "b`); err == nil {
		t.Error("unterminated quote accepted")
	}
}
