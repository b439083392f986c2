package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthsh/berth/pkg/errdefs"
)

// SpecFile is the name of a container's spec in its directory, as in an
// OCI bundle.
const SpecFile = "config.json"

// SaveSpec writes spec to dir/config.json atomically (temporary file,
// fsync, rename), so that other processes (exec, inspect) can read it.
func SaveSpec(dir string, spec *specs.Spec) error {
	data, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		return fmt.Errorf("save spec: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, SpecFile), data, 0o600); err != nil {
		return fmt.Errorf("save spec: %w", err)
	}
	return nil
}

// LoadSpec reads the spec SaveSpec wrote in dir. A missing file fails
// with errdefs.ErrNotFound, a damaged one with errdefs.ErrDataCorrupt.
func LoadSpec(dir string) (*specs.Spec, error) {
	p := filepath.Join(dir, SpecFile)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load spec %s: %w", p, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load spec: %w", err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("load spec %s: %v: %w", p, err, errdefs.ErrDataCorrupt)
	}
	return &spec, nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(mode); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
