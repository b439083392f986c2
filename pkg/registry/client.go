package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/reference"
)

// userAgent is sent with every registry request.
const userAgent = "berth"

// defaultJobs is how many blobs are transferred at once by default.
const defaultJobs = 4

// Timeouts: an unreachable or silent registry fails within seconds
// instead of hanging. Failed connections are not retried.
const (
	dialTimeout         = 5 * time.Second
	tlsHandshakeTimeout = 10 * time.Second
	// responseHeaderTimeout bounds the wait for an answer to an upload
	// request (a registry may verify a large blob before answering).
	responseHeaderTimeout = 5 * time.Minute
)

// readTimeout bounds the wait for the response headers of a GET or HEAD
// (a variable for tests).
var readTimeout = 30 * time.Second

// retryBackoff replaces ggcr's default (1s, 3s, 9s): temporary failures
// (5xx, 429, connections reset mid-transfer) are retried twice, quickly.
var retryBackoff = remote.Backoff{Duration: 300 * time.Millisecond, Factor: 3, Jitter: 0.1, Steps: 3}

// retryable decides which failed requests ggcr retries: temporary
// registry answers and connections broken mid-transfer, but not failures
// to connect or resolve, or timeouts, so an unreachable registry fails
// at once.
func retryable(err error) bool {
	var (
		opErr  *net.OpError
		dnsErr *net.DNSError
		netErr net.Error
	)
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.As(err, &opErr) && opErr.Op == "dial", errors.As(err, &dnsErr):
		return false
	case errors.As(err, &netErr) && netErr.Timeout():
		return false
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, net.ErrClosed):
		return true
	}
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// readTimeoutTransport fails a GET or HEAD whose response headers do not
// arrive within timeout.
type readTimeoutTransport struct {
	inner   http.RoundTripper
	timeout time.Duration
}

// timeoutError is a registry that accepted a connection but did not answer.
type timeoutError struct {
	d   time.Duration
	req string
}

func (e timeoutError) Error() string {
	if e.req == "" {
		return fmt.Sprintf("no response within %s", e.d)
	}
	return fmt.Sprintf("%s: no response within %s", e.req, e.d)
}
func (e timeoutError) Timeout() bool   { return true }
func (e timeoutError) Temporary() bool { return false }

func (t *readTimeoutTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.timeout <= 0 || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return t.inner.RoundTrip(r)
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	timeout := timeoutError{d: t.timeout}
	timer := time.AfterFunc(t.timeout, func() { cancel(timeout) })
	resp, err := t.inner.RoundTrip(r.WithContext(ctx))
	fired := !timer.Stop()
	if err == nil && fired {
		resp.Body.Close()
		err = context.Cause(ctx)
	}
	if err != nil {
		if errors.Is(context.Cause(ctx), timeout) {
			err = timeoutError{d: t.timeout, req: r.Method + " " + r.URL.Redacted()}
		}
		cancel(nil)
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: func() { cancel(nil) }}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel func()
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

func newHTTPTransport(skipVerify bool) *http.Transport {
	t := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   dialTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   50,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ResponseHeaderTimeout: responseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
	}
	if skipVerify {
		// Only for registries the user declared insecure, as docker does.
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // insecure registry by request
	}
	return t
}

var (
	secureTransport   = newHTTPTransport(false)
	insecureTransport = newHTTPTransport(true)
)

// endpoint is what every operation needs to talk to one registry.
type endpoint struct {
	insecure  bool
	keychain  authn.Keychain
	transport http.RoundTripper
}

// connOptions are the connection settings shared by pull and push.
type connOptions struct {
	Insecure  bool
	Keychain  authn.Keychain
	Transport http.RoundTripper
	Config    *Config
}

// resolve decides how to reach ref's registry: insecure when asked for or
// listed in the config file, the default keychain unless one is given.
func (o connOptions) resolve(ctx context.Context, host string) (endpoint, error) {
	cfg := o.Config
	if cfg == nil {
		var err error
		if cfg, err = LoadConfig(); err != nil {
			return endpoint{}, err
		}
	}
	ep := endpoint{insecure: o.Insecure || cfg.IsInsecure(ctx, host), keychain: o.Keychain, transport: o.Transport}
	if ep.keychain == nil {
		ep.keychain = authn.DefaultKeychain
	}
	if ep.transport == nil {
		ep.transport = secureTransport
		if ep.insecure {
			ep.transport = insecureTransport
		}
	}
	ep.transport = &readTimeoutTransport{inner: ep.transport, timeout: readTimeout}
	return ep, nil
}

// name converts ref for ggcr, allowing plain HTTP when insecure.
func (ep endpoint) name(ref reference.Reference) (name.Reference, error) {
	return ref.Name(ep.insecure)
}

// remoteOptions are the ggcr options for one operation.
func (ep endpoint) remoteOptions(ctx context.Context, jobs int) []remote.Option {
	if jobs <= 0 {
		jobs = defaultJobs
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(ep.keychain),
		remote.WithTransport(ep.transport),
		remote.WithJobs(jobs),
		remote.WithRetryBackoff(retryBackoff),
		remote.WithRetryPredicate(retryable),
		remote.WithUserAgent(userAgent),
	}
}

// registryError is a registry failure classified with an errdefs kind.
// Its message is meant for people; errors.Is matches the kind and
// errors.As reaches the underlying error (a *transport.Error, a net error).
type registryError struct {
	kind  error
	msg   string
	cause error
	// complete is set when msg already names the operation and the image
	// ("manifest for python:nope not found: …"), so Pull and Push do not
	// prefix it again.
	complete bool
}

