package pyproject

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/berthsh/berth/pkg/errdefs"
)

const defaultPort = 8000

// plan picks the server, the port and the command.
func (d *detector) plan() error {
	p := d.p
	if k := firstNonEmpty(d.opts.Kind, d.berth.Kind); k != "" {
		p.Kind = Kind(k)
		d.reason("kind %s set by %s", k, overrideSource(d.opts.Kind != "", "--kind", "kind"))
	}
	if p.Kind == "" {
		p.Kind = KindScript
	}
	if err := d.pickPort(); err != nil {
		return err
	}
	// Procfile release.
	for _, pr := range p.Procfile {
		if pr.Name == "release" {
			p.Release = procCommand(pr.Command)
		}
	}
	if p.Command != nil {
		if p.Kind == KindWeb {
			p.Server = serverOf(p.Command)
		}
		return nil
	}
	// A Procfile command.
	for _, pr := range p.Procfile {
		if (pr.Name == "web" && p.Kind == KindWeb) || (pr.Name == "worker" && p.Kind == KindWorker) {
			p.Command = procCommand(pr.Command)
			if p.Kind == KindWeb {
				p.Server = serverOf(p.Command)
			}
			return nil
		}
	}
	switch p.Kind {
	case KindWeb:
		return d.webCommand()
	case KindWorker:
		switch {
		case p.App.Framework == FrameworkCelery:
			p.Command = []string{"celery", "-A", p.App.Module, "worker", "--loglevel=INFO"}
			if !d.hasDist("celery") {
				d.warn("celery is not a declared dependency; add it or the worker will not start")
			}
		case p.App.Framework == FrameworkRQ:
			p.Command = []string{"rq", "worker"}
		default:
			p.Command = []string{"python3", "-m", p.App.Module}
		}
	default:
		if strings.HasSuffix(p.App.Module, ".py") {
			p.Command = []string{"python3", p.App.Module}
		} else if p.App.Module != "" {
			p.Command = []string{"python3", "-m", p.App.Module}
		} else {
			return fmt.Errorf("no command to run: set [tool.berth] command in pyproject.toml: %w", errdefs.ErrNotFound)
		}
	}
	return nil
}

// procCommand turns a Procfile command into an exec-form command: split into
// words when it uses no shell features, else run by /bin/sh with exec so the
// process still receives signals. $PORT is set by the image.
func procCommand(cmd string) []string {
	if !strings.ContainsAny(cmd, "$&|;<>`*?(){}~") {
		if f, err := shellFields(cmd); err == nil && len(f) > 0 {
			return f
		}
	}
	if !strings.ContainsAny(cmd, "&|;") {
		cmd = "exec " + cmd
	}
	return []string{"/bin/sh", "-c", cmd}
}

func serverOf(cmd []string) Server {
	words := cmd
	if len(cmd) == 3 && cmd[0] == "/bin/sh" {
		words = strings.Fields(strings.TrimPrefix(cmd[2], "exec "))
	}
	for i, w := range words {
		switch w {
		case "gunicorn":
			return ServerGunicorn
		case "uvicorn":
			return ServerUvicorn
		case "flask":
			return ServerFlask
		case "runserver":
			return ServerDjango
		}
		if w == "-m" && i+1 < len(words) {
			switch words[i+1] {
			case "gunicorn":
				return ServerGunicorn
			case "uvicorn":
				return ServerUvicorn
			case "flask":
				return ServerFlask
			}
		}
	}
	return ServerPython
}

var (
	bindPortRE  = regexp.MustCompile(`(?:^|\s)(?:-b|--bind)[= ]\S*:(\d+)\b`)
	portFlagRE  = regexp.MustCompile(`(?:^|\s)(?:-p|--port)[= ](\d+)\b`)
	runserverRE = regexp.MustCompile(`runserver\s+(?:\S+:)?(\d+)\b`)
)

// pickPort: override, [tool.berth], a port in the Procfile web command, a
// port in the code (app.run(port=...), uvicorn.run(..., port=...)), PORT
// in .env/.flaskenv, else 8000.
func (d *detector) pickPort() error {
	p := d.p
	if p.Kind != KindWeb {
		return nil
	}
	switch {
	case d.opts.Port != 0:
		if d.opts.Port < 1 || d.opts.Port > 65535 {
			return fmt.Errorf("port %d: want 1 to 65535: %w", d.opts.Port, errdefs.ErrInvalidArgument)
		}
		p.Port = d.opts.Port
		d.reason("port %d set by --port", p.Port)
		return nil
	case d.berth.Port != 0:
		p.Port = d.berth.Port
		d.reason("port %d set by [tool.berth] port in pyproject.toml", p.Port)
		return nil
	}
	for _, pr := range p.Procfile {
		if pr.Name != "web" {
			continue
		}
		for _, re := range []*regexp.Regexp{bindPortRE, portFlagRE, runserverRE} {
			if m := re.FindStringSubmatch(pr.Command); m != nil {
				n, _ := strconv.Atoi(m[1])
				if n > 0 && n < 65536 {
					p.Port = n
					d.reason("port %d from the Procfile web command", n)
					return nil
				}
			}
		}
	}
	if f := p.App.File; f != "" {
		if m := d.files[f]; m != nil {
			for _, c := range m.calls {
				if n, ok := c.kwInt("port"); ok && n > 0 && n < 65536 &&
					(strings.HasSuffix(c.fn, ".run") || c.fn == "run") {
					p.Port = n
					d.reason("port %d from %s(port=%d) in %s:%d", n, c.fn, n, f, c.line)
					return nil
				}
			}
		}
	}
	if n, where := envPort(d.root); n != 0 {
		p.Port = n
		d.reason("port %d from PORT in %s", n, where)
		return nil
	}
	p.Port = defaultPort
	d.reason("port %d (default; no port found in the code, Procfile or .env)", defaultPort)
	return nil
}

