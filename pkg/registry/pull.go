package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/reference"
	"github.com/berthsh/berth/pkg/store"
)

// PullOptions tune Pull.
type PullOptions struct {
	// Platform selects the image from a multi-platform index. Nil means
	// this machine's platform (DefaultPlatform); a platform given here is
	// also checked against a single-platform image.
	Platform *v1.Platform
	// Insecure allows plain HTTP and unverified TLS for the registry (as
	// does listing it in the config file's insecure-registries).
	Insecure bool
	// Keychain finds credentials; nil means the docker config file and its
	// credential helpers (authn.DefaultKeychain).
	Keychain authn.Keychain
	// Jobs is how many layers are downloaded at once (default 4).
	Jobs int
	// Progress, if set, is called (from several goroutines) as layers are
	// downloaded or found present.
	Progress func(store.Progress)
	// Transport replaces the HTTP transport (tests).
	Transport http.RoundTripper
	// Config is berth's config file; nil reads it with LoadConfig.
	Config *Config
}

// PullResult describes a finished pull.
type PullResult struct {
	// Image is the image as stored.
	Image store.Image
	// Digest is the digest of what the reference resolved to: the index
	// for a multi-platform image, else the image manifest. It is the
	// digest recorded in the image's RepoDigests.
	Digest v1.Hash
	// Platform is the platform chosen from an index (nil for a
	// single-platform image).
	Platform *v1.Platform
	// UpToDate is set when the store already had this image under the
	// reference: nothing was downloaded.
	UpToDate bool
}

// DefaultPlatform is the platform of this machine, as docker picks it.
func DefaultPlatform() v1.Platform {
	p := v1.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	if runtime.GOOS == "darwin" || runtime.GOOS == "windows" {
		// Containers run in a Linux VM there.
		p.OS = "linux"
	}
	switch p.Architecture {
	case "arm64":
		p.Variant = "v8"
	case "arm":
		p.Variant = "v7"
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "GOARM" && s.Value != "" {
					p.Variant = "v" + strings.SplitN(s.Value, ",", 2)[0]
				}
			}
		}
	}
	return p
}

// Pull downloads the image ref names into s, verifying every blob, and
// gives it the name ref (a reference by digest is stored without a name,
// with the digest in RepoDigests). Layers already in the store are not
// downloaded. On error nothing new is named in the store.
func Pull(ctx context.Context, s *store.Store, ref reference.Reference, opts PullOptions) (PullResult, error) {
	res, err := pull(ctx, s, ref, opts)
	if err != nil && !isComplete(err) {
		return PullResult{}, fmt.Errorf("pull %s: %w", ref.Familiar(), err)
	}
	if err != nil {
		return PullResult{}, err
	}
	return res, nil
}

func pull(ctx context.Context, s *store.Store, ref reference.Reference, opts PullOptions) (PullResult, error) {
	host := ref.Domain()
	ep, err := connOptions{Insecure: opts.Insecure, Keychain: opts.Keychain, Transport: opts.Transport, Config: opts.Config}.resolve(ctx, host)
	if err != nil {
		return PullResult{}, err
	}
	nref, err := ep.name(ref)
	if err != nil {
		return PullResult{}, err
	}
	want := DefaultPlatform()
	if opts.Platform != nil {
		want = *opts.Platform
	}
	ropts := append(ep.remoteOptions(ctx, opts.Jobs), remote.WithPlatform(want))

	desc, err := remote.Get(nref, ropts...)
	if err != nil {
		err = classify(err, host)
		switch {
		case errors.Is(err, errdefs.ErrNotFound):
			return PullResult{}, completeError(err, "manifest for %s not found", ref.Familiar())
		case errors.Is(err, errdefs.ErrUnauthorized):
			return PullResult{}, completeError(err, "pull access denied for %s, repository does not exist or may require 'berth login'", ref.FamiliarRepository())
		}
		return PullResult{}, err
	}
	res := PullResult{Digest: desc.Digest}

	var img v1.Image
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return PullResult{}, classify(err, host)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return PullResult{}, classify(err, host)
		}
		child, err := selectPlatform(im, want)
		if err != nil {
			return PullResult{}, err
		}
		res.Platform = child.Platform
		if child.MediaType.IsIndex() {
			return PullResult{}, fmt.Errorf("nested index %s for %s is not supported: %w", child.Digest, want, errdefs.ErrNotImplemented)
		}
		if img, err = idx.Image(child.Digest); err != nil {
			return PullResult{}, classify(err, host)
		}
	case desc.MediaType.IsSchema1():
		return PullResult{}, fmt.Errorf("%s uses a Docker schema 1 manifest (%s), which is not supported; push it again with a current tool: %w", ref.Familiar(), desc.MediaType, errdefs.ErrNotImplemented)
	case desc.MediaType.IsImage():
		if img, err = desc.Image(); err != nil {
			return PullResult{}, classify(err, host)
		}
		if opts.Platform != nil {
			cf, err := img.ConfigFile()
			if err != nil {
				return PullResult{}, classify(err, host)
			}
			have := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
			if cf.OS != "" && platformScore(want, &have) == 0 {
				return PullResult{}, fmt.Errorf("image %s was found but is for %s, not the requested %s: %w", ref.Familiar(), platformString(have), platformString(want), errdefs.ErrNotFound)
			}
		}
	default:
		return PullResult{}, fmt.Errorf("%s is not an image (media type %q): %w", ref.Familiar(), desc.MediaType, errdefs.ErrInvalidArgument)
	}

	manifestDigest, err := img.Digest()
	if err != nil {
		return PullResult{}, classify(err, host)
	}
	repoDigest := ref.Repository() + "@" + desc.Digest.String()
	wopts := store.WriteOptions{RepoDigests: []string{repoDigest}, Jobs: opts.Jobs, Progress: opts.Progress}
	if ref.Digest() == "" {
		wopts.Names = []reference.Reference{ref}
	}

	if cur, err := s.Get(ctx, ref.String()); err == nil && cur.Manifest.Digest == manifestDigest && hasString(cur.RepoDigests, repoDigest) {
		nameOK := ref.Digest() != ""
		for _, n := range cur.Names {
			nameOK = nameOK || n.String() == ref.String()
		}
		if nameOK {
			res.Image, res.UpToDate = cur, true
			return res, nil
		}
	}

	stored, err := s.WriteImage(ctx, &pullImage{Image: img, host: host}, wopts)
	if err != nil {
		return PullResult{}, classify(err, host)
	}
	res.Image = stored
	return res, nil
}

