package archive

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/reference"
	"github.com/berthsh/berth/pkg/store"
)

// Archive formats Save writes.
const (
	// FormatDocker is the format of "docker save" since docker 25: a
	// manifest.json that every docker version loads, plus an OCI image
	// layout (oci-layout, index.json, blobs/sha256/…) in the same tar.
	FormatDocker = "docker"
	// FormatOCI is an OCI image layout in a tar ("oci-archive" to skopeo
	// and podman).
	FormatOCI = "oci"
)

// SaveOptions tune Save.
type SaveOptions struct {
	// Format is FormatDocker (the default when empty) or FormatOCI.
	Format string
}

// epoch is the modification time of every entry Save writes, so that the
// same images always give the same bytes.
var epoch = time.Unix(0, 0)

// saveImage is an image to save with the names it is saved under.
type saveImage struct {
	img      store.Image
	manifest *v1.Manifest
	tags     []reference.Reference
}

// Save writes the images named by names to w as a tar archive. A name
// ("python:3.11") is saved with that tag; a repository without tag
// ("python") with every tag it has in the store; an image given by ID or
// digest without a tag, as docker does. Blobs are streamed from the store
// (verified as they are read) and each is written once. The output
// depends only on the images and names: entries are sorted and carry
// fixed times and owners.
//
// In FormatDocker, manifest.json lists RepoTags in docker's short form
// ("python:3.11"), and index.json carries the full name in
// io.containerd.image.name and the tag in org.opencontainers.image.ref.name,
// as docker writes them. In FormatOCI both annotations hold the full name
// ("docker.io/library/python:3.11").
func Save(ctx context.Context, s *store.Store, names []string, w io.Writer, opts SaveOptions) error {
	format := opts.Format
	if format == "" {
		format = FormatDocker
	}
	if format != FormatDocker && format != FormatOCI {
		return fmt.Errorf("save: unknown format %q (want %q or %q): %w", format, FormatDocker, FormatOCI, errdefs.ErrInvalidArgument)
	}
	if len(names) == 0 {
		return fmt.Errorf("save: no image given: %w", errdefs.ErrInvalidArgument)
	}
	// The lease keeps GC from removing blobs while they are being read.
	lease, err := s.Lease(ctx)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	defer lease.Release()

	imgs, err := resolveSave(ctx, s, names)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	blobs := map[v1.Hash]int64{}
	addBlob := func(d v1.Descriptor) error {
		if n, ok := blobs[d.Digest]; ok && n != d.Size {
			return fmt.Errorf("blob %s is listed with sizes %d and %d: %w", d.Digest, n, d.Size, errdefs.ErrDataCorrupt)
		}
		blobs[d.Digest] = d.Size
		return nil
	}
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}}
	var dm []dockerManifestEntry
	for _, si := range imgs {
		md := si.img.Manifest
		if md.MediaType == "" {
			md.MediaType = si.manifest.MediaType
		}
		if md.MediaType == "" {
			md.MediaType = types.OCIManifestSchema1
		}
		md.Annotations = nil
		for _, d := range append([]v1.Descriptor{md, si.manifest.Config}, si.manifest.Layers...) {
			if err := addBlob(d); err != nil {
				return fmt.Errorf("save: %w", err)
			}
		}
		e := dockerManifestEntry{Config: blobPath(si.manifest.Config.Digest), Layers: []string{}}
		for _, l := range si.manifest.Layers {
			e.Layers = append(e.Layers, blobPath(l.Digest))
		}
		if len(si.tags) == 0 {
			idx.Manifests = append(idx.Manifests, md)
		}
		for _, t := range si.tags {
			d := md
			if format == FormatDocker {
				d.Annotations = map[string]string{store.AnnotationContainerdName: t.String(), store.AnnotationRefName: t.Tag()}
			} else {
				d.Annotations = map[string]string{store.AnnotationContainerdName: t.String(), store.AnnotationRefName: t.String()}
			}
			idx.Manifests = append(idx.Manifests, d)
			e.RepoTags = append(e.RepoTags, t.Familiar())
		}
		dm = append(dm, e)
	}
	rawIndex, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	var rawDocker []byte
	if format == FormatDocker {
		if rawDocker, err = json.Marshal(dm); err != nil {
			return err
		}
	}

	digests := make([]v1.Hash, 0, len(blobs))
	for d := range blobs {
		digests = append(digests, d)
	}
	sort.Slice(digests, func(i, j int) bool { return digests[i].Hex < digests[j].Hex })

	tw := tar.NewWriter(w)
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: epoch}); err != nil {
			return fmt.Errorf("save: %w", err)
		}
	}
	for _, d := range digests {
		if err := writeBlobEntry(ctx, tw, s, d, blobs[d]); err != nil {
			return fmt.Errorf("save: %w", err)
		}
	}
	files := []struct {
		name string
		data []byte
	}{
		{"index.json", rawIndex},
		{"manifest.json", rawDocker},
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
	}
	for _, f := range files {
		if f.data == nil {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: epoch}); err != nil {
			return fmt.Errorf("save: %w", err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return fmt.Errorf("save: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

// writeBlobEntry streams one stored blob into the tar.
func writeBlobEntry(ctx context.Context, tw *tar.Writer, s *store.Store, d v1.Hash, size int64) error {
	rc, err := s.OpenBlob(ctx, d)
	if err != nil {
		return err
	}
	defer rc.Close()
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: blobPath(d), Mode: 0o644, Size: size, ModTime: epoch}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.Copy(tw, ctxReader{ctx, rc})
	if errors.Is(err, tar.ErrWriteTooLong) {
		return fmt.Errorf("blob %s is larger than the %d bytes its manifest says: %w", d, size, errdefs.ErrDataCorrupt)
	}
	if err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	if n != size {
		return fmt.Errorf("blob %s is %d bytes, its manifest says %d: %w", d, n, size, errdefs.ErrDataCorrupt)
	}
	return nil
}

// resolveSave finds the images names refer to, in order of first mention,
// each once, with the tags to save them under.
func resolveSave(ctx context.Context, s *store.Store, names []string) ([]*saveImage, error) {
	var out []*saveImage
	add := func(img store.Image, tag *reference.Reference) error {
		var si *saveImage
		for _, x := range out {
			if x.img.Manifest.Digest == img.Manifest.Digest {
				si = x
			}
		}
		if si == nil {
			m, err := s.Manifest(ctx, img)
			if err != nil {
				return err
			}
			si = &saveImage{img: img, manifest: m}
			out = append(out, si)
		}
		if tag != nil && !hasName(si.tags, *tag) {
			si.tags = append(si.tags, *tag)
		}
		return nil
	}
	var all []store.Image
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// A repository without tag or digest: every tag of it, as docker.
		if repo, err := reference.ParseRepository(n); err == nil && repo.Tag() == "" && repo.Digest() == "" {
			if all == nil {
				if all, err = s.List(ctx); err != nil {
					return nil, err
				}
			}
			type match struct {
				img store.Image
				tag reference.Reference
			}
			var found []match
			for _, img := range all {
				for _, t := range img.Names {
					if t.Repository() == repo.Repository() && t.Tag() != "" {
						found = append(found, match{img, t})
					}
				}
			}
			sort.Slice(found, func(i, j int) bool { return found[i].tag.String() < found[j].tag.String() })
			for _, m := range found {
				if err := add(m.img, &m.tag); err != nil {
					return nil, err
				}
			}
			if len(found) > 0 {
				continue
			}
		}
		img, err := s.Get(ctx, n)
		if err != nil {
			return nil, err
		}
		var tag *reference.Reference
		if ref, err := reference.Parse(n); err == nil && ref.Digest() == "" && hasName(img.Names, ref) {
			tag = &ref
		}
		if err := add(img, tag); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SaveToFile is Save into the file at path, written atomically: to a
// temporary file in the same directory, synced and renamed into place, so
// that an error or interruption leaves no partial archive behind. A path
// that exists and is not a regular file (/dev/null, a FIFO) is written
// directly.
func SaveToFile(ctx context.Context, s *store.Store, names []string, path string, opts SaveOptions) (err error) {
	if fi, serr := os.Stat(path); serr == nil && !fi.Mode().IsRegular() {
		if fi.IsDir() {
			return fmt.Errorf("save: %s is a directory: %w", path, errdefs.ErrInvalidArgument)
		}
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("save: %w", classifyFS(err))
		}
		bw := bufio.NewWriterSize(f, 1<<20)
		err = Save(ctx, s, names, bw, opts)
		if err == nil {
			err = bw.Flush()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("save: %w", classifyFS(err))
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := Save(ctx, s, names, bw, opts); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("save: write %s: %w", path, classifyFS(err))
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("save: %w", classifyFS(err))
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("save: write %s: %w", path, classifyFS(err))
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save: write %s: %w", path, classifyFS(err))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save: %w", classifyFS(err))
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func classifyFS(err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w: %w", err, errdefs.ErrPermission)
	}
	return err
}