// gracefulTimeout is gunicorn's --graceful-timeout in seconds: below the
// 10 s that berth stop and docker stop wait between SIGTERM and SIGKILL.
const gracefulTimeout = 8

// webCommand picks the server for a web app and builds its command.
func (d *detector) webCommand() error {
	p := d.p
	port := strconv.Itoa(p.Port)
	ref := p.App.Module + ":" + p.App.Attr
	if p.App.Factory {
		ref += "()"
	}
	asgi := p.App.Framework == FrameworkFastAPI || p.App.Framework == FrameworkStarlette
	server := Server(firstNonEmpty(d.opts.Server, d.berth.Server))
	switch {
	case server != "":
		switch server {
		case ServerGunicorn, ServerUvicorn, ServerFlask, ServerDjango, ServerPython:
		default:
			return fmt.Errorf("server %q: want gunicorn, uvicorn, flask, django or python: %w", server, errdefs.ErrInvalidArgument)
		}
		if server == ServerFlask && p.App.Framework != FrameworkFlask || server == ServerDjango && p.App.Framework != FrameworkDjango {
			return fmt.Errorf("server %s does not serve a %s app: %w", server, orNone(p.App.Framework), errdefs.ErrInvalidArgument)
		}
		d.reason("server %s set by %s", server, overrideSource(d.opts.Server != "", "--server", "server"))
	case p.App.Attr == "":
		// A script or module made a web process: it serves itself.
		server = ServerPython
		d.reason("%s has no application object: it runs with python3 and must listen on port %d itself", orDefault(p.App.Module, "the app"), p.Port)
	default:
		switch {
		case asgi && d.hasDist("uvicorn"):
			server = ServerUvicorn
			d.reason("server uvicorn: %s is an ASGI framework and uvicorn is a dependency", p.App.Framework)
		case asgi:
			server = ServerUvicorn
			d.warn("uvicorn is not a declared dependency of this %s app: the image runs python3 -m uvicorn, which fails unless uvicorn is installed; add uvicorn to your dependencies", p.App.Framework)
		case d.hasDist("gunicorn"):
			server = ServerGunicorn
			d.reason("server gunicorn: gunicorn is a dependency")
		case p.App.Framework == FrameworkFlask:
			server = ServerFlask
			d.warn("gunicorn is not a dependency: using Flask's development server (flask run); add gunicorn for production")
		case p.App.Framework == FrameworkDjango:
			server = ServerDjango
			d.warn("gunicorn is not a dependency: using Django's development server (manage.py runserver); add gunicorn for production")
		case d.hasDist("uvicorn"):
			server = ServerUvicorn
			d.reason("server uvicorn: uvicorn is a dependency")
		default:
			server = ServerPython
			d.warn("no server (gunicorn, uvicorn) is a dependency and the framework is unknown: running the module with python3")
		}
	}
	p.Server = server
	switch server {
	case ServerGunicorn:
		// No --bind: gunicorn binds 0.0.0.0:$PORT when PORT is set, and the
		// image sets it, so `-e PORT=...` moves the server. The graceful
		// timeout (30 s by default) stays under the 10 s a stop waits
		// before SIGKILL, so workers finish their requests and exit cleanly.
		p.Command = []string{"gunicorn", "--graceful-timeout", strconv.Itoa(gracefulTimeout)}
		if asgi {
			p.Command = append(p.Command, "--worker-class", "uvicorn.workers.UvicornWorker")
		}
		p.Command = append(p.Command, ref)
	case ServerUvicorn:
		p.Command = []string{"uvicorn"}
		if !d.hasDist("uvicorn") {
			p.Command = []string{"python3", "-m", "uvicorn"}
		}
		p.Command = append(p.Command, p.App.Module+":"+p.App.Attr, "--host", "0.0.0.0", "--port", port)
		if p.App.Factory {
			p.Command = append(p.Command, "--factory")
		}
		if !asgi {
			p.Command = append(p.Command, "--interface", "wsgi")
		}
	case ServerFlask:
		p.Command = []string{"python3", "-m", "flask", "--app", ref, "run", "--host", "0.0.0.0", "--port", port}
	case ServerDjango:
		p.Command = []string{"python3", "manage.py", "runserver", "--noreload", "0.0.0.0:" + port}
	case ServerPython:
		if strings.HasSuffix(p.App.Module, ".py") {
			p.Command = []string{"python3", p.App.Module}
		} else if f := p.App.File; f != "" && !strings.HasSuffix(f, "__init__.py") {
			p.Command = []string{"python3", f}
		} else {
			p.Command = []string{"python3", "-m", p.App.Module}
		}
	}
	return nil
}

func orNone(f Framework) string {
	if f == "" {
		return "non-framework"
	}
	return string(f)
}
