package pyproject

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/berthsh/berth/pkg/errdefs"
)

// candidate is a possible entry point found in the code.
type candidate struct {
	fw      Framework
	kind    Kind
	file    string
	line    int
	module  string
	attr    string
	factory bool
	what    string // source text, "app = Flask(__name__)"
}

func (c candidate) String() string {
	return fmt.Sprintf("%s:%d (%s)", c.file, c.line, c.what)
}

func (c candidate) app() App {
	return App{Framework: c.fw, Module: c.module, Attr: c.attr, Factory: c.factory, File: c.file, Line: c.line}
}

// appConstructors maps qualified constructors to frameworks.
var appConstructors = map[string]Framework{
	"flask.Flask":                      FrameworkFlask,
	"flask.app.Flask":                  FrameworkFlask,
	"fastapi.FastAPI":                  FrameworkFastAPI,
	"fastapi.applications.FastAPI":     FrameworkFastAPI,
	"starlette.applications.Starlette": FrameworkStarlette,
	"celery.Celery":                    FrameworkCelery,
	"celery.app.Celery":                FrameworkCelery,
}

// shorten returns s on one line, cut to at most n bytes.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n-3] + "..."
	}
	return s
}

var factoryNames = map[string]bool{"create_app": true, "make_app": true}

type candidates struct {
	web, factories, celery, scripts, pkgMains []candidate
}

func (d *detector) findCandidates() candidates {
	var cs candidates
	for _, f := range d.order {
		m := d.files[f]
		mod := moduleName(f)
		objInFile := false
		for _, a := range m.assigns {
			if a.call == nil {
				continue
			}
			fw, ok := appConstructors[m.resolve(a.call.fn)]
			if !ok {
				continue
			}
			c := candidate{fw: fw, kind: KindWeb, file: f, line: a.line, module: mod, attr: a.target,
				what: a.target + " = " + shorten(a.expr, 60)}
			if fw == FrameworkCelery {
				c.kind = KindWorker
				cs.celery = append(cs.celery, c)
				continue
			}
			objInFile = true
			cs.web = append(cs.web, c)
		}
		if !objInFile && m.importsAny["flask"] {
			names := make([]string, 0, len(m.defs))
			for n := range m.defs {
				if factoryNames[n] {
					names = append(names, n)
				}
			}
			sort.Strings(names)
			for _, n := range names {
				cs.factories = append(cs.factories, candidate{fw: FrameworkFlask, kind: KindWeb, file: f, line: m.defs[n],
					module: mod, attr: n, factory: true, what: "def " + n + "()"})
			}
		}
		if path.Base(f) == "__main__.py" && strings.Contains(f, "/") {
			pkg := moduleName(path.Dir(f) + "/__init__.py")
			cs.pkgMains = append(cs.pkgMains, candidate{kind: KindWorker, file: f, line: 1, module: pkg, what: "package __main__"})
		} else if m.mainGuard > 0 {
			cs.scripts = append(cs.scripts, candidate{kind: KindScript, file: f, line: m.mainGuard, module: f,
				what: `if __name__ == "__main__"`})
		}
	}
	return cs
}

// best returns the single most likely candidate, or an ambiguity error. A
// candidate named app/application at the shallowest depth is preferred;
// anything else equal is ambiguous.
func best(list []candidate, what string) (candidate, error) {
	if len(list) == 1 {
		return list[0], nil
	}
	score := func(c candidate) int {
		s := 0
		if c.attr == "app" || c.attr == "application" || c.attr == "create_app" {
			s += 2
		}
		return s
	}
	top := -1
	var tops []candidate
	for _, c := range list {
		switch s := score(c); {
		case s > top:
			top, tops = s, []candidate{c}
		case s == top:
			tops = append(tops, c)
		}
	}
	if len(tops) == 1 {
		return tops[0], nil
	}
	e := &AmbiguityError{What: what, Flag: "--app", Key: "app", Example: tops[0].app().Ref()}
	for _, c := range tops {
		e.Candidates = append(e.Candidates, fmt.Sprintf("%s at %s", c.app().Ref(), c))
	}
	return candidate{}, e
}