// completeError wraps err (classified) with a message that names the
// operation and image in full.
func completeError(err error, format string, args ...any) error {
	kind := errdefs.ErrUnavailable
	for _, k := range []error{errdefs.ErrNotFound, errdefs.ErrUnauthorized, errdefs.ErrUnavailable, errdefs.ErrDataCorrupt, errdefs.ErrInvalidArgument} {
		if errors.Is(err, k) {
			kind = k
			break
		}
	}
	return &registryError{kind: kind, msg: fmt.Sprintf(format, args...) + ": " + err.Error(), cause: err, complete: true}
}

// isComplete reports whether err's message needs no operation prefix.
func isComplete(err error) bool {
	var re *registryError
	return errors.As(err, &re) && re.complete
}

func (e *registryError) Error() string   { return e.msg }
func (e *registryError) Unwrap() []error { return []error{e.kind, e.cause} }

// classify turns an error from ggcr or the network into a registryError
// (or returns err unchanged when it is already classified or unknown).
// host names the registry in messages.
func classify(err error, host string) error {
	if err == nil {
		return nil
	}
	for _, k := range []error{errdefs.ErrNotFound, errdefs.ErrUnauthorized, errdefs.ErrUnavailable, errdefs.ErrDataCorrupt, errdefs.ErrInvalidArgument, errdefs.ErrNotImplemented, errdefs.ErrPermission} {
		if errors.Is(err, k) {
			return err
		}
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	// Network failures first: a failed ping over https and http carries
	// both the TLS error and the http answer; the TLS error is the story.
	if isUnreachable(err) {
		return &registryError{kind: errdefs.ErrUnavailable, msg: fmt.Sprintf("cannot reach registry %s: %v", host, err), cause: err}
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		return classifyStatus(terr, host)
	}
	if isVerifyError(err) {
		return &registryError{kind: errdefs.ErrDataCorrupt, msg: fmt.Sprintf("registry %s sent content that does not match its digest: %v", host, err), cause: err}
	}
	return err
}

// classifyStatus classifies an error response by its registry error codes
// and HTTP status.
func classifyStatus(terr *transport.Error, host string) error {
	detail := describe(terr)
	codes := map[transport.ErrorCode]bool{}
	for _, d := range terr.Errors {
		codes[d.Code] = true
	}
	switch {
	case terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden ||
		codes[transport.UnauthorizedErrorCode] || codes[transport.DeniedErrorCode]:
		return &registryError{kind: errdefs.ErrUnauthorized, msg: detail, cause: terr}
	case terr.StatusCode == http.StatusNotFound || codes[transport.ManifestUnknownErrorCode] ||
		codes[transport.NameUnknownErrorCode] || codes[transport.BlobUnknownErrorCode]:
		return &registryError{kind: errdefs.ErrNotFound, msg: detail, cause: terr}
	case terr.StatusCode == http.StatusTooManyRequests || terr.StatusCode >= 500 ||
		codes[transport.TooManyRequestsErrorCode] || codes[transport.UnavailableErrorCode]:
		return &registryError{kind: errdefs.ErrUnavailable, msg: fmt.Sprintf("registry %s is unavailable: %s", host, detail), cause: terr}
	case codes[transport.DigestInvalidErrorCode] || codes[transport.SizeInvalidErrorCode]:
		return &registryError{kind: errdefs.ErrDataCorrupt, msg: fmt.Sprintf("registry %s rejected content: %s", host, detail), cause: terr}
	case codes[transport.ManifestInvalidErrorCode] || codes[transport.NameInvalidErrorCode] ||
		codes[transport.TagInvalidErrorCode] || codes[transport.UnsupportedErrorCode] || codes[transport.ManifestBlobUnknownErrorCode]:
		return &registryError{kind: errdefs.ErrInvalidArgument, msg: fmt.Sprintf("registry %s rejected the request: %s", host, detail), cause: terr}
	}
	return &registryError{kind: errdefs.ErrUnavailable, msg: fmt.Sprintf("registry %s: %s", host, detail), cause: terr}
}

// describe is a short form of a registry error response: its first error
// code and message, or the HTTP status.
func describe(terr *transport.Error) string {
	if len(terr.Errors) > 0 {
		d := terr.Errors[0]
		msg := strings.ToLower(strings.ReplaceAll(string(d.Code), "_", " "))
		if d.Message != "" && !strings.EqualFold(d.Message, msg) {
			msg += ": " + d.Message
		}
		return msg
	}
	return fmt.Sprintf("%d %s", terr.StatusCode, http.StatusText(terr.StatusCode))
}

// isUnreachable reports network-level failures: refused or timed-out
// connections, unknown hosts, TLS failures, a plain-HTTP server answering
// an HTTPS request.
func isUnreachable(err error) bool {
	var (
		opErr    *net.OpError
		dnsErr   *net.DNSError
		unknownA x509.UnknownAuthorityError
		hostErr  x509.HostnameError
		certErr  x509.CertificateInvalidError
		verErr   *tls.CertificateVerificationError
		recErr   tls.RecordHeaderError
		netErr   net.Error
	)
	switch {
	case errors.As(err, &opErr), errors.As(err, &dnsErr),
		errors.As(err, &unknownA), errors.As(err, &hostErr), errors.As(err, &certErr),
		errors.As(err, &verErr), errors.As(err, &recErr),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, context.DeadlineExceeded):
		return true
	case errors.As(err, &netErr) && netErr.Timeout():
		return true
	}
	return strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// isVerifyError recognises ggcr's content-verification failures, which it
// reports with unexported error types.
func isVerifyError(err error) bool {
	s := err.Error()
	return strings.Contains(s, "error verifying") || strings.Contains(s, "does not match expected size")
}
