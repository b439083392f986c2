package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/store"
)

var fixedTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func rootfsTar(t *testing.T) []byte {
	t.Helper()
	return mkTar(t,
		entry{name: "./", typ: tar.TypeDir, mode: 0o755},
		entry{name: "./app/", typ: tar.TypeDir, mode: 0o755},
		entry{name: "./app/app.py", body: []byte("print('hi')\n"), mode: 0o640, uid: 1000,
			pax: map[string]string{"SCHILY.xattr.user.note": "kept"}},
		entry{name: "./bin/python3", typ: tar.TypeSymlink, link: "/usr/bin/python3.11"},
		entry{name: "./usr/bin/python3.11", body: []byte("ELF"), mode: 0o755},
		entry{name: "./usr/bin/python3", typ: tar.TypeLink, link: "./usr/bin/python3.11"},
	)
}

func importBytes(t *testing.T, s testStore, data []byte, opts ImportOptions) (store.Image, v1.Hash) {
	t.Helper()
	if opts.Created.IsZero() {
		opts.Created = fixedTime
	}
	img, err := Import(context.Background(), s.Store, bytes.NewReader(data), opts)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	id, err := s.ID(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	return img, id
}

// layerEntries reads the one layer of img back.
func layerEntries(t *testing.T, s testStore, img store.Image) []*tar.Header {
	t.Helper()
	ctx := context.Background()
	m, err := s.Manifest(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != 1 {
		t.Fatalf("%d layers, want 1", len(m.Layers))
	}
	rc, err := s.OpenBlob(ctx, m.Layers[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out []*tar.Header
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, hdr)
	}
}

func TestImportConfig(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestStore(t)
	ref := mustRefs(t, "myapp:base")[0]
	img, id := importBytes(t, s, rootfsTar(t), ImportOptions{
		Changes: []string{
			`CMD ["python3","app.py"]`,
			`ENV A=b`,
			`EXPOSE 80`,
			`WORKDIR /app`,
			`ENV HOME=/home/$A`,
			`LABEL org.example.team="data eng"`,
			`USER 1000:1000`,
			`VOLUME /data`,
			`STOPSIGNAL SIGINT`,
			`HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://localhost/`,
			`ONBUILD RUN echo hi`,
			`WORKDIR src`,
		},
		Message:  "imported for a test",
		Platform: v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"},
		Ref:      &ref,
	})
	got, err := s.Get(ctx, "myapp:base")
	if err != nil || got.Digest() != img.Digest() {
		t.Fatalf("Get myapp:base: %v", err)
	}
	cf, cfID, err := s.ConfigFile(ctx, img)
	if err != nil || cfID != id {
		t.Fatal(err)
	}
	c := cf.Config
	want := v1.Config{
		Cmd:          []string{"python3", "app.py"},
		Env:          []string{"A=b", "HOME=/home/b"},
		ExposedPorts: map[string]struct{}{"80/tcp": {}},
		WorkingDir:   "/app/src",
		Labels:       map[string]string{"org.example.team": "data eng"},
		User:         "1000:1000",
		Volumes:      map[string]struct{}{"/data": {}},
		StopSignal:   "SIGINT",
		Healthcheck:  &v1.HealthConfig{Test: []string{"CMD-SHELL", "curl -f http://localhost/"}, Interval: 5 * time.Second, Retries: 3},
		OnBuild:      []string{"RUN echo hi"},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("config\n got  %+v\n want %+v", c, want)
	}
	if cf.OS != "linux" || cf.Architecture != "arm64" || cf.Variant != "v8" || !cf.Created.Time.Equal(fixedTime) {
		t.Errorf("platform/created: %s/%s/%s %v", cf.OS, cf.Architecture, cf.Variant, cf.Created)
	}
	if len(cf.History) != 1 || cf.History[0].CreatedBy != "berth import" || cf.History[0].Comment != "imported for a test" {
		t.Errorf("history %+v", cf.History)
	}
	m, _ := s.Manifest(ctx, img)
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON || m.Layers[0].MediaType != types.OCILayer {
		t.Errorf("media types: %s %s %s", m.MediaType, m.Config.MediaType, m.Layers[0].MediaType)
	}

	// The layer: names normalised, owners, modes, xattrs and links kept.
	var gotNames []string
	for _, h := range layerEntries(t, s, img) {
		gotNames = append(gotNames, h.Name)
		switch h.Name {
		case "app/app.py":
			if h.Uid != 1000 || h.Mode != 0o640 || h.PAXRecords["SCHILY.xattr.user.note"] != "kept" {
				t.Errorf("app.py: uid %d mode %o pax %v", h.Uid, h.Mode, h.PAXRecords)
			}
		case "bin/python3":
			if h.Typeflag != tar.TypeSymlink || h.Linkname != "/usr/bin/python3.11" {
				t.Errorf("symlink changed: %+v", h)
			}
		case "usr/bin/python3":
			if h.Typeflag != tar.TypeLink || h.Linkname != "usr/bin/python3.11" {
				t.Errorf("hard link: %+v", h)
			}
		}
	}
	wantNames := []string{"app/", "app/app.py", "bin/python3", "usr/bin/python3.11", "usr/bin/python3"}
	if !reflect.DeepEqual(gotNames, wantNames) {
		t.Errorf("layer entries %v, want %v", gotNames, wantNames)
	}
	if rep, err := s.Verify(ctx); err != nil || len(rep.Problems) != 0 {
		t.Errorf("Verify: %+v %v", rep, err)
	}
}

func TestImportShellForms(t *testing.T) {
	t.Parallel()
	var c v1.Config
	if err := ApplyChanges(&c, []string{`CMD python3 -m http.server`, `ENTRYPOINT exec tini --`}); err != nil {
		t.Fatal(err)
	}
	// CMD before ENTRYPOINT in the same list is kept.
	if !reflect.DeepEqual(c.Cmd, []string{"/bin/sh", "-c", "python3 -m http.server"}) ||
		!reflect.DeepEqual(c.Entrypoint, []string{"/bin/sh", "-c", "exec tini --"}) {
		t.Errorf("cmd %q entrypoint %q", c.Cmd, c.Entrypoint)
	}
	c = v1.Config{Cmd: []string{"inherited"}}
	if err := ApplyChanges(&c, []string{`ENTRYPOINT ["/init"]`}); err != nil {
		t.Fatal(err)
	}
	if c.Cmd != nil || !reflect.DeepEqual(c.Entrypoint, []string{"/init"}) {
		t.Errorf("ENTRYPOINT did not reset an inherited CMD: %+v", c)
	}
	c = v1.Config{}
	if err := ApplyChanges(&c, []string{`EXPOSE 8000-8002/udp 53/UDP`}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.ExposedPorts, map[string]struct{}{"8000/udp": {}, "8001/udp": {}, "8002/udp": {}, "53/udp": {}}) {
		t.Errorf("ports %v", c.ExposedPorts)
	}
}

func TestImportBadChanges(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ change, msg string }{
		{"RUN apt-get update", "RUN is not supported"},
		{"COPY . /app", "COPY is not supported"},
		{"FROM python", "FROM is not supported"},
		{"ARG X=1", "ARG is not supported"},
		{"MAINTAINER me", "MAINTAINER is not supported"},
		{"NOPE x", "NOPE is not supported"},
		{"CMD a\nENV b=c", "exactly one instruction"},
		{"", "empty"},
		{"EXPOSE 99999", "invalid port"},
		{"EXPOSE 80/quic", "protocol"},
		{"USER", "USER"},
	} {
		var c v1.Config
		err := ApplyChanges(&c, []string{tc.change})
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("change %q: error %v, want invalid argument mentioning %q", tc.change, err, tc.msg)
		}
	}
	// Import refuses before it reads or stores anything.
	s := newTestStore(t)
	r := &cancelAfter{r: bytes.NewReader(rootfsTar(t)), n: 1, cancel: func() { t.Error("input was read") }}
	if _, err := Import(context.Background(), s.Store, r, ImportOptions{Changes: []string{"RUN x"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Import with RUN: %v", err)
	}
	s.checkNoImages(t)
	s.checkGCEmpty(t)
}

func TestImportCompressionsSameID(t *testing.T) {
	t.Parallel()
	plain := rootfsTar(t)
	var gz, zs bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	ze, _ := zstd.NewWriter(&zs)
	ze.Write(plain)
	ze.Close()
	s := newTestStore(t)
	_, idPlain := importBytes(t, s, plain, ImportOptions{})
	_, idGzip := importBytes(t, s, gz.Bytes(), ImportOptions{})
	_, idZstd := importBytes(t, s, zs.Bytes(), ImportOptions{})
	if idPlain != idGzip || idPlain != idZstd {
		t.Errorf("IDs differ: plain %s gzip %s zstd %s", idPlain, idGzip, idZstd)
	}
	_, idOther := importBytes(t, s, plain, ImportOptions{Created: fixedTime.Add(time.Second)})
	if idOther == idPlain {
		t.Error("a different creation time gave the same ID")
	}
}

// Not parallel: sets SOURCE_DATE_EPOCH.
func TestImportSourceDateEpoch(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	ctx := context.Background()
	var ids []v1.Hash
	for i := 0; i < 2; i++ {
		s := newTestStore(t)
		img, err := Import(ctx, s.Store, bytes.NewReader(rootfsTar(t)), ImportOptions{Changes: []string{"CMD [\"sh\"]"}})
		if err != nil {
			t.Fatal(err)
		}
		cf, id, _ := s.ConfigFile(ctx, img)
		if !cf.Created.Time.Equal(time.Unix(1700000000, 0)) {
			t.Errorf("created %v", cf.Created)
		}
		ids = append(ids, id)
	}
	if ids[0] != ids[1] {
		t.Errorf("two imports with SOURCE_DATE_EPOCH: %s and %s", ids[0], ids[1])
	}
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	s := newTestStore(t)
	if _, err := Import(ctx, s.Store, bytes.NewReader(rootfsTar(t)), ImportOptions{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad SOURCE_DATE_EPOCH: %v", err)
	}
}

func TestImportFromURL(t *testing.T) {
	t.Parallel()
	data := rootfsTar(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/rootfs.tar" {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	defer srv.Close()
	ctx := context.Background()
	s := newTestStore(t)
	rc, err := OpenSource(ctx, srv.URL+"/rootfs.tar", nil)
	if err != nil {
		t.Fatal(err)
	}
	img, err := Import(ctx, s.Store, rc, ImportOptions{Created: fixedTime})
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, want := importBytes(t, s, data, ImportOptions{})
	if id, _ := s.ID(ctx, img); id != want {
		t.Errorf("ID from URL %s, from bytes %s", id, want)
	}
	if _, err := OpenSource(ctx, srv.URL+"/missing.tar", nil); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("404: %v", err)
	}
	if _, err := OpenSource(ctx, filepath.Join(t.TempDir(), "nope.tar"), nil); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing file: %v", err)
	}
}

func TestImportHostile(t *testing.T) {
	t.Parallel()
	cwd, _ := os.Getwd()
	cwdBefore, _ := os.ReadDir(cwd)
	for _, tc := range []struct {
		name    string
		entries []entry
		raw     []byte
		kind    error
		msg     string
	}{
		{"entry ../../etc/x", []entry{reg("ok", []byte("x")), reg("../../etc/x", []byte("x"))}, nil, errdefs.ErrInvalidArgument, "../../etc/x"},
		{"entry a/../../x", []entry{reg("a/../../x", []byte("x"))}, nil, errdefs.ErrInvalidArgument, "a/../../x"},
		{"hardlink to ../../outside", []entry{{name: "h", typ: tar.TypeLink, link: "../../outside"}}, nil, errdefs.ErrInvalidArgument, "../../outside"},
		{"header claims 1 TiB", []entry{{name: "big", claim: 1 << 40}}, nil, errdefs.ErrDataCorrupt, ""},
		{"not a tar", nil, bytes.Repeat([]byte("garbage "), 300), errdefs.ErrInvalidArgument, "not a tar"},
		{"empty", nil, []byte{}, errdefs.ErrInvalidArgument, "empty"},
		{"xz", nil, []byte{0xfd, '7', 'z', 'X', 'Z', 0, 1, 2, 3}, errdefs.ErrNotImplemented, "xz"},
		{"corrupt gzip", nil, append([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}, bytes.Repeat([]byte{0xee}, 100)...), errdefs.ErrDataCorrupt, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := tc.raw
			if data == nil {
				data = mkTar(t, tc.entries...)
			}
			s := newTestStore(t)
			_, err := Import(context.Background(), s.Store, bytes.NewReader(data), ImportOptions{Ref: &mustRefs(t, "evil:1")[0]})
			if err == nil {
				t.Fatal("Import accepted it")
			}
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q, want %v mentioning %q", err, tc.kind, tc.msg)
			}
			s.checkNoImages(t)
			s.checkGCEmpty(t)
		})
	}
	t.Run("contained", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		var warnings []string
		data := mkTar(t,
			reg("/abs", []byte("abs")),
			reg("./dot/file", []byte("dot")),
			reg("a/b/../c", []byte("c")),
			entry{name: "/dev/null", typ: tar.TypeChar},
			entry{name: "/dev/sda", typ: tar.TypeBlock},
			entry{name: "/dev/disk0", typ: tar.TypeLink, link: "dev/sda"},
			entry{name: "x", typ: tar.TypeSymlink, link: "/etc/passwd"},
			entry{name: "up", typ: tar.TypeSymlink, link: "../../../outside"},
			entry{name: "/hl", typ: tar.TypeLink, link: "/abs"},
			entry{name: "fifo", typ: tar.TypeFifo},
		)
		img, _ := importBytes(t, s, data, ImportOptions{Warn: func(m string) { warnings = append(warnings, m) }})
		got := map[string]*tar.Header{}
		for _, h := range layerEntries(t, s, img) {
			got[h.Name] = h
		}
		var gotNames []string
		for n := range got {
			gotNames = append(gotNames, n)
		}
		for _, want := range []string{"abs", "dot/file", "a/c", "x", "up", "hl", "fifo"} {
			if got[want] == nil {
				t.Errorf("layer lacks %q (has %v)", want, gotNames)
			}
		}
		if len(got) != 7 {
			t.Errorf("layer has %v", gotNames)
		}
		if h := got["x"]; h != nil && h.Linkname != "/etc/passwd" {
			t.Errorf("symlink target rewritten to %q", h.Linkname)
		}
		if h := got["hl"]; h != nil && h.Linkname != "abs" {
			t.Errorf("hard link target %q, want abs", h.Linkname)
		}
		if len(warnings) != 1 || !strings.Contains(warnings[0], "3 device") {
			t.Errorf("warnings %q, want one about 3 device nodes", warnings)
		}
		for _, p := range []string{"/abs", filepath.Join(s.parent, "outside")} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("%s exists", p)
			}
		}
	})
	t.Cleanup(func() {
		cwdAfter, _ := os.ReadDir(cwd)
		if len(cwdAfter) != len(cwdBefore) {
			t.Errorf("the working directory changed: %d entries before, %d after", len(cwdBefore), len(cwdAfter))
		}
	})
}

// TestImportInterrupted cancels an import mid-stream.
func TestImportInterrupted(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	data := mkTar(t, reg("big", big))
	s := newTestStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := Import(ctx, s.Store, &cancelAfter{r: bytes.NewReader(data), n: 1 << 20, cancel: cancel}, ImportOptions{Ref: &mustRefs(t, "big:1")[0]})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Import: %v, want context.Canceled", err)
	}
	if left := s.ingestFiles(t); len(left) != 0 {
		t.Errorf("ingest/ holds %v", left)
	}
	s.checkNoImages(t)
	s.checkGCEmpty(t)
}
