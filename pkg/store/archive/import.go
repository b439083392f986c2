package archive

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/reference"
	"github.com/berthsh/berth/pkg/store"
)

// ImportOptions tune Import.
type ImportOptions struct {
	// Changes are Dockerfile instructions applied to the image config, as
	// with "docker import --change" (see ApplyChanges).
	Changes []string
	// Message is the comment of the image's history entry.
	Message string
	// Platform is the image's platform; zero means this machine's
	// (linux/GOARCH).
	Platform v1.Platform
	// Ref, if set, names the image.
	Ref *reference.Reference
	// Created is the image's creation time. Zero means $SOURCE_DATE_EPOCH
	// when set, else now.
	Created time.Time
	// Warn, if set, is told about entries left out of the layer (device
	// nodes).
	Warn func(msg string)
}

// Import makes a one-layer image from a root filesystem tarball read from
// r (plain, or compressed with gzip, zstd or bzip2). The tar is rewritten
// as it is stored: names lose leading "/" and "./" and are cleaned, an
// entry or hard link that leads outside the root is rejected, character
// and block devices are dropped (a container's /dev is provided at run
// time), symbolic links are kept as they are; owners, modes, times and
// extended attributes are kept. The layer is gzip-compressed with fixed
// settings, so the same tarball (with the same Created time) always gives
// the same image ID.
func Import(ctx context.Context, s *store.Store, r io.Reader, opts ImportOptions) (store.Image, error) {
	var cfg v1.Config
	if err := ApplyChanges(&cfg, opts.Changes); err != nil {
		return store.Image{}, fmt.Errorf("import: %w", err)
	}
	plat := opts.Platform
	if plat.OS == "" && plat.Architecture == "" {
		plat = v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	}
	if plat.OS == "" || plat.Architecture == "" {
		return store.Image{}, fmt.Errorf("import: platform %q needs both OS and architecture: %w", plat.String(), errdefs.ErrInvalidArgument)
	}
	created, err := createdTime(opts.Created)
	if err != nil {
		return store.Image{}, fmt.Errorf("import: %w", err)
	}
	var names []reference.Reference
	if opts.Ref != nil {
		if opts.Ref.Digest() != "" {
			return store.Image{}, fmt.Errorf("import: %s: a name with a digest cannot be a tag: %w", opts.Ref.Familiar(), errdefs.ErrInvalidArgument)
		}
		names = append(names, *opts.Ref)
	}

	lease, err := s.Lease(ctx)
	if err != nil {
		return store.Image{}, fmt.Errorf("import: %w", err)
	}
	defer lease.Release()

	layer, stats, err := importLayer(ctx, s, r)
	if err != nil {
		return store.Image{}, fmt.Errorf("import: %w", err)
	}
	if stats.devices > 0 && opts.Warn != nil {
		opts.Warn(fmt.Sprintf("left out %d device node(s) (such as %s): a container's /dev is provided when it runs", stats.devices, stats.firstDevice))
	}

	l, err := s.Layer(ctx, v1.Descriptor{MediaType: types.OCILayer, Size: layer.Size, Digest: layer.Digest}, layer.DiffID)
	if err != nil {
		return store.Image{}, fmt.Errorf("import: %w", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     l,
		MediaType: types.OCILayer,
		History:   v1.History{Created: v1.Time{Time: created}, CreatedBy: "berth import", Comment: opts.Message},
	})
	if err != nil {
		return store.Image{}, fmt.Errorf("import: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return store.Image{}, fmt.Errorf("import: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: created}
	cf.OS, cf.Architecture, cf.Variant = plat.OS, plat.Architecture, plat.Variant
	cf.OSVersion, cf.OSFeatures = plat.OSVersion, plat.OSFeatures
	cf.Config = cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return store.Image{}, fmt.Errorf("import: %w", err)
	}
	stored, err := s.WriteImage(ctx, img, store.WriteOptions{Names: names})
	if err != nil {
		return store.Image{}, fmt.Errorf("import: %w", err)
	}
	return stored, nil
}

// createdTime picks the creation time: t, else $SOURCE_DATE_EPOCH, else
// now.
func createdTime(t time.Time) (time.Time, error) {
	if !t.IsZero() {
		return t.UTC(), nil
	}
	if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
		sec, err := strconv.ParseInt(v, 10, 64)
		if err != nil || sec < 0 {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds: %w", v, errdefs.ErrInvalidArgument)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	return time.Now().UTC(), nil
}

type importStats struct {
	entries     int
	devices     int
	firstDevice string
}

// importLayer rewrites the tarball r (decompressed) into a normalised tar,
// compresses it and stores it, computing diff ID and digest in the same
// pass. The caller holds a lease.
func importLayer(ctx context.Context, s *store.Store, r io.Reader) (storedLayer, importStats, error) {
	var stats importStats
	src := &sourceReader{r: r}
	br := bufio.NewReaderSize(ctxReader{ctx, src}, 1<<20)
	c, err := sniff(br)
	if err != nil {
		return storedLayer{}, stats, fmt.Errorf("read input: %w", err)
	}
	dr, err := decompress(br, c)
	if err != nil {
		return storedLayer{}, stats, err
	}
	defer dr.Close()

	w, err := s.NewWriter(ctx)
	if err != nil {
		return storedLayer{}, stats, err
	}
	defer w.Close()
	dst := &sinkWriter{w: w}
	zw, err := newGzipWriter(dst)
	if err != nil {
		return storedLayer{}, stats, err
	}
	diff := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(diff, zw))
	stats, err = rewriteTar(ctxReader{ctx, dr}, tw)
	if err == nil {
		err = tw.Close()
	}
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return storedLayer{}, stats, classify(ctx, err, src, dst)
	}
	info, err := w.Commit(ctx, v1.Hash{}, -1)
	if err != nil {
		return storedLayer{}, stats, err
	}
	return storedLayer{
		Digest:    info.Digest,
		Size:      info.Size,
		DiffID:    v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(diff.Sum(nil))},
		MediaType: types.OCILayer,
	}, stats, nil
}

