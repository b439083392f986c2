package registry

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/sirupsen/logrus"

	// Storage driver and access controller used by the embedded server;
	// distribution registers them by name in init functions.
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"

	"github.com/berthsh/berth/pkg/errdefs"
)

const (
	// DefaultServerAddr is the address ServerOptions.Addr falls back to.
	DefaultServerAddr = "127.0.0.1:5000"
	// ServerRealm is the basic-auth realm the server announces when it
	// checks passwords against an htpasswd file.
	ServerRealm = "berth-registry"
	// defaultServerDrainTimeout bounds how long Serve waits for requests in
	// flight after its context is done before it closes their connections.
	defaultServerDrainTimeout = 10 * time.Second
	// serverReadHeaderTimeout protects against clients that open a
	// connection and never finish sending headers.
	serverReadHeaderTimeout = 30 * time.Second
)

// ServerOptions configures an embedded registry server.
type ServerOptions struct {
	// Addr is the TCP address Listen and ListenAndServe bind
	// (DefaultServerAddr if empty). Serve ignores it.
	Addr string
	// Root is the directory holding the registry's content. It is created
	// if missing. Required.
	Root string
	// HtpasswdPath, if set, names an htpasswd file with bcrypt entries;
	// every request must then carry matching basic-auth credentials. The
	// file is re-read when it changes.
	HtpasswdPath string
	// TLSCert and TLSKey name PEM files with the server certificate (chain)
	// and its private key. Both or neither must be set; with them the
	// server speaks HTTPS only.
	TLSCert, TLSKey string
	// HTTPSecret signs upload session state. Servers sharing one Root
	// behind a load balancer need the same value; if empty a random secret
	// generated once per process is used.
	HTTPSecret string
	// DrainTimeout bounds how long Serve waits for requests in flight when
	// its context is done (10s if zero).
	DrainTimeout time.Duration
}

// Server is an OCI distribution registry (distribution/distribution v3)
// storing content in a local directory. Create it with NewServer; run it
// with Serve, or mount Handler in a server of your own and call Close when
// done.
type Server struct {
	root     string
	addr     string
	drain    time.Duration
	tls      *tls.Config
	app      *handlers.App
	handler  http.Handler
	serving  sync.Once
	closeOne sync.Once
}

var (
	processSecretOnce sync.Once
	processSecret     string
	processSecretErr  error

	logrusOnce sync.Once
)

