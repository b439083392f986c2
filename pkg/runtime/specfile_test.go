package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/berthsh/berth/pkg/errdefs"
)

func TestSaveLoadSpec(t *testing.T) {
	root := fakeRootfs(t)
	spec := mustSpec(t, nil, root, CreateOptions{Cmd: []string{"x"}, Memory: 64 << 20, User: "app"})
	dir := t.TempDir()
	if _, err := LoadSpec(dir); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing spec: err = %v, want ErrNotFound", err)
	}
	if err := SaveSpec(dir, spec); err != nil {
		t.Fatal(err)
	}
	got, err := LoadSpec(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, spec) {
		t.Errorf("round trip changed the spec:\n got %+v\nwant %+v", got, spec)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d files, want only %s", len(entries), SpecFile)
	}
	if err := os.WriteFile(filepath.Join(dir, SpecFile), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSpec(dir); !errors.Is(err, errdefs.ErrDataCorrupt) {
		t.Errorf("damaged spec: err = %v, want ErrDataCorrupt", err)
	}
}
