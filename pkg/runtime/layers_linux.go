package runtime

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/rootfs"
	"github.com/berthsh/berth/pkg/store"
)

// Names of the parts of a container directory made by PrepareRootfs.
const (
	UpperDir  = "upper"
	WorkDir   = "work"
	RootfsDir = "rootfs"
)

// LayerCache is the shared cache of unpacked image layers in one
// directory (ROOT/layers). Each layer is unpacked once, in overlay style,
// into a directory named after its diff ID, and then never changed.
//
// A LayerCache is safe for concurrent use by goroutines and by several
// processes sharing the directory: a layer is unpacked into a temporary
// directory and renamed into place, so when two unpack the same layer at
// once one rename wins and the other process uses the winner's copy.
type LayerCache struct {
	dir string
}

// OpenLayerCache opens (creating if needed) the layer cache in dir.
func OpenLayerCache(dir string) (*LayerCache, error) {
	if dir == "" {
		return nil, fmt.Errorf("layer cache: empty directory: %w", errdefs.ErrInvalidArgument)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("layer cache %s: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Join(abs, "sha256"), 0o700); err != nil {
		return nil, fmt.Errorf("layer cache %s: %w", dir, err)
	}
	return &LayerCache{dir: abs}, nil
}

// Dir is the cache's directory.
func (c *LayerCache) Dir() string { return c.dir }

// Path is the directory layer diffID is (or would be) unpacked in.
func (c *LayerCache) Path(diffID v1.Hash) string {
	return filepath.Join(c.dir, diffID.Algorithm, diffID.Hex)
}

// Has reports whether layer diffID is unpacked.
func (c *LayerCache) Has(diffID v1.Hash) bool {
	_, err := os.Lstat(c.Path(diffID))
	return err == nil
}

// Remove deletes the unpacked copy of layer diffID. The caller must make
// sure no container uses it.
func (c *LayerCache) Remove(diffID v1.Hash) error {
	if err := validDiffID(diffID); err != nil {
		return err
	}
	if err := rootfs.RemoveAll(c.Path(diffID)); err != nil {
		return fmt.Errorf("remove layer %s: %w", diffID, err)
	}
	return nil
}

// Unpack makes sure every layer of img is unpacked and returns their
// directories in image order (base layer first), ready to be passed to
// rootfs.MountOverlay as lowers; a layer the image holds more than once
// is listed once, at its topmost place. Each layer's uncompressed content is
// verified against the diff ID recorded in the image config before it is
// renamed into place, so a damaged or lying image cannot plant wrong
// content under another layer's name.
func (c *LayerCache) Unpack(ctx context.Context, s *store.Store, img store.Image) ([]string, error) {
	m, err := s.Manifest(ctx, img)
	if err != nil {
		return nil, err
	}
	cf, _, err := s.ConfigFile(ctx, img)
	if err != nil {
		return nil, err
	}
	diffIDs := cf.RootFS.DiffIDs
	if len(diffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("image %s: manifest has %d layers but config lists %d diff IDs: %w",
			img.Digest(), len(m.Layers), len(diffIDs), errdefs.ErrDataCorrupt)
	}
	if len(m.Layers) == 0 {
		return nil, fmt.Errorf("image %s has no layers: %w", img.Digest(), errdefs.ErrInvalidArgument)
	}
	lowers := make([]string, 0, len(m.Layers))
	for i, desc := range m.Layers {
		if err := c.unpackLayer(ctx, s, desc, diffIDs[i]); err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Digest(), err)
		}
		lowers = append(lowers, c.Path(diffIDs[i]))
	}
	return dedupeLowers(lowers), nil
}

// UnpackLayer makes sure the stored layer desc, whose uncompressed content
// has digest diffID, is unpacked (verified as Unpack does) and returns its
// directory. A builder uses it for layers it has just written.
func (c *LayerCache) UnpackLayer(ctx context.Context, s *store.Store, desc v1.Descriptor, diffID v1.Hash) (string, error) {
	if err := c.unpackLayer(ctx, s, desc, diffID); err != nil {
		return "", err
	}
	return c.Path(diffID), nil
}

