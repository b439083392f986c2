package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthsh/berth/internal/atomicfile"
	"github.com/berthsh/berth/pkg/errdefs"
)

// SpecFile is the name of a container's OCI spec in its directory (its
// config.json is berth's ContainerConfig).
const SpecFile = "spec.json"

// SaveSpec writes spec to dir/spec.json atomically (temporary file,
// rename; not fsynced: every start writes it afresh), so that other
// processes (exec, inspect) can read it.
func SaveSpec(dir string, spec *specs.Spec) error {
	data, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		return fmt.Errorf("save spec: %w", err)
	}
	if err := writeDerivedFile(filepath.Join(dir, SpecFile), data, 0o600); err != nil {
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

// writeDerivedFile writes a file that every start of the container
// writes afresh (its spec, hostname, hosts and resolv.conf): atomically,
// so that readers never see a mix, but without fsyncs, which would only
// make durable what the next start rewrites anyway.
func writeDerivedFile(path string, data []byte, mode os.FileMode) error {
	return atomicfile.WriteFileNoSync(path, data, mode)
}
