package buildtest

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ReadDockerArchive reads the first image of a docker-archive tar ("docker
// save", "berth save"): its config and its layers (as stored, compressed
// or not), base first.
func ReadDockerArchive(file string) (*v1.ConfigFile, [][]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	members := map[string][]byte{}
	links := map[string]string{} // docker save links a layer met twice
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", file, err)
		}
		if h.Typeflag == tar.TypeSymlink {
			links[path.Clean(h.Name)] = path.Join(path.Dir(h.Name), h.Linkname)
			continue
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", file, err)
		}
		members[path.Clean(h.Name)] = data
	}
	var manifest []struct {
		Config string
		Layers []string
	}
	if err := json.Unmarshal(members["manifest.json"], &manifest); err != nil || len(manifest) == 0 {
		return nil, nil, fmt.Errorf("%s: no usable manifest.json (%v)", file, err)
	}
	m := manifest[0]
	var cf v1.ConfigFile
	if err := json.Unmarshal(members[path.Clean(m.Config)], &cf); err != nil {
		return nil, nil, fmt.Errorf("%s: config %s: %w", file, m.Config, err)
	}
	var layers [][]byte
	for _, l := range m.Layers {
		name := path.Clean(l)
		if target, ok := links[name]; ok {
			name = target
		}
		data, ok := members[name]
		if !ok {
			return nil, nil, fmt.Errorf("%s: layer %s missing", file, l)
		}
		layers = append(layers, data)
	}
	return &cf, layers, nil
}