// NewServer validates opts and builds a registry server. It creates
// opts.Root if needed but does not listen yet. ctx is used only while
// building; the server's lifetime is governed by Serve or Close.
func NewServer(ctx context.Context, opts ServerOptions) (*Server, error) {
	if opts.Root == "" {
		return nil, fmt.Errorf("registry server: %w: storage root directory must be set", errdefs.ErrInvalidArgument)
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("registry server: resolve storage root %q: %w", opts.Root, err)
	}
	if fi, err := os.Stat(root); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("registry server: %w: storage root %s is not a directory", errdefs.ErrInvalidArgument, root)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("registry server: create storage root %s: %w", root, classifyServerFSError(err))
	}

	s := &Server{root: root, addr: opts.Addr, drain: opts.DrainTimeout}
	if s.addr == "" {
		s.addr = DefaultServerAddr
	}
	if s.drain <= 0 {
		s.drain = defaultServerDrainTimeout
	}

	if (opts.TLSCert == "") != (opts.TLSKey == "") {
		return nil, fmt.Errorf("registry server: %w: a TLS certificate and a TLS key must be given together", errdefs.ErrInvalidArgument)
	}
	if opts.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(opts.TLSCert, opts.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("registry server: %w: load TLS certificate %s and key %s: %w",
				errdefs.ErrInvalidArgument, opts.TLSCert, opts.TLSKey, err)
		}
		s.tls = &tls.Config{
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"h2", "http/1.1"},
		}
	}

	var htpasswd string
	if opts.HtpasswdPath != "" {
		// distribution would quietly create a missing file with a random
		// "docker" user; refuse instead, so a typo cannot lock everyone out.
		htpasswd, err = filepath.Abs(opts.HtpasswdPath)
		if err != nil {
			return nil, fmt.Errorf("registry server: resolve htpasswd file %q: %w", opts.HtpasswdPath, err)
		}
		fi, err := os.Stat(htpasswd)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("registry server: %w: htpasswd file %s does not exist; create it with 'htpasswd -cB FILE USER'",
					errdefs.ErrInvalidArgument, htpasswd)
			}
			return nil, fmt.Errorf("registry server: htpasswd file %s: %w", htpasswd, classifyServerFSError(err))
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("registry server: %w: htpasswd file %s is not a regular file", errdefs.ErrInvalidArgument, htpasswd)
		}
	}

	secret := opts.HTTPSecret
	if secret == "" {
		if secret, err = serverProcessSecret(); err != nil {
			return nil, fmt.Errorf("registry server: %w", err)
		}
	}

	cfg := &configuration.Configuration{
		Version: configuration.MajorMinorVersion(0, 1),
		Storage: configuration.Storage{
			"filesystem": configuration.Parameters{"rootdirectory": root},
			"delete":     configuration.Parameters{"enabled": true},
			"cache":      configuration.Parameters{"blobdescriptor": "inmemory"},
		},
		HTTP: configuration.HTTP{
			Addr:    s.addr,
			Secret:  secret,
			Headers: http.Header{"X-Content-Type-Options": []string{"nosniff"}},
		},
		// The defaults configuration.Parse would fill in.
		Catalog: configuration.Catalog{MaxEntries: 1000},
		Tags:    configuration.Tags{MaxTags: 1000},
	}
	if htpasswd != "" {
		cfg.Auth = configuration.Auth{
			"htpasswd": configuration.Parameters{"realm": ServerRealm, "path": htpasswd},
		}
	}

	setupDistributionProcess()

	app, err := newServerApp(context.WithoutCancel(ctx), cfg)
	if err != nil {
		return nil, fmt.Errorf("registry server: %w", err)
	}
	s.app = app
	s.handler = app
	return s, nil
}

// newServerApp calls handlers.NewApp, which reports bad configuration by
// panicking, and turns such a panic into an error.
func newServerApp(ctx context.Context, cfg *configuration.Configuration) (app *handlers.App, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: configure distribution: %v", errdefs.ErrInvalidArgument, r)
		}
	}()
	return handlers.NewApp(ctx, cfg), nil
}

// serverProcessSecret returns a random upload-signing secret, the same for
// every server in this process so that restarting a server in-process keeps
// upload sessions valid.
func serverProcessSecret() (string, error) {
	processSecretOnce.Do(func() {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			processSecretErr = fmt.Errorf("generate HTTP secret: %w", err)
			return
		}
		processSecret = string(b[:])
	})
	return processSecret, processSecretErr
}

// setupDistributionProcess adjusts the process-wide state distribution
// depends on, once:
//   - OTEL_TRACES_EXPORTER=none unless the user chose an exporter, so that
//     no OpenTelemetry exporter tries to reach a collector;
//   - logrus's standard logger (which distribution logs every request to)
//     writes nothing itself; its entries are forwarded to log/slog instead,
//     distribution's at debug level.
func setupDistributionProcess() {
	logrusOnce.Do(func() {
		if _, ok := os.LookupEnv("OTEL_TRACES_EXPORTER"); !ok {
			_ = os.Setenv("OTEL_TRACES_EXPORTER", "none")
		}
		l := logrus.StandardLogger()
		l.SetOutput(discardFormatter{})
		l.SetFormatter(discardFormatter{})
		l.AddHook(slogHook{})
	})
}

// discardFormatter skips formatting and writing logrus entries; slogHook
// has already passed them on.
type discardFormatter struct{}

