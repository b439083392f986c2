package volume

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// Seed copies the directory tree at src into the named volume, as docker
// fills an empty named volume from the image the first time a container
// mounts it. src is the mount target's path inside the container's
// prepared root file system, already resolved by the caller (within the
// root file system); when src does not exist or is not a directory (a
// symlink at src is not followed) nothing happens.
//
// Seed copies only when the volume's data directory is empty and the
// volume was never seeded before, and then records that it was seeded.
// The copy keeps ownership, permission bits, symlinks (as symlinks, never
// followed), hard links within src, extended attributes, device nodes and
// FIFOs, and timestamps; sockets are skipped. Ownership and extended
// attributes that the caller lacks the privilege to set are left as they
// come when berth does not run as root. The data directory itself takes
// src's owner, mode and timestamps, also when src is empty.
//
// seeded reports whether content was copied. The tree is copied beside the
// data directory and then moved in entry by entry, so a failed copy leaves
// the volume empty; a crash may leave some top-level entries in place, and
// then the volume counts as not empty and is not seeded again.
func (s *Store) Seed(ctx context.Context, name, src string) (seeded bool, err error) {
	if ValidateName(name) != nil {
		return false, noSuchVolume(name)
	}
	if _, err := s.load(name); err != nil {
		return false, err
	}
	fi, err := os.Lstat(src)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("seed volume %s: %w", name, classifyFSError(err))
	}
	if !fi.IsDir() {
		return false, nil
	}

	volDir := s.path(name)
	l, err := lockDir(ctx, volDir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, noSuchVolume(name)
	}
	if err != nil {
		return false, fmt.Errorf("seed volume %s: %w", name, err)
	}
	defer l.Unlock()
	if !l.IsAt(volDir) {
		return false, noSuchVolume(name) // removed while we waited
	}
	v, err := s.load(name)
	if err != nil {
		return false, err
	}
	if v.Seeded {
		return false, nil
	}
	// Leftovers of a killed Seed.
	if entries, err := os.ReadDir(volDir); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), seedPrefix) {
				os.RemoveAll(s.path(name, e.Name()))
			}
		}
	}
	data := s.path(name, dataDir)
	empty, err := isEmptyDir(data)
	if err != nil {
		return false, fmt.Errorf("seed volume %s: %w", name, classifyFSError(err))
	}
	if !empty {
		return false, nil
	}
	copied, err := seedData(ctx, src, data, volDir)
	if err != nil {
		return false, fmt.Errorf("seed volume %s from %s: %w", name, src, classifyFSError(err))
	}
	if !copied {
		return false, nil
	}
	v.Seeded = true
	if err := writeMeta(s.path(name, metaFile), v); err != nil {
		return false, fmt.Errorf("seed volume %s: record seeding: %w", name, classifyFSError(err))
	}
	return true, nil
}

// isEmptyDir reports whether the directory dir has no entries.
func isEmptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}