// rewriteTar copies the tar r to tw, normalising names and rejecting or
// dropping what must not be in an image layer (see Import).
func rewriteTar(r io.Reader, tw *tar.Writer) (importStats, error) {
	var stats importStats
	cr := &countReader{r: r}
	tr := tar.NewReader(cr)
	dropped := map[string]bool{} // device nodes left out
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if stats.entries == 0 && (errors.Is(err, tar.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF)) {
				return stats, fmt.Errorf("%w: %v", errNotTar, err)
			}
			return stats, tarError(err)
		}
		stats.entries++
		name, ok := normalizeName(hdr.Name)
		if !ok {
			return stats, fmt.Errorf("entry %q leads outside the root filesystem: %w", hdr.Name, errdefs.ErrInvalidArgument)
		}
		typ := hdr.Typeflag
		switch typ {
		case tar.TypeRegA, tar.TypeGNUSparse:
			typ = tar.TypeReg // archive/tar reads sparse files expanded
		case tar.TypeChar, tar.TypeBlock:
			if stats.devices == 0 {
				stats.firstDevice = "/" + name
			}
			stats.devices++
			dropped[name] = true
			continue
		case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo:
		default:
			continue // global PAX headers, GNU volume labels and the like
		}
		if name == "" {
			continue // the root directory itself
		}
		out := &tar.Header{
			Typeflag: typ,
			Name:     name,
			Mode:     hdr.Mode,
			Uid:      hdr.Uid,
			Gid:      hdr.Gid,
			Uname:    hdr.Uname,
			Gname:    hdr.Gname,
			ModTime:  hdr.ModTime,
			Format:   tar.FormatPAX,
		}
		for k, v := range hdr.PAXRecords {
			if strings.HasPrefix(k, "SCHILY.xattr.") || strings.HasPrefix(k, "LIBARCHIVE.xattr.") {
				if out.PAXRecords == nil {
					out.PAXRecords = map[string]string{}
				}
				out.PAXRecords[k] = v
			}
		}
		switch typ {
		case tar.TypeDir:
			out.Name += "/"
		case tar.TypeReg:
			out.Size = hdr.Size
		case tar.TypeSymlink:
			out.Linkname = hdr.Linkname
		case tar.TypeLink:
			target, ok := normalizeName(hdr.Linkname)
			if !ok || target == "" {
				return stats, fmt.Errorf("entry %q is a hard link to %q, outside the root filesystem: %w", hdr.Name, hdr.Linkname, errdefs.ErrInvalidArgument)
			}
			if dropped[target] {
				stats.devices++ // a link to a device node that was left out
				continue
			}
			out.Linkname = target
		}
		if err := tw.WriteHeader(out); err != nil {
			return stats, fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
		if typ == tar.TypeReg {
			if _, err := io.Copy(tw, tr); err != nil {
				return stats, fmt.Errorf("entry %q: %w", hdr.Name, tarError(err))
			}
		}
	}
	if cr.n == 0 {
		return stats, fmt.Errorf("input is empty: %w", errNotTar)
	}
	return stats, nil
}

// OpenSource opens what "import" reads: "-" for stdin, an http:// or
// https:// URL (fetched with ctx), or a file.
func OpenSource(ctx context.Context, src string, stdin io.Reader) (io.ReadCloser, error) {
	switch {
	case src == "-":
		if stdin == nil {
			return nil, fmt.Errorf("no standard input to read: %w", errdefs.ErrInvalidArgument)
		}
		return io.NopCloser(stdin), nil
	case strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://"):
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
		if err != nil {
			return nil, fmt.Errorf("invalid URL %q: %v: %w", src, err, errdefs.ErrInvalidArgument)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("download %s: %v: %w", src, err, errdefs.ErrUnavailable)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			kind := errdefs.ErrUnavailable
			switch resp.StatusCode {
			case http.StatusNotFound, http.StatusGone:
				kind = errdefs.ErrNotFound
			case http.StatusUnauthorized, http.StatusForbidden:
				kind = errdefs.ErrUnauthorized
			}
			return nil, fmt.Errorf("download %s: %s: %w", src, resp.Status, kind)
		}
		return resp.Body, nil
	}
	f, err := os.Open(src)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such file: %w", src, errdefs.ErrNotFound)
		}
		return nil, classifyFS(err)
	}
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s is a directory, not a tarball: %w", src, errdefs.ErrInvalidArgument)
	}
	return f, nil
}