func hasString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// selectPlatform picks the index entry for want, preferring an exact
// variant, then the closest older ARM variant.
func selectPlatform(im *v1.IndexManifest, want v1.Platform) (v1.Descriptor, error) {
	best, bestScore := -1, 0
	for i, d := range im.Manifests {
		if sc := platformScore(want, d.Platform); sc > bestScore {
			best, bestScore = i, sc
		}
	}
	if best >= 0 {
		return im.Manifests[best], nil
	}
	var avail []string
	for _, d := range im.Manifests {
		if d.Platform == nil || d.Platform.OS == "unknown" {
			continue // attestations and other non-images
		}
		if s := platformString(*d.Platform); !hasString(avail, s) {
			avail = append(avail, s)
		}
	}
	sort.Strings(avail)
	list := "none"
	if len(avail) > 0 {
		list = strings.Join(avail, ", ")
	}
	return v1.Descriptor{}, fmt.Errorf("no matching manifest for %s in the manifest list entries (available: %s); choose one with --platform: %w",
		platformString(want), list, errdefs.ErrNotFound)
}

// platformScore rates how well have serves want: 0 not at all, higher is
// better. An entry without a platform matches anything, weakly (as in
// containerd).
func platformScore(want v1.Platform, have *v1.Platform) int {
	if have == nil {
		return 1
	}
	if have.OS != want.OS || have.Architecture != want.Architecture {
		return 0
	}
	wv, hv := normVariant(want.Architecture, want.Variant), normVariant(have.Architecture, have.Variant)
	switch {
	case wv == hv:
		return 100
	case wv == "":
		return 50
	case want.Architecture == "arm" && len(wv) == 2 && len(hv) == 2 && hv < wv:
		// An ARMv7 machine runs ARMv6 and ARMv5 code.
		return 10 + int(hv[1]-'0')
	}
	return 0
}

func normVariant(arch, variant string) string {
	switch {
	case arch == "arm64" && variant == "":
		return "v8"
	case arch == "arm" && variant == "":
		return "v7"
	case arch == "amd64" && variant == "v1":
		return ""
	}
	return variant
}

func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// pullImage wraps a remote image so that its layers report verification
// failures as errdefs.ErrDataCorrupt naming the layer.
type pullImage struct {
	v1.Image
	host string
}

func (i *pullImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := i.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return &pullLayer{Layer: l, host: i.host}, nil
}

func (i *pullImage) RawConfigFile() ([]byte, error) {
	b, err := i.Image.RawConfigFile()
	if err != nil {
		return nil, classify(err, i.host)
	}
	return b, nil
}

type pullLayer struct {
	v1.Layer
	host string
}

func (l *pullLayer) Compressed() (io.ReadCloser, error) {
	d, err := l.Digest()
	if err != nil {
		return nil, err
	}
	size, err := l.Size()
	if err != nil {
		return nil, err
	}
	rc, err := l.Layer.Compressed()
	if err != nil {
		if isVerifyError(err) {
			return nil, &registryError{kind: errdefs.ErrDataCorrupt, msg: fmt.Sprintf("corrupt download from %s: %v", l.host, err), cause: err}
		}
		return nil, classify(err, l.host)
	}
	return &checkReader{rc: rc, want: d, size: size, host: l.host}, nil
}

// checkReader reports a failure of ggcr's own verification (which it
// signals only once every byte has arrived, or with a size mismatch) as
// corrupt content rather than a network error.
type checkReader struct {
	rc   io.ReadCloser
	want v1.Hash
	size int64
	n    int64
	host string
}

func (c *checkReader) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.n += int64(n)
	if err == nil || errors.Is(err, io.EOF) {
		return n, err
	}
	if c.n >= c.size || isVerifyError(err) {
		return n, &registryError{kind: errdefs.ErrDataCorrupt, msg: fmt.Sprintf("corrupt download from %s: %v", c.host, err), cause: err}
	}
	return n, classify(err, c.host)
}

func (c *checkReader) Close() error { return c.rc.Close() }
