package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/monitor"
	"github.com/berthsh/berth/pkg/monitor/loadtest"
	"github.com/berthsh/berth/pkg/runtime"
)

type loadtestFlags struct {
	rate        float64
	concurrency int
	duration    time.Duration
	requests    int64
	method      string
	headers     []string
	body        string
	timeout     time.Duration
	path        string
	port        uint16
	warmup      time.Duration
	format      string
	quiet       bool
	threads     int
	engine      string
}

func newLoadtestCmd(g *globals) *cobra.Command {
	var f loadtestFlags
	cmd := &cobra.Command{
		Use:   "loadtest [OPTIONS] TARGET",
		Short: "Send HTTP load to a container's published port or a URL and report latency and throughput",
		Long: `Send HTTP load to TARGET and report throughput, latency percentiles,
a latency histogram, status codes and errors.

TARGET is a running berth container (name or ID) with a published TCP
port, reached on the host at http://HOSTIP:HOSTPORT (--port picks the
container port, --path the path), or an http:// or https:// URL. For a
container, its CPU and memory use during the run are reported too.

Without --rate, -c workers send requests back to back (closed loop: the
service's maximum throughput). With --rate, requests are sent on a fixed
schedule whether or not the service keeps up (open loop), -c caps the
requests in flight (default 1000), and latency counts from each request's
scheduled time.

Exit status: 0 when at least one request succeeded (2xx), 1 when none did
(the report is printed first), 125 for bad options, 130 when interrupted.`,
		Args: argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLoadtest(cmd, g, &f, args[0])
		},
	}
	fs := cmd.Flags()
	fs.Float64Var(&f.rate, "rate", 0, "send this many requests per second (open loop); 0 for as fast as -c workers go")
	fs.IntVarP(&f.concurrency, "concurrency", "c", loadtest.DefaultConcurrency, "workers (closed loop); with --rate, the most requests in flight (1000 unless given)")
	fs.DurationVarP(&f.duration, "duration", "d", 10*time.Second, "how long to measure (with -n alone: until n requests)")
	fs.Int64VarP(&f.requests, "requests", "n", 0, "stop after this many requests")
	fs.StringVarP(&f.method, "method", "m", "GET", "HTTP method (POST when --body is given and no method)")
	fs.StringArrayVarP(&f.headers, "header", "H", nil, `request header "Name: value" (repeatable)`)
	fs.StringVar(&f.body, "body", "", "request body, or @FILE to read it from a file")
	fs.DurationVar(&f.timeout, "timeout", loadtest.DefaultTimeout, "time limit of each request, including its body")
	fs.StringVar(&f.path, "path", "/", "path (and query) to request on a container target")
	fs.Uint16Var(&f.port, "port", 0, "container port to load when the container publishes several (default: the first TCP one)")
	fs.DurationVar(&f.warmup, "warmup", 0, "send load this long before measuring, and drop its results")
	fs.StringVar(&f.format, "format", "", `output format: "" for the text report, "json", or a Go template`)
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "no progress on stderr")
	fs.IntVar(&f.threads, "threads", 0, "OS threads of the epoll engine (default: GOMAXPROCS-1, at least 1; at most -c)")
	fs.StringVar(&f.engine, "engine", "auto", `load engine: "epoll" (Linux, closed loop, http://), "goroutines", or "auto" to pick epoll where it can run`)
	return cmd
}