// dedupeLowers keeps only the topmost occurrence of a layer that appears
// more than once, because overlayfs refuses the same lower directory twice
// ("conflicting lowerdir path", ELOOP). The result is the same file
// system: everything the lower copy provides, the upper copy provides
// again over whatever lies between.
func dedupeLowers(lowers []string) []string {
	seen := make(map[string]bool, len(lowers))
	out := make([]string, 0, len(lowers))
	for i := len(lowers) - 1; i >= 0; i-- {
		if !seen[lowers[i]] {
			seen[lowers[i]] = true
			out = append(out, lowers[i])
		}
	}
	slices.Reverse(out)
	return out
}

func validDiffID(d v1.Hash) error {
	if d.Algorithm != "sha256" || len(d.Hex) != 64 {
		return fmt.Errorf("layer diff ID %q is not a sha256 digest: %w", d.String(), errdefs.ErrInvalidArgument)
	}
	for _, r := range d.Hex {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return fmt.Errorf("layer diff ID %q is not a sha256 digest: %w", d.String(), errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

func (c *LayerCache) unpackLayer(ctx context.Context, s *store.Store, desc v1.Descriptor, diffID v1.Hash) error {
	if err := validDiffID(diffID); err != nil {
		return err
	}
	dir := c.Path(diffID)
	if c.Has(diffID) {
		return nil
	}
	blob, err := s.OpenBlob(ctx, desc.Digest)
	if err != nil {
		return fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	defer blob.Close()
	plain, err := rootfs.Decompress(blob)
	if err != nil {
		return fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	defer plain.Close()
	vr := &verifyReader{r: plain, h: sha256.New(), want: diffID}
	if _, err := rootfs.Unpack(ctx, dir, vr); err != nil {
		if errors.Is(err, errdefs.ErrAlreadyExists) && c.Has(diffID) {
			// Another process unpacked the same layer first.
			return nil
		}
		return fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	return nil
}

// verifyReader hashes what it reads and fails at EOF when the content does
// not match the expected digest, so that Unpack discards it.
type verifyReader struct {
	r    io.Reader
	h    hash.Hash
	want v1.Hash
	err  error
}

func (v *verifyReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		got := fmt.Sprintf("%x", v.h.Sum(nil))
		if got != v.want.Hex {
			v.err = fmt.Errorf("uncompressed layer has digest sha256:%s, not diff ID %s: %w", got, v.want, errdefs.ErrDataCorrupt)
			return n, v.err
		}
	}
	return n, err
}

// PrepareRootfs unpacks img's layers into the cache (those not there yet)
// and creates the per-container directories upper/, work/ and rootfs/ in
// containerDir, which must exist. It returns the layer directories, base
// first, for MountRootfs.
func PrepareRootfs(ctx context.Context, cache *LayerCache, s *store.Store, img store.Image, containerDir string) ([]string, error) {
	lowers, err := cache.Unpack(ctx, s, img)
	if err != nil {
		return nil, fmt.Errorf("prepare root file system: %w", err)
	}
	if _, err := os.Stat(containerDir); err != nil {
		return nil, fmt.Errorf("prepare root file system: container directory: %w", err)
	}
	for _, d := range []string{UpperDir, WorkDir, RootfsDir} {
		if err := os.Mkdir(filepath.Join(containerDir, d), 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("prepare root file system: %w", err)
		}
	}
	// The upper directory's root becomes the container's "/": 0755 like
	// the image's root, not MkdirTemp-private.
	if err := os.Chmod(filepath.Join(containerDir, UpperDir), 0o755); err != nil {
		return nil, fmt.Errorf("prepare root file system: %w", err)
	}
	return lowers, nil
}

// MountRootfs mounts the overlay of lowers (base first) with the
// container's upper and work directories on containerDir/rootfs and returns
// that path. A container with a read-only root file system still gets a
// writable overlay; the read-only flag goes into the spec (Root.Readonly).
// opts are passed to rootfs.MountOverlay.
func MountRootfs(ctx context.Context, containerDir string, lowers []string, opts ...rootfs.MountOption) (string, error) {
	target := filepath.Join(containerDir, RootfsDir)
	err := rootfs.MountOverlay(ctx, target, lowers,
		filepath.Join(containerDir, UpperDir), filepath.Join(containerDir, WorkDir), opts...)
	if err != nil {
		return "", err
	}
	return target, nil
}

// UnmountRootfs unmounts containerDir/rootfs. Not being mounted is not an
// error.
func UnmountRootfs(containerDir string) error {
	return rootfs.Unmount(filepath.Join(containerDir, RootfsDir))
}
