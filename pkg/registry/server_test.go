package registry

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/crypto/bcrypt"

	"github.com/berthsh/berth/pkg/errdefs"
)

// runTestServer starts a server for opts on a free loopback port and
// returns its host:port and a function that stops it and returns Serve's
// result. Cleanup stops it too.
func runTestServer(t *testing.T, opts ServerOptions) (string, func() error) {
	t.Helper()
	opts.Addr = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(t.Context())
	s, err := NewServer(ctx, opts)
	if err != nil {
		cancel()
		t.Fatalf("NewServer: %v", err)
	}
	ln, err := s.Listen(ctx)
	if err != nil {
		cancel()
		s.Close()
		t.Fatalf("Listen: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	var result error
	stopped := false
	stop := func() error {
		if stopped {
			return result
		}
		stopped = true
		cancel()
		select {
		case result = <-done:
		case <-time.After(15 * time.Second):
			t.Fatal("Serve did not return 15s after its context was cancelled")
		}
		return result
	}
	t.Cleanup(func() { _ = stop() })
	return ln.Addr().String(), stop
}

func randomImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func mustDigest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// pullDigest pulls ref's manifest and every layer and returns the manifest digest.
func pullDigest(t *testing.T, ref name.Reference, opts ...remote.Option) v1.Hash {
	t.Helper()
	img, err := remote.Image(ref, append(opts, remote.WithContext(t.Context()))...)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatalf("layers of %s: %v", ref, err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatalf("open layer of %s: %v", ref, err)
		}
		// Reading to EOF makes ggcr verify the layer digest.
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatalf("read layer of %s: %v", ref, err)
		}
		rc.Close()
	}
	return mustDigest(t, img)
}

func TestServerPushPullDelete(t *testing.T) {
	t.Parallel()
	host, _ := runTestServer(t, ServerOptions{Root: t.TempDir()})
	ref, err := name.ParseReference(host + "/team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	img := randomImage(t)
	if err := remote.Write(ref, img, remote.WithContext(t.Context())); err != nil {
		t.Fatalf("push: %v", err)
	}
	want := mustDigest(t, img)
	if got := pullDigest(t, ref); got != want {
		t.Fatalf("pulled digest %s, pushed %s", got, want)
	}

	// Deletes are enabled.
	dref := ref.Context().Digest(want.String())
	if err := remote.Delete(dref, remote.WithContext(t.Context())); err != nil {
		t.Fatalf("delete %s: %v", dref, err)
	}
	_, err = remote.Head(ref, remote.WithContext(t.Context()))
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusNotFound {
		t.Fatalf("after delete, HEAD %s: got %v, want 404", ref, err)
	}
}

func TestServerHtpasswd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte("alice:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	host, _ := runTestServer(t, ServerOptions{Root: filepath.Join(dir, "data"), HtpasswdPath: htpasswd})

	// The challenge names our realm.
	resp, err := http.Get("http://" + host + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous GET /v2/: status %d, want 401", resp.StatusCode)
	}
	if got, want := resp.Header.Get("WWW-Authenticate"), `Basic realm="`+ServerRealm+`"`; got != want {
		t.Errorf("WWW-Authenticate = %q, want %q", got, want)
	}

	tests := []struct {
		name       string
		auth       authn.Authenticator
		wantStatus int // 0: success
	}{
		{"anonymous", authn.Anonymous, http.StatusUnauthorized},
		{"wrong password", &authn.Basic{Username: "alice", Password: "wrong"}, http.StatusUnauthorized},
		{"unknown user", &authn.Basic{Username: "bob", Password: "s3cret"}, http.StatusUnauthorized},
		{"correct", &authn.Basic{Username: "alice", Password: "s3cret"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref, err := name.ParseReference(host + "/auth/img:latest")
			if err != nil {
				t.Fatal(err)
			}
			img := randomImage(t)
			err = remote.Write(ref, img, remote.WithAuth(tt.auth), remote.WithContext(t.Context()))
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("push: %v", err)
				}
				if got, want := pullDigest(t, ref, remote.WithAuth(tt.auth)), mustDigest(t, img); got != want {
					t.Fatalf("pulled digest %s, pushed %s", got, want)
				}
				return
			}
			var terr *transport.Error
			if !errors.As(err, &terr) {
				t.Fatalf("push: got error %v (%T), want a transport.Error with status %d", err, err, tt.wantStatus)
			}
			if terr.StatusCode != tt.wantStatus {
				t.Fatalf("push: status %d, want %d (%v)", terr.StatusCode, tt.wantStatus, err)
			}
		})
	}
}

// writeSelfSignedCert writes a certificate for 127.0.0.1 and its key to dir
// and returns their paths and a pool trusting the certificate.
func writeSelfSignedCert(t *testing.T, dir string) (certPath, keyPath string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "berth test registry"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath = filepath.Join(dir, "cert.pem")
	keyPath = filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certPath, keyPath, pool
}

func TestServerTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certPath, keyPath, pool := writeSelfSignedCert(t, dir)
	host, _ := runTestServer(t, ServerOptions{Root: filepath.Join(dir, "data"), TLSCert: certPath, TLSKey: keyPath})

	trusting := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(trusting.CloseIdleConnections)

	// Plain HTTP is not served.
	plain := &http.Client{Timeout: 5 * time.Second}
	if resp, err := plain.Get("http://" + host + "/v2/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP GET /v2/ succeeded on a TLS server")
		}
	}
	// A client that does not trust the certificate fails the handshake.
	untrusting := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	if resp, err := untrusting.Get("https://" + host + "/v2/"); err == nil {
		resp.Body.Close()
		t.Fatal("HTTPS GET with an untrusted certificate succeeded")
	}
	// A trusting one gets the API.
	resp, err := (&http.Client{Transport: trusting}).Get("https://" + host + "/v2/")
	if err != nil {
		t.Fatalf("HTTPS GET /v2/: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTPS GET /v2/: status %d", resp.StatusCode)
	}

	ref, err := name.ParseReference(host + "/secure/img:1")
	if err != nil {
		t.Fatal(err)
	}
	img := randomImage(t)
	if err := remote.Write(ref, img, remote.WithTransport(trusting), remote.WithContext(t.Context())); err != nil {
		t.Fatalf("push over https: %v", err)
	}
	if got, want := pullDigest(t, ref, remote.WithTransport(trusting)), mustDigest(t, img); got != want {
		t.Fatalf("pulled digest %s, pushed %s", got, want)
	}
}

func TestServerPersistsAcrossRestart(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	host, stop := runTestServer(t, ServerOptions{Root: root})
	ref, err := name.ParseReference(host + "/keep/img:v1")
	if err != nil {
		t.Fatal(err)
	}
	img := randomImage(t)
	if err := remote.Write(ref, img, remote.WithContext(t.Context())); err != nil {
		t.Fatalf("push: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatalf("Serve returned %v after cancel", err)
	}

	host2, _ := runTestServer(t, ServerOptions{Root: root})
	ref2, err := name.ParseReference(host2 + "/keep/img:v1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := pullDigest(t, ref2), mustDigest(t, img); got != want {
		t.Fatalf("after restart pulled %s, pushed %s", got, want)
	}
}

func TestServerStopsOnCancel(t *testing.T) {
	t.Parallel()
	host, stop := runTestServer(t, ServerOptions{Root: t.TempDir()})
	resp, err := http.Get("http://" + host + "/v2/")
	if err != nil {
		t.Fatalf("GET /v2/: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/: status %d", resp.StatusCode)
	}
	if got := resp.Header.Get("Docker-Distribution-API-Version"); got != "registry/2.0" {
		t.Errorf("Docker-Distribution-API-Version = %q", got)
	}
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("Serve returned %v, want nil after cancel", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Serve took %s to stop", d)
	}
	conn, err := net.DialTimeout("tcp", host, 2*time.Second)
	if err == nil {
		conn.Close()
		t.Fatal("listener still accepts connections after Serve returned")
	}
}

func TestServeTwice(t *testing.T) {
	t.Parallel()
	s, err := NewServer(t.Context(), ServerOptions{Root: t.TempDir(), Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ln1, err := s.Listen(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ctx, ln1); err != nil {
		t.Fatalf("first Serve: %v", err)
	}
	ln2, err := s.Listen(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ctx, ln2); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("second Serve: got %v, want ErrConflict", err)
	}
}

func TestNewServerRejectsBadOptions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certPath, keyPath, _ := writeSelfSignedCert(t, dir)
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts ServerOptions
	}{
		{"no root", ServerOptions{}},
		{"root is a file", ServerOptions{Root: notDir}},
		{"cert without key", ServerOptions{Root: dir, TLSCert: certPath}},
		{"key without cert", ServerOptions{Root: dir, TLSKey: keyPath}},
		{"cert and key swapped", ServerOptions{Root: dir, TLSCert: keyPath, TLSKey: certPath}},
		{"missing cert file", ServerOptions{Root: dir, TLSCert: filepath.Join(dir, "nope.pem"), TLSKey: keyPath}},
		{"missing htpasswd", ServerOptions{Root: dir, HtpasswdPath: filepath.Join(dir, "nope")}},
		{"htpasswd is a directory", ServerOptions{Root: dir, HtpasswdPath: dir}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewServer(t.Context(), tt.opts)
			if err == nil {
				s.Close()
				t.Fatal("NewServer succeeded")
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("got %v, want ErrInvalidArgument", err)
			}
		})
	}
	// The missing htpasswd file must not have been created.
	if _, err := os.Stat(filepath.Join(dir, "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing htpasswd file was created (stat: %v)", err)
	}
}

func TestNewServerCreatesRoot(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "a", "b", "registry")
	s, err := NewServer(t.Context(), ServerOptions{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		t.Fatalf("storage root not created: %v", err)
	}
	if s.Root() != root || s.Scheme() != "http" {
		t.Fatalf("Root() = %q, Scheme() = %q", s.Root(), s.Scheme())
	}
}
