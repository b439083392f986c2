package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	units "github.com/docker/go-units"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestSystemDf(t *testing.T) {
	t.Parallel()
	e := newImgEnv(t)
	ctx := context.Background()
	o := imgOpts{created: time.Now().Add(-time.Hour)}
	base := newImg(t, o)
	extra, err := random.Layer(700, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	derived, err := mutate.AppendLayers(base, extra)
	if err != nil {
		t.Fatal(err)
	}
	baseID := e.put(base, o, "base:1")
	e.put(derived, o, "derived:1")
	e.put(newImg(t, o), o) // dangling

	var total, dangling, shared int64
	imgs, err := e.st.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		n, err := e.st.Size(ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		if len(img.Names) == 0 {
			dangling = n
		}
	}
	bm, _ := base.Manifest()
	shared = bm.Layers[0].Size + bm.Layers[1].Size
	total -= shared // counted once

	rows := tableRows(e.mustRun("system", "df"))
	want := [][]string{
		{"TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"},
		{"Images", "3", "0", units.HumanSize(float64(total)), fmt.Sprintf("%s (%d%%)", units.HumanSize(float64(dangling)), dangling*100/total)},
		{"Containers", "0", "0", "0B", "0B"},
		{"Local Volumes", "0", "0", "0B", "0B"},
		{"Build Cache", "0", "0", "0B", "0B"},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("system df:\n got %q\nwant %q", rows, want)
	}

	out := e.mustRun("system", "df", "--format", "json")
	var first map[string]string
	if err := json.Unmarshal([]byte(lines(out)[0]), &first); err != nil || len(lines(out)) != 4 {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if first["Type"] != "Images" || first["TotalCount"] != "3" || first["Active"] != "0" || first["Size"] != want[1][3] || first["Reclaimable"] != want[1][4] {
		t.Errorf("json row %v", first)
	}
	if got := e.mustRun("system", "df", "--format", "{{.Type}}={{.TotalCount}}"); got != "Images=3\nContainers=0\nLocal Volumes=0\nBuild Cache=0\n" {
		t.Errorf("template: %q", got)
	}

	// -v: per-image table with shared and unique sizes.
	out = e.mustRun("system", "df", "-v")
	for _, s := range []string{"Images space usage:\n\nREPOSITORY", "\n\nContainers space usage:\n\nCONTAINER ID", "\n\nLocal Volumes space usage:\n\nVOLUME NAME",
		"\n\nBuild cache usage: 0B\n\nCACHE ID"} {
		if !strings.Contains(out, s) {
			t.Errorf("-v output lacks %q:\n%s", s, out)
		}
	}
	var baseRow []string
	for _, r := range tableRows(out) {
		if r[0] == "base" {
			baseRow = r
		}
	}
	baseSize, _ := e.st.Size(ctx, imgs[0])
	for _, img := range imgs {
		if len(img.Names) > 0 && img.Names[0].Familiar() == "base:1" {
			baseSize, _ = e.st.Size(ctx, img)
		}
	}
	wantRow := []string{"base", "1", baseID.Hex[:12], "About an hour ago", units.HumanSizeWithPrecision(float64(baseSize), 3),
		units.HumanSize(float64(shared)), units.HumanSize(float64(baseSize - shared)), "0"}
	if !reflect.DeepEqual(baseRow, wantRow) {
		t.Errorf("-v base row %q, want %q", baseRow, wantRow)
	}
	var verbose map[string][]map[string]string
	if err := json.Unmarshal([]byte(e.mustRun("system", "df", "-v", "--format", "json")), &verbose); err != nil {
		t.Fatal(err)
	}
	if len(verbose["Images"]) != 3 || verbose["Containers"] == nil || verbose["Volumes"] == nil || verbose["BuildCache"] == nil {
		t.Errorf("-v json %v", verbose)
	}
}