func runLoadtest(cmd *cobra.Command, g *globals, f *loadtestFlags, target string) error {
	ctx := cmd.Context()
	flags := cmd.Flags()
	o := loadtest.Options{
		Rate: f.rate, Concurrency: f.concurrency, Duration: f.duration, Requests: f.requests,
		Method: f.method, Timeout: f.timeout, Warmup: f.warmup,
		Threads: f.threads,
	}
	if f.threads < 0 {
		return usageErrorf("--threads must be at least 1, not %d", f.threads)
	}
	switch f.engine {
	case "auto", "":
	case string(loadtest.EngineEpoll), string(loadtest.EngineGoroutines):
		o.Engine = loadtest.Engine(f.engine)
	default:
		return usageErrorf("--engine must be auto, epoll or goroutines, not %q", f.engine)
	}
	if f.rate < 0 {
		return usageErrorf("--rate must be above zero, not %g", f.rate)
	}
	if f.concurrency < 1 {
		return usageErrorf("-c must be at least 1, not %d", f.concurrency)
	}
	if f.rate > 0 && !flags.Changed("concurrency") {
		o.Concurrency = loadtest.DefaultMaxInFlight
	}
	if f.duration < 0 {
		return usageErrorf("--duration must not be negative, not %s", f.duration)
	}
	if f.requests > 0 && !flags.Changed("duration") {
		o.Duration = 0
	}
	if f.timeout <= 0 {
		return usageErrorf("--timeout must be above zero, not %s", f.timeout)
	}
	header, err := parseHeaders(f.headers)
	if err != nil {
		return err
	}
	o.Header = header
	if f.body != "" {
		if name, ok := strings.CutPrefix(f.body, "@"); ok {
			if o.Body, err = os.ReadFile(name); err != nil {
				return usageErrorf("--body: %v", err)
			}
		} else {
			o.Body = []byte(f.body)
		}
		if !flags.Changed("method") {
			o.Method = http.MethodPost
		}
	}
	if f.format != "" && f.format != "json" {
		if _, err := parseTemplate(f.format); err != nil {
			return err
		}
	}

	label := ""
	if strings.Contains(target, "://") {
		if flags.Changed("path") || flags.Changed("port") {
			return usageErrorf("--path and --port are for container targets; put the path and port in the URL %q", target)
		}
		o.URL = target
	} else {
		if strings.ContainsAny(target, ":/") {
			return usageErrorf("%q is neither a container name nor a URL: a URL needs its scheme, as in http://%s", target, target)
		}
		c, err := loadTarget(ctx, g, target)
		if err != nil {
			return err
		}
		u, pb, err := loadtest.ContainerURL(c, f.port, f.path)
		if err != nil {
			return err
		}
		o.URL = u
		label = fmt.Sprintf("container %s, port %d/tcp", containerName(c), pb.ContainerPort)
		o.Stats = func(ctx context.Context) (monitor.Stats, error) { return monitor.ReadStats(ctx, c) }
	}

	progress := !f.quiet && isTTY(g.Err)
	if progress {
		o.Progress = func(p loadtest.Progress) {
			if p.Elapsed < 0 {
				fmt.Fprintf(g.Err, "\r\033[Kwarming up, %s to go", (-p.Elapsed).Round(time.Second))
				return
			}
			fmt.Fprintf(g.Err, "\r\033[K%6s  %d requests  %.1f requests/s  %d failed",
				p.Elapsed.Round(time.Second), p.Completed, p.RPS, p.Errors)
		}
	}
	res, runErr := loadtest.Run(ctx, o)
	if progress {
		fmt.Fprint(g.Err, "\r\033[K")
	}
	if res == nil {
		if errors.Is(runErr, errdefs.ErrInvalidArgument) {
			return usageError{err: runErr, cmd: cmd.CommandPath()}
		}
		return runErr
	}
	res.Target = label
	switch f.format {
	case "":
		err = res.WriteText(g.Out)
	case "json":
		enc := json.NewEncoder(g.Out)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		err = enc.Encode(res)
	default:
		err = writeFormatted(g.Out, f.format, []any{res})
	}
	switch {
	case runErr != nil:
		return runErr
	case err != nil:
		return err
	case res.Requests == 0:
		return exitCodeError{code: exitFailure, msg: "no request completed"}
	case res.Succeeded == 0:
		return exitCodeError{code: exitFailure, msg: fmt.Sprintf("all %d requests failed", res.Requests)}
	}
	return nil
}

// loadTarget looks up the container to load; an unknown name is a usage
// error.
func loadTarget(ctx context.Context, g *globals, name string) (runtime.Container, error) {
	m, _, err := g.openManager(ctx)
	if err != nil {
		return runtime.Container{}, err
	}
	c, err := m.Get(ctx, name)
	if errors.Is(err, errdefs.ErrNotFound) {
		return c, usageErrorf("no such container %q: give a running container's name or ID, or a URL such as http://127.0.0.1:8000/", name)
	}
	return c, err
}

// parseHeaders parses -H "Name: value" flags.
func parseHeaders(list []string) (http.Header, error) {
	h := http.Header{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, ":")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, usageErrorf(`bad header %q: write it as "Name: value"`, kv)
		}
		h.Add(k, strings.TrimSpace(v))
	}
	return h, nil
}
