package buildctx

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/berthsh/berth/pkg/errdefs"
)

// FetchOptions configures FetchURL.
type FetchOptions struct {
	// Checksum is ADD --checksum: "sha256:<hex>" (sha384 and sha512 are
	// accepted too). The download fails unless its content matches.
	Checksum string
	// Client makes the request; nil means http.DefaultClient.
	Client *http.Client
	// TempDir holds the download until Close; empty means os.TempDir().
	TempDir string
}

// Download is a file fetched for ADD <url>. Its Source goes to Plan like
// any other; it is never extracted and gets mode 0600. Close removes it.
type Download struct {
	Source Source
	// Digest is the sha256 of the content, "sha256:<hex>".
	Digest string
	dir    string
}

// Close removes the downloaded file.
func (d *Download) Close() error {
	d.Source.ctx.Close()
	return os.RemoveAll(d.dir)
}

// IsURL reports whether an ADD source is a URL to download.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// FetchURL downloads rawURL (http or https) into a temporary file and
// verifies opts.Checksum. The file name at a directory destination is the
// last segment of the URL path, else the Content-Disposition file name.
func FetchURL(ctx context.Context, rawURL string, opts FetchOptions) (*Download, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("ADD %s: not an http or https URL: %w", rawURL, errdefs.ErrInvalidArgument)
	}
	var want string
	var h hash.Hash
	if opts.Checksum != "" {
		if h, want, err = parseChecksum(opts.Checksum); err != nil {
			return nil, fmt.Errorf("ADD %s: %w", rawURL, err)
		}
	}
	client := opts.Client
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("ADD %s: %w: %w", rawURL, errdefs.ErrInvalidArgument, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("ADD %s: %w: %w", rawURL, errdefs.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		kind := errdefs.ErrUnavailable
		switch resp.StatusCode {
		case http.StatusNotFound, http.StatusGone:
			kind = errdefs.ErrNotFound
		case http.StatusUnauthorized, http.StatusForbidden:
			kind = errdefs.ErrUnauthorized
		}
		return nil, fmt.Errorf("ADD %s: server answered %s: %w", rawURL, resp.Status, kind)
	}

	dir, err := os.MkdirTemp(opts.TempDir, "berth-add-")
	if err != nil {
		return nil, fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	f, err := os.OpenFile(filepath.Join(dir, "content"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	sum := sha256.New()
	ws := []io.Writer{f, sum}
	if h != nil {
		ws = append(ws, h)
	}
	_, err = io.Copy(io.MultiWriter(ws...), resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("ADD %s: download: %w: %w", rawURL, errdefs.ErrUnavailable, err)
	}
	if h != nil {
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			alg, _, _ := strings.Cut(opts.Checksum, ":")
			return nil, fmt.Errorf("ADD %s: checksum mismatch: expected %s, got %s:%s: %w", rawURL, opts.Checksum, alg, got, errdefs.ErrDataCorrupt)
		}
	}

	var mtime time.Time
	if lm := resp.Header.Get("Last-Modified"); lm != "" {
		if t, err := http.ParseTime(lm); err == nil {
			mtime = t
		}
	}
	name := path.Base(u.Path)
	if u.Path == "" || strings.HasSuffix(u.Path, "/") {
		name = ""
		if _, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err == nil {
			name = path.Base(filepath.ToSlash(params["filename"]))
		}
	}
	if name == "." || name == "/" || name == ".." {
		name = ""
	}
	c, err := newContext(dir, true)
	if err != nil {
		return nil, fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	fi, err := c.root.Lstat("content")
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	ok = true
	return &Download{
		Source: Source{Path: rawURL, Arg: rawURL, Name: name, ctx: c, rel: "content", info: fi, remote: true, mtime: mtime},
		Digest: "sha256:" + hex.EncodeToString(sum.Sum(nil)),
		dir:    dir,
	}, nil
}

func parseChecksum(s string) (hash.Hash, string, error) {
	alg, hexsum, ok := strings.Cut(s, ":")
	var h hash.Hash
	var n int
	switch alg {
	case "sha256":
		h, n = sha256.New(), 64
	case "sha384":
		h, n = sha512.New384(), 96
	case "sha512":
		h, n = sha512.New(), 128
	}
	if !ok || h == nil || len(hexsum) != n {
		return nil, "", fmt.Errorf("--checksum=%s: want sha256:<64 hex digits>: %w", s, errdefs.ErrInvalidArgument)
	}
	if _, err := hex.DecodeString(hexsum); err != nil {
		return nil, "", fmt.Errorf("--checksum=%s: %w: %w", s, errdefs.ErrInvalidArgument, errors.New("not hexadecimal"))
	}
	return h, strings.ToLower(hexsum), nil
}
