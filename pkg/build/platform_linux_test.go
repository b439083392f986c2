package build

import (
	"errors"
	"strings"
	"testing"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/reference"
	"github.com/berthsh/berth/pkg/registry"
)

func TestFromPlatform(t *testing.T) {
	e := newEnv(t)
	host := registry.DefaultPlatform()
	other := "linux/arm64"
	if host.Architecture == "arm64" {
		other = "linux/amd64"
	}
	// A name whose registry refuses at once: pulling another platform of
	// it fails fast and offline.
	unreachable := "127.0.0.1:1/plat/base:1"
	r, err := reference.Parse(unreachable)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Tag(t.Context(), baseName, r); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dockerfile string
		wantArch         string // the image's architecture on success
		wantErr          string // or the error
		kind             error
	}{
		{name: "host platform", dockerfile: "FROM --platform=" + host.String() + " " + unreachable + "\nRUN echo ok > /ok\n", wantArch: host.Architecture},
		{name: "BUILDPLATFORM", dockerfile: "FROM --platform=$BUILDPLATFORM " + unreachable + " AS b\nRUN echo ok > /ok\nFROM b\n", wantArch: host.Architecture},
		{name: "scratch for another platform", dockerfile: "FROM --platform=" + other + " scratch\nCOPY Dockerfile /\n", wantArch: strings.TrimPrefix(other, "linux/")},
		{name: "stage inherits platform", dockerfile: "FROM --platform=" + other + " scratch AS s\nFROM s\nLABEL x=y\n", wantArch: strings.TrimPrefix(other, "linux/")},
		{name: "image of another platform", dockerfile: "FROM --platform=" + other + " " + unreachable + "\n", wantErr: "in the store is " + host.OS + "/" + host.Architecture + ", not " + other},
		{name: "RUN for another platform", dockerfile: "FROM --platform=" + other + " scratch\nRUN true\n", wantErr: "needs emulation", kind: errdefs.ErrNotImplemented},
		{name: "bad platform", dockerfile: "FROM --platform=linux/arm64/v8/x scratch\n", wantErr: "invalid platform"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeContext(t, map[string]string{"Dockerfile": tc.dockerfile})
			res, _, err := e.build(t, dir, Options{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				if tc.kind != nil && !errors.Is(err, tc.kind) {
					t.Errorf("error %v is not %v", err, tc.kind)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cf, _, err := e.s.ConfigFile(t.Context(), res.Image)
			if err != nil {
				t.Fatal(err)
			}
			if cf.OS != "linux" || cf.Architecture != tc.wantArch {
				t.Errorf("image platform %s/%s, want linux/%s", cf.OS, cf.Architecture, tc.wantArch)
			}
		})
	}
}
