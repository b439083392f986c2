package build

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berthsh/berth/pkg/build/buildtest"
	"github.com/berthsh/berth/pkg/store"
)

// TestCorpus builds every Dockerfile of testdata/corpus and checks the
// image's config and merged file tree against the case's expect.json. The
// cases share one state root (layer and build caches), as builds on one
// machine do, and run in parallel.
func TestCorpus(t *testing.T) {
	cases, err := buildtest.LoadCorpus(filepath.Join("testdata", "corpus"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 40 {
		t.Fatalf("corpus has %d cases, want at least 40", len(cases))
	}
	e := newEnv(t)
	base, err := e.s.Get(t.Context(), corpusBase)
	if err != nil {
		t.Fatal(err)
	}
	baseManifest, err := e.s.Manifest(t.Context(), base)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("case", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.Name, func(t *testing.T) {
				t.Parallel()
				ctxDir := t.TempDir()
				if err := c.WriteContext(ctxDir); err != nil {
					t.Fatal(err)
				}
				opts := Options{
					Dockerfile: c.DockerfilePath(ctxDir),
					BuildArgs:  c.Expect.BuildArgs,
					Target:     c.Expect.Target,
					Network:    c.Expect.Network,
					Tags:       tag(t, "corpus/"+strings.ToLower(c.Name)+":1"),
				}
				if len(c.Expect.Secrets) > 0 {
					opts.Secrets = map[string]string{}
					for id, v := range c.Expect.Secrets {
						p := filepath.Join(t.TempDir(), id)
						if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
							t.Fatal(err)
						}
						opts.Secrets[id] = p
					}
				}
				ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
				defer cancel()
				res, _, err := e.buildCtx(ctx, t, ctxDir, opts)
				if c.Expect.Error != "" {
					if err == nil {
						t.Fatalf("build succeeded, want an error mentioning %q", c.Expect.Error)
					}
					if !strings.Contains(err.Error(), c.Expect.Error) {
						t.Fatalf("error %q does not mention %q", err, c.Expect.Error)
					}
					if _, gerr := e.s.Get(t.Context(), opts.Tags[0].String()); gerr == nil {
						t.Errorf("failed build named %s", opts.Tags[0])
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				tree, added, cf := imageTree(t, e.s, res.Image, baseManifest.Layers)
				for _, d := range c.Expect.Check(cf, tree, added) {
					t.Error(d)
				}
			})
		}
	})
}

// imageTree merges the image's layers and returns the tree, the number of
// layers over those of the base (which images FROM scratch lack) and the
// config.
func imageTree(t *testing.T, s *store.Store, img store.Image, base []v1.Descriptor) (*buildtest.Tree, int, *v1.ConfigFile) {
	t.Helper()
	ctx := t.Context()
	m, err := s.Manifest(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	cf, _, err := s.ConfigFile(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	baseLayers := 0
	for baseLayers < len(base) && baseLayers < len(m.Layers) && m.Layers[baseLayers].Digest == base[baseLayers].Digest {
		baseLayers++
	}
	var layers [][]byte
	for _, l := range m.Layers {
		rc, err := s.OpenBlob(ctx, l.Digest)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, data)
	}
	tree, err := buildtest.TreeFromLayers(layers, baseLayers)
	if err != nil {
		t.Fatal(err)
	}
	return tree, len(m.Layers) - baseLayers, cf
}
