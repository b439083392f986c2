package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/reference"
)

// testImage is a random image created at the given time with labels.
func testImage(t *testing.T, created time.Time, labels map[string]string) v1.Image {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: created}
	cf.Config.Labels = labels
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func writeTest(t *testing.T, s *Store, img v1.Image, names ...string) Image {
	t.Helper()
	var refs []reference.Reference
	for _, n := range names {
		refs = append(refs, mustRef(t, n))
	}
	stored, err := s.WriteImage(context.Background(), img, WriteOptions{Names: refs})
	if err != nil {
		t.Fatal(err)
	}
	return stored
}

func TestParseImageFilter(t *testing.T) {
	t.Parallel()
	yes, no := true, false
	tests := []struct {
		args    []string
		want    ImageFilter
		wantErr bool
	}{
		{args: nil, want: ImageFilter{}},
		{args: []string{"dangling=true"}, want: ImageFilter{Dangling: &yes}},
		{args: []string{"dangling=FALSE"}, want: ImageFilter{Dangling: &no}},
		{args: []string{"reference=py*", "reference=me/app"}, want: ImageFilter{References: []string{"py*", "me/app"}}},
		{args: []string{"before=a:1", "since=b", "label=k", "label=k=v=w"},
			want: ImageFilter{Before: []string{"a:1"}, Since: []string{"b"}, Labels: []string{"k", "k=v=w"}}},
		{args: []string{"dangling=maybe"}, wantErr: true},
		{args: []string{"dangling=true", "dangling=false"}, wantErr: true},
		{args: []string{"nokey"}, wantErr: true},
		{args: []string{"until=1h"}, wantErr: true},
		{args: []string{"reference=[a"}, wantErr: true},
		{args: []string{"label="}, wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseImageFilter(tt.args)
		if tt.wantErr {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("ParseImageFilter(%q) error = %v, want invalid argument", tt.args, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseImageFilter(%q) = %+v, %v; want %+v", tt.args, got, err, tt.want)
		}
	}
}

func TestSummaries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	writeTest(t, s, testImage(t, base, map[string]string{"team": "data"}), "python:3.11", "me/python:3.11")
	writeTest(t, s, testImage(t, base.Add(time.Hour), map[string]string{"team": "web", "tier": "1"}), "pypy:3")
	writeTest(t, s, testImage(t, base.Add(2*time.Hour), nil), "ghcr.io/org/app:v1")
	writeTest(t, s, testImage(t, base.Add(3*time.Hour), nil)) // dangling

	yes, no := true, false
	tests := []struct {
		name   string
		filter ImageFilter
		want   []string // first name (sorted by full name) per image, "" for dangling
	}{
		{"all newest first", ImageFilter{}, []string{"", "ghcr.io/org/app:v1", "pypy:3", "python:3.11"}},
		{"dangling", ImageFilter{Dangling: &yes}, []string{""}},
		{"not dangling", ImageFilter{Dangling: &no}, []string{"ghcr.io/org/app:v1", "pypy:3", "python:3.11"}},
		{"reference glob", ImageFilter{References: []string{"py*"}}, []string{"pypy:3", "python:3.11"}},
		{"reference repository", ImageFilter{References: []string{"python"}}, []string{"python:3.11"}},
		{"reference with tag glob", ImageFilter{References: []string{"*/python:3.*"}}, []string{"me/python:3.11"}},
		{"reference full registry", ImageFilter{References: []string{"ghcr.io/org/*"}}, []string{"ghcr.io/org/app:v1"}},
		{"before", ImageFilter{Before: []string{"ghcr.io/org/app:v1"}}, []string{"pypy:3", "python:3.11"}},
		{"since", ImageFilter{Since: []string{"pypy:3"}}, []string{"", "ghcr.io/org/app:v1"}},
		{"before and since", ImageFilter{Before: []string{"ghcr.io/org/app:v1"}, Since: []string{"python:3.11"}}, []string{"pypy:3"}},
		{"label key", ImageFilter{Labels: []string{"team"}}, []string{"pypy:3", "python:3.11"}},
		{"label value", ImageFilter{Labels: []string{"team=web"}}, []string{"pypy:3"}},
		{"labels all match", ImageFilter{Labels: []string{"team=data", "tier"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sums, err := s.Summaries(ctx, tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, sum := range sums {
				n := ""
				if len(sum.Names) > 0 {
					n = sum.Names[0].Familiar()
				}
				got = append(got, n)
				if sum.Size <= 0 || sum.ID.Algorithm != "sha256" {
					t.Errorf("summary %s: size %d, ID %s", n, sum.Size, sum.ID)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := s.Summaries(ctx, ImageFilter{Before: []string{"nosuch:1"}}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("before=unknown: %v, want not found", err)
	}
}

func TestInspect(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2024, 5, 1, 12, 0, 0, 123, time.UTC)
	img := testImage(t, created, map[string]string{"a": "b"})
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Variant, cf.Author = "arm64", "linux", "v8", "me"
	cf.Config.Cmd = []string{"python3", "-m", "app"}
	cf.Config.Env = []string{"PATH=/usr/bin"}
	cf.Config.WorkingDir = "/app"
	cf.Config.ExposedPorts = map[string]struct{}{"8000/tcp": {}}
	cf.Config.Healthcheck = &v1.HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Second}
	cf.History[len(cf.History)-1].Comment = "last step"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	rd := "docker.io/library/python@sha256:" + "ab" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"
	stored, err := s.WriteImage(ctx, img, WriteOptions{Names: []reference.Reference{mustRef(t, "python:3.11")}, RepoDigests: []string{rd}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Inspect(ctx, stored)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := img.ConfigName()
	size, _ := s.Size(ctx, stored)
	if got.Id != id.String() {
		t.Errorf("Id %s, want %s", got.Id, id)
	}
	if !reflect.DeepEqual(got.RepoTags, []string{"python:3.11"}) {
		t.Errorf("RepoTags %q", got.RepoTags)
	}
	if !reflect.DeepEqual(got.RepoDigests, []string{"python@sha256:ab0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"}) {
		t.Errorf("RepoDigests %q", got.RepoDigests)
	}
	if got.Created != "2024-05-01T12:00:00.000000123Z" {
		t.Errorf("Created %q", got.Created)
	}
	if !reflect.DeepEqual(got.Config.Cmd, cf.Config.Cmd) || got.Config.WorkingDir != "/app" || got.Config.Labels["a"] != "b" {
		t.Errorf("Config %+v", got.Config)
	}
	if _, ok := got.Config.ExposedPorts["8000/tcp"]; !ok {
		t.Errorf("ExposedPorts %v", got.Config.ExposedPorts)
	}
	if got.Config.Healthcheck == nil || got.Config.Healthcheck.Interval != time.Second {
		t.Errorf("Healthcheck %+v", got.Config.Healthcheck)
	}
	if got.Architecture != "arm64" || got.Os != "linux" || got.Variant != "v8" || got.Author != "me" || got.Comment != "last step" {
		t.Errorf("platform/author/comment: %+v", got)
	}
	if got.Size != size || got.RootFS.Type != "layers" || len(got.RootFS.Layers) != 2 {
		t.Errorf("Size %d (want %d), RootFS %+v", got.Size, size, got.RootFS)
	}
	if got.Metadata.LastTagTime.IsZero() || got.Descriptor == nil || got.Descriptor.Digest != stored.Digest() {
		t.Errorf("Metadata %+v, Descriptor %+v", got.Metadata, got.Descriptor)
	}
}

func TestHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	img := testImage(t, created, nil)
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.History = append(cf.History, v1.History{CreatedBy: "CMD [\"python3\"]", EmptyLayer: true, Created: v1.Time{Time: created}})
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	stored := writeTest(t, s, img, "app:v1")
	hist, err := s.History(ctx, stored)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != len(cf.History) {
		t.Fatalf("%d entries, want %d", len(hist), len(cf.History))
	}
	m, _ := img.Manifest()
	id, _ := img.ConfigName()
	if hist[0].ID != id.String() || !hist[0].EmptyLayer || hist[0].Size != 0 || hist[0].CreatedBy != `CMD ["python3"]` {
		t.Errorf("newest entry %+v", hist[0])
	}
	if !reflect.DeepEqual(hist[0].Tags, []string{"app:v1"}) {
		t.Errorf("tags %q", hist[0].Tags)
	}
	// Older entries are the layers, newest first.
	for i, want := range []int64{m.Layers[1].Size, m.Layers[0].Size} {
		if e := hist[i+1]; e.ID != HistoryMissingID || e.Size != want || e.EmptyLayer {
			t.Errorf("entry %d: %+v, want size %d", i+1, e, want)
		}
	}

	// An image without history gets one entry per layer.
	bare, err := random.Image(256, 3)
	if err != nil {
		t.Fatal(err)
	}
	bcf, _ := bare.ConfigFile()
	bcf = bcf.DeepCopy()
	bcf.History = nil
	bare, err = mutate.ConfigFile(bare, bcf)
	if err != nil {
		t.Fatal(err)
	}
	hist, err = s.History(ctx, writeTest(t, s, bare, "bare:1"))
	if err != nil || len(hist) != 3 {
		t.Fatalf("bare history: %d entries, %v", len(hist), err)
	}
}

func TestDiskUsage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	extra, err := random.Layer(1024, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	derived, err := mutate.AppendLayers(base, extra)
	if err != nil {
		t.Fatal(err)
	}
	dangling, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	bImg := writeTest(t, s, base, "base:1")
	dImg := writeTest(t, s, derived, "derived:1")
	xImg := writeTest(t, s, dangling)

	du, err := s.DiskUsage(ctx, DiskUsageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	size := func(img Image) int64 {
		n, err := s.Size(ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	bm, _ := base.Manifest()
	shared := bm.Layers[0].Size + bm.Layers[1].Size
	if want := size(bImg) + size(dImg) + size(xImg) - shared; du.Size != want {
		t.Errorf("Size %d, want %d", du.Size, want)
	}
	if du.Reclaimable != size(xImg) {
		t.Errorf("Reclaimable %d, want %d", du.Reclaimable, size(xImg))
	}
	if len(du.Images) != 3 || du.Active != 0 {
		t.Fatalf("images %d, active %d", len(du.Images), du.Active)
	}
	for _, u := range du.Images {
		want := int64(0)
		if u.Digest() == bImg.Digest() || u.Digest() == dImg.Digest() {
			want = shared
		}
		if u.SharedSize != want || u.UniqueSize() != u.Size-want {
			t.Errorf("%v: shared %d, want %d", u.Names, u.SharedSize, want)
		}
	}
	// An image a container uses is active and not reclaimable.
	du, err = s.DiskUsage(ctx, DiskUsageOptions{Containers: func(img Image) int {
		if img.Digest() == xImg.Digest() {
			return 2
		}
		return 0
	}})
	if err != nil || du.Active != 1 || du.Reclaimable != 0 {
		t.Errorf("with container: active %d, reclaimable %d, %v", du.Active, du.Reclaimable, err)
	}
}