var appRefRE = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)(?::([A-Za-z_][A-Za-z0-9_]*)(\(\))?)?$`)

// detectApp decides the entry point: an override (--app or [tool.berth]
// app/command), the Procfile, Django's manage.py, a web app object, a Flask
// factory, a Celery app, RQ, a package __main__, a script, a console
// script.
func (d *detector) detectApp() error {
	p := d.p
	cs := d.findCandidates()
	if k := firstNonEmpty(d.opts.Kind, d.berth.Kind); k != "" {
		switch Kind(k) {
		case KindWeb, KindWorker, KindScript:
		default:
			return fmt.Errorf("kind %q: want web, worker or script: %w", k, errdefs.ErrInvalidArgument)
		}
	}
	if fw := firstNonEmpty(d.opts.Framework, d.berth.Framework); fw != "" {
		switch Framework(fw) {
		case FrameworkFlask, FrameworkFastAPI, FrameworkStarlette, FrameworkDjango, FrameworkCelery, FrameworkRQ:
		default:
			return fmt.Errorf("framework %q: want flask, fastapi, starlette, django, celery or rq: %w", fw, errdefs.ErrInvalidArgument)
		}
	}

	// 1. An explicit app.
	if ref := firstNonEmpty(d.opts.App, d.berth.App); ref != "" {
		src := "--app"
		if d.opts.App == "" {
			src = "[tool.berth] app in pyproject.toml"
		}
		return d.appFromRef(ref, src, cs)
	}
	// 2. An explicit command: the kind and framework may still be found.
	if cmd := d.overrideCommand(); cmd != nil {
		p.Command = cmd
		if p.Kind == "" {
			p.Kind = KindScript
			if d.opts.Port != 0 || d.berth.Port != 0 {
				p.Kind = KindWeb
			}
		}
		d.reason("command set by %s", d.commandSource())
		return nil
	}
	// 3. Procfile (only the process of the requested kind, if one is).
	names := []string{"web", "worker"}
	if k := firstNonEmpty(d.opts.Kind, d.berth.Kind); k == "web" || k == "worker" {
		names = []string{k}
	}
	for _, name := range names {
		for _, pr := range p.Procfile {
			if pr.Name != name {
				continue
			}
			p.Kind = KindWeb
			if name == "worker" {
				p.Kind = KindWorker
			}
			d.reason("Procfile %s process: %s", pr.Name, pr.Command)
			d.appFromProcfileCommand(pr.Command, cs)
			return nil
		}
	}
	// 4. Django.
	if d.exists("manage.py") {
		return d.django()
	}
	// 5. Web application objects, then Flask factories.
	if len(cs.web) > 0 {
		c, err := best(cs.web, "application")
		if err != nil {
			return err
		}
		d.useCandidate(c, fmt.Sprintf("found %s app %s in %s:%d", c.fw, c.what, c.file, c.line))
		return nil
	}
	if len(cs.factories) > 0 {
		c, err := best(cs.factories, "application factory")
		if err != nil {
			return err
		}
		d.useCandidate(c, fmt.Sprintf("found Flask application factory %s in %s:%d", c.what, c.file, c.line))
		return nil
	}
	// 6. Workers.
	if len(cs.celery) > 0 {
		c, err := best(cs.celery, "Celery app")
		if err != nil {
			return err
		}
		d.useCandidate(c, fmt.Sprintf("found Celery app %s in %s:%d", c.what, c.file, c.line))
		return nil
	}
	if d.hasDist("rq") {
		p.Kind, p.App.Framework = KindWorker, FrameworkRQ
		d.reason("depends on rq and has no web app: runs an RQ worker")
		return nil
	}
	if len(cs.pkgMains) > 0 {
		if len(cs.pkgMains) > 1 {
			e := &AmbiguityError{What: "entry point", Flag: "--app", Key: "app", Example: cs.pkgMains[0].module}
			for _, c := range cs.pkgMains {
				e.Candidates = append(e.Candidates, fmt.Sprintf("python -m %s (%s)", c.module, c.file))
			}
			return e
		}
		c := cs.pkgMains[0]
		d.useCandidate(c, fmt.Sprintf("found %s: runs python -m %s", c.file, c.module))
		return nil
	}
	// 7. Scripts.
	if len(cs.scripts) > 0 {
		c, err := bestScript(cs.scripts)
		if err != nil {
			return err
		}
		d.useCandidate(c, fmt.Sprintf("found %s in %s:%d", c.what, c.file, c.line))
		return nil
	}
	// 8. One console script.
	if len(d.scripts) == 1 {
		for name, target := range d.scripts {
			p.Kind = KindScript
			p.Command = []string{name}
			p.Deps.InstallProject = true
			d.reason("runs the console script %s = %q from [project.scripts]", name, target)
		}
		return nil
	}
	// 9. A single top-level file.
	var top []string
	for _, f := range d.order {
		if !strings.Contains(f, "/") {
			top = append(top, f)
		}
	}
	if len(top) == 1 {
		c := candidate{kind: KindScript, file: top[0], line: 1, module: top[0]}
		d.useCandidate(c, fmt.Sprintf("%s is the only top-level Python file", top[0]))
		return nil
	}
	return fmt.Errorf("no entry point found: no web app (Flask, FastAPI, Starlette, Django), worker (Celery, RQ, package __main__.py), Procfile or script with if __name__ == \"__main__\"; set one with --app module:attr or [tool.berth] app/command in pyproject.toml: %w", errdefs.ErrNotFound)
}

// bestScript prefers root-level scripts, then conventional names.
func bestScript(list []candidate) (candidate, error) {
	var root []candidate
	for _, c := range list {
		if !strings.Contains(c.file, "/") {
			root = append(root, c)
		}
	}
	if len(root) == 0 {
		root = list
	}
	if len(root) == 1 {
		return root[0], nil
	}
	for _, name := range []string{"main.py", "app.py", "run.py", "server.py", "bot.py", "worker.py"} {
		for _, c := range root {
			if c.file == name {
				return c, nil
			}
		}
	}
	e := &AmbiguityError{What: "script", Flag: "--app", Key: "app", Example: root[0].file}
	for _, c := range root {
		e.Candidates = append(e.Candidates, c.String())
	}
	return candidate{}, e
}

func (d *detector) useCandidate(c candidate, why string) {
	d.p.Kind = c.kind
	d.p.App = c.app()
	d.reason("%s", why)
}

func (d *detector) overrideCommand() []string {
	if d.opts.Command != nil {
		return d.opts.Command
	}
	return d.berth.Command
}

func (d *detector) commandSource() string {
	if d.opts.Command != nil {
		return "--command"
	}
	return "[tool.berth] command in pyproject.toml"
}

// appFromRef resolves an explicit "module:attr", "module" or "file.py".
func (d *detector) appFromRef(ref, src string, cs candidates) error {
	if strings.HasSuffix(ref, ".py") {
		if _, ok := d.files[ref]; !ok && !d.exists(ref) {
			return fmt.Errorf("%s %q: no such file in the project: %w", src, ref, errdefs.ErrNotFound)
		}
		d.useCandidate(candidate{kind: KindScript, file: ref, module: ref}, fmt.Sprintf("script %s set by %s", ref, src))
		return nil
	}
	m := appRefRE.FindStringSubmatch(ref)
	if m == nil {
		return fmt.Errorf("%s %q: want module:attr (e.g. api.main:app), module or file.py: %w", src, ref, errdefs.ErrInvalidArgument)
	}
	c := candidate{kind: KindWeb, module: m[1], attr: m[2], factory: m[3] != ""}
	c.file = d.moduleFile(c.module)
	if c.attr == "" {
		// A module: a package with __main__ or a script module.
		c.kind = KindScript
		if d.moduleFile(c.module+".__main__") != "" {
			c.kind = KindWorker
		}
	}
	// Classify from the code when possible.
	for _, list := range [][]candidate{cs.web, cs.factories, cs.celery} {
		for _, k := range list {
			if k.module == c.module && k.attr == c.attr {
				c.fw, c.kind, c.line, c.what = k.fw, k.kind, k.line, k.what
				c.factory = c.factory || k.factory
			}
		}
	}
	if c.fw == "" && c.attr != "" {
		if strings.HasSuffix(c.module, ".wsgi") || strings.HasSuffix(c.module, ".asgi") {
			if d.exists("manage.py") || d.hasDist("django") {
				if err := d.django(); err != nil {
					return err
				}
				d.p.App.Module, d.p.App.Attr = c.module, c.attr
				d.reason("app %s set by %s", ref, src)
				return nil
			}
		}
		c.fw = d.frameworkFromDeps()
	}
	if fw := firstNonEmpty(d.opts.Framework, d.berth.Framework); fw != "" {
		c.fw = Framework(fw)
	}
	if c.fw == FrameworkCelery {
		c.kind = KindWorker
	}
	if c.file == "" {
		d.warn("app %s: module %s is not a file in the project; assuming it is importable at run time", ref, c.module)
	}
	d.useCandidate(c, fmt.Sprintf("app %s set by %s", ref, src))
	return nil
}

// frameworkFromDeps guesses the framework from the declared dependencies
// when the code does not show it (an explicit --app naming an object built
// in an unusual way).
func (d *detector) frameworkFromDeps() Framework {
	for _, x := range []struct {
		dist string
		fw   Framework
	}{{"django", FrameworkDjango}, {"fastapi", FrameworkFastAPI}, {"starlette", FrameworkStarlette}, {"flask", FrameworkFlask}, {"celery", FrameworkCelery}} {
		if hasDep(d.reqs, x.dist) {
			return x.fw
		}
	}
	return FrameworkNone
}

// appFromProcfileCommand fills App from a Procfile command
// ("gunicorn app:app -b ...", "celery -A tasks worker", "python -m worker").
func (d *detector) appFromProcfileCommand(cmd string, cs candidates) {
	f, err := shellFields(cmd)
	if err != nil || len(f) == 0 {
		return
	}
	all := append(append(append([]candidate{}, cs.web...), cs.factories...), cs.celery...)
	for i, arg := range f {
		if i > 0 && (f[i-1] == "-A" || f[i-1] == "--app") || strings.HasPrefix(arg, "--app=") {
			arg = strings.TrimPrefix(arg, "--app=")
		} else if strings.HasPrefix(arg, "-") {
			continue
		}
		m := appRefRE.FindStringSubmatch(arg)
		if m == nil || (m[2] == "" && !(i > 0 && (f[i-1] == "-A" || f[i-1] == "--app" || f[i-1] == "-m"))) {
			continue
		}
		for _, c := range all {
			if c.module == m[1] && (m[2] == "" || c.attr == m[2]) {
				d.p.App = c.app()
				return
			}
		}
		d.p.App = App{Module: m[1], Attr: m[2], Factory: m[3] != "", File: d.moduleFile(m[1]), Framework: d.frameworkFromDeps()}
		return
	}
}

// django reads manage.py and the settings module.
func (d *detector) django() error {
	p := d.p
	p.Kind = KindWeb
	p.App.Framework = FrameworkDjango
	p.App.ManagePy = "manage.py"
	settings := ""
	if m := d.files["manage.py"]; m != nil {
		for _, c := range m.calls {
			if !strings.HasSuffix(c.fn, "environ.setdefault") || len(c.pos) != 2 {
				continue
			}
			if k, ok := stringValue(c.pos[0]); ok && k == "DJANGO_SETTINGS_MODULE" {
				settings, _ = stringValue(c.pos[1])
			}
		}
	}
	if settings == "" {
		var found []string
		for _, f := range d.order {
			if path.Base(f) == "settings.py" {
				found = append(found, moduleName(f))
			}
		}
		if len(found) > 1 {
			return &AmbiguityError{What: "Django settings module", Candidates: found, Flag: "--app", Key: "app", Example: strings.TrimSuffix(found[0], ".settings") + ".wsgi:application"}
		}
		if len(found) == 1 {
			settings = found[0]
		}
	}
	if settings == "" {
		return fmt.Errorf("manage.py found but no Django settings module (DJANGO_SETTINGS_MODULE in manage.py or a settings.py); set the app with --app mysite.wsgi:application: %w", errdefs.ErrNotFound)
	}
	p.App.DjangoSettings = settings
	d.reason("Django project: manage.py sets DJANGO_SETTINGS_MODULE=%s", settings)
	sf := d.moduleFile(settings)
	// Split settings (mysite/settings/{base,production}.py importing each
	// other with *): read the named module first, then its siblings.
	settingsFiles := []string{sf}
	if sf != "" && path.Base(path.Dir(sf)) == "settings" {
		for _, f := range d.order {
			if path.Dir(f) == path.Dir(sf) && f != sf {
				settingsFiles = append(settingsFiles, f)
			}
		}
	}
	wsgi := ""
	staticSeen := false
	for _, f := range settingsFiles {
		sm := d.files[f]
		if sm == nil {
			continue
		}
		for _, a := range sm.assigns {
			switch a.target {
			case "WSGI_APPLICATION":
				if a.str != nil && wsgi == "" {
					wsgi = *a.str
					d.reason("WSGI_APPLICATION = %q in %s:%d", wsgi, f, a.line)
				}
			case "STATIC_ROOT":
				if !staticSeen {
					staticSeen = true
					if a.expr != "None" {
						p.App.StaticRoot = a.expr
						d.reason("STATIC_ROOT = %s in %s:%d: static files are collected at build time", shorten(a.expr, 60), f, a.line)
					}
				}
			}
		}
	}
	if wsgi == "" {
		// Django's startproject layout: <project>/wsgi.py next to the
		// settings (module or package).
		parts := strings.Split(settings, ".")
		for n := len(parts) - 1; n >= 1; n-- {
			mod := strings.Join(parts[:n], ".") + ".wsgi"
			if d.moduleFile(mod) != "" {
				wsgi = mod + ".application"
				break
			}
		}
		if wsgi == "" {
			wsgi = parts[0] + ".wsgi.application"
		}
		d.reason("no WSGI_APPLICATION in the settings: using Django's default %s", wsgi)
	}
	i := strings.LastIndex(wsgi, ".")
	if i <= 0 {
		return &FileError{File: sf, Msg: fmt.Sprintf("WSGI_APPLICATION %q is not module.attribute", wsgi)}
	}
	p.App.WSGIApplication = wsgi
	p.App.Module, p.App.Attr = wsgi[:i], wsgi[i+1:]
	p.App.File = d.moduleFile(p.App.Module)
	p.Release = []string{"python3", "manage.py", "migrate", "--noinput"}
	return nil
}
