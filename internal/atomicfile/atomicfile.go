// Package atomicfile writes files so that readers see either the old
// content or the new, never a mix, even across a crash.
package atomicfile

import (
	"os"
	"path/filepath"
)

// WriteFile writes data to path through a temporary file in the same
// directory (named ".<base>.tmp-*"), fsyncs it, sets perm, renames it into
// place and fsyncs the directory. On error the temporary file is removed.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	if err := write(path, data, perm, true); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// WriteFileNoDirSync is WriteFile without the directory fsync: the new
// content is on disk before it replaces the old, so after a crash path
// holds the old content or the new, never a damaged mix, but the
// replacement itself (or a new file's name) may be lost. For files
// rewritten often whose latest version matters less than never being
// damaged, such as a container's state; callers that need a new name to
// survive a crash fsync its directory once (SyncDir).
func WriteFileNoDirSync(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, true)
}

// WriteFileNoSync is WriteFile without the fsyncs: readers still see the
// old content or the new, never a mix, but after a crash path may hold
// either, or be empty or damaged. For derived data that is cheap to
// rebuild, such as caches.
func WriteFileNoSync(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, false)
}

func write(path string, data []byte, perm os.FileMode, sync bool) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, perm)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// SyncDir fsyncs a directory, making renames and creations in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// TempPattern is the glob that matches WriteFile's temporary files for
// path, for cleaning up after a process killed mid-write.
func TempPattern(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
}