func (discardFormatter) Format(*logrus.Entry) ([]byte, error) { return nil, nil }
func (discardFormatter) Write(p []byte) (int, error)          { return len(p), nil }

// slogHook forwards logrus entries to slog.Default(). Entries from
// distribution (recognisable by the "go.version" field its loggers carry)
// are demoted to debug: it logs every request and every client error.
type slogHook struct{}

func (slogHook) Levels() []logrus.Level { return logrus.AllLevels }

func (slogHook) Fire(e *logrus.Entry) error {
	level := slog.LevelDebug
	if _, fromDistribution := e.Data["go.version"]; !fromDistribution {
		switch {
		case e.Level <= logrus.ErrorLevel:
			level = slog.LevelError
		case e.Level == logrus.WarnLevel:
			level = slog.LevelWarn
		case e.Level == logrus.InfoLevel:
			level = slog.LevelInfo
		}
	}
	ctx := e.Context
	if ctx == nil {
		ctx = context.Background()
	}
	logger := slog.Default()
	if !logger.Enabled(ctx, level) {
		return nil
	}
	attrs := make([]slog.Attr, 0, len(e.Data)+1)
	attrs = append(attrs, slog.String("logger", "logrus"))
	for k, v := range e.Data {
		if k == "go.version" {
			continue
		}
		attrs = append(attrs, slog.Any(k, v))
	}
	logger.LogAttrs(ctx, level, e.Message, attrs...)
	return nil
}

func classifyServerFSError(err error) error {
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%w: %w", errdefs.ErrPermission, err)
	}
	return err
}

// Handler returns the registry's HTTP handler (the /v2/ API).
func (s *Server) Handler() http.Handler { return s.handler }

// Root returns the absolute storage directory.
func (s *Server) Root() string { return s.root }

// Scheme returns "https" if the server was configured with TLS, else "http".
func (s *Server) Scheme() string {
	if s.tls != nil {
		return "https"
	}
	return "http"
}

// Listen opens a TCP listener on the configured address (ServerOptions.Addr).
func (s *Server) Listen(ctx context.Context) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("registry server: listen on %s: %w: %w", s.addr, errdefs.ErrConflict, err)
		}
		return nil, fmt.Errorf("registry server: listen on %s: %w", s.addr, err)
	}
	return ln, nil
}

// Serve accepts connections on ln (wrapping it in TLS if configured) until
// ctx is done, then stops accepting, waits up to the drain timeout for
// requests in flight, closes the server and returns nil. It returns an
// error if serving fails. A Server serves at most once; Serve closes it
// on return, and closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	first := false
	s.serving.Do(func() { first = true })
	if !first {
		ln.Close()
		return fmt.Errorf("registry server: %w: Serve called twice", errdefs.ErrConflict)
	}
	defer s.Close()

	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: serverReadHeaderTimeout,
		ErrorLog:          slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	select {
	case err := <-errc:
		return fmt.Errorf("registry server: serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.drain)
	defer cancel()
	if err := srv.Shutdown(dctx); err != nil {
		// Drain timed out: cut the remaining connections.
		srv.Close()
	}
	<-errc // http.ErrServerClosed
	return nil
}

// Close releases the server's background work (upload purging). Serve
// calls it on return; call it yourself only when using Handler without
// Serve. It is safe to call more than once.
func (s *Server) Close() error {
	var err error
	s.closeOne.Do(func() { err = s.app.Shutdown() })
	return err
}

// ListenAndServe builds a server from opts, listens on opts.Addr and serves
// until ctx is done.
func ListenAndServe(ctx context.Context, opts ServerOptions) error {
	s, err := NewServer(ctx, opts)
	if err != nil {
		return err
	}
	ln, err := s.Listen(ctx)
	if err != nil {
		s.Close()
		return err
	}
	return s.Serve(ctx, ln)
}
