package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/berthsh/berth/pkg/store"
)

// runBerth runs the CLI with --root root and returns exit code, stdout and
// stderr.
func runBerth(t *testing.T, root string, in io.Reader, args ...string) (int, string, string) {
	t.Helper()
	if in == nil {
		in = strings.NewReader("")
	}
	var out, errOut bytes.Buffer
	code := Main(context.Background(), append([]string{"--root", root}, args...), in, &out, &errOut)
	return code, out.String(), errOut.String()
}

func testRootfs(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct{ name, body string }{{"app/app.py", "print('hi')\n"}, {"etc/os-release", "ID=test\n"}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(f.body))
	}
	tw.WriteHeader(&tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666})
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var idLine = regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`)

// Not parallel: sets SOURCE_DATE_EPOCH.
func TestArchiveCommands(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs.tar")
	if err := os.WriteFile(rootfs, testRootfs(t), 0o644); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "src")

	// import FILE NAME prints the ID; "-" reads stdin; same input, same ID.
	code, id, stderr := runBerth(t, src, nil, "import", "-c", `CMD ["python3","app.py"]`, "--change", "ENV A=b", "-m", "test", rootfs, "myapp:v1")
	if code != 0 || !idLine.MatchString(id) {
		t.Fatalf("import: code %d out %q err %q", code, id, stderr)
	}
	if !strings.Contains(stderr, "Warning: left out 1 device node") {
		t.Errorf("import stderr %q, want a warning about the device node", stderr)
	}
	code, id2, stderr := runBerth(t, src, bytes.NewReader(testRootfs(t)), "image", "import", "-c", `CMD ["python3","app.py"]`, "--change", "ENV A=b", "-m", "test", "-")
	if code != 0 || id2 != id {
		t.Fatalf("image import -: code %d out %q (want %q) err %q", code, id2, id, stderr)
	}

	// save to stdout and with -o give the same bytes.
	code, saved, stderr := runBerth(t, src, nil, "save", "myapp:v1")
	if code != 0 || len(saved) < 1024 {
		t.Fatalf("save: code %d, %d bytes, err %q", code, len(saved), stderr)
	}
	file := filepath.Join(dir, "myapp.tar")
	if code, _, stderr := runBerth(t, src, nil, "image", "save", "-o", file, "myapp:v1"); code != 0 {
		t.Fatalf("save -o: %d %q", code, stderr)
	}
	if b, _ := os.ReadFile(file); !bytes.Equal(b, []byte(saved)) {
		t.Error("save -o wrote different bytes than save to stdout")
	}

	// load from stdin, from -i, and an OCI archive.
	dst := filepath.Join(dir, "dst")
	code, out, stderr := runBerth(t, dst, strings.NewReader(saved), "load")
	if code != 0 || out != "Loaded image: myapp:v1\n" {
		t.Fatalf("load: code %d out %q err %q", code, out, stderr)
	}
	code, out, _ = runBerth(t, filepath.Join(dir, "dst2"), nil, "image", "load", "-q", "-i", file)
	if code != 0 || out != "Loaded image: myapp:v1\n" {
		t.Fatalf("load -i: code %d out %q", code, out)
	}
	ociFile := filepath.Join(dir, "oci.tar")
	if code, _, stderr := runBerth(t, src, nil, "save", "--format", "oci", "-o", ociFile, "myapp"); code != 0 {
		t.Fatalf("save --format oci: %d %q", code, stderr)
	}
	code, out, _ = runBerth(t, filepath.Join(dir, "dst3"), nil, "load", "--input", ociFile)
	if code != 0 || out != "Loaded image: myapp:v1\n" {
		t.Fatalf("load oci: code %d out %q", code, out)
	}
	// An image saved by ID loads without a name.
	code, byID, _ := runBerth(t, src, nil, "save", strings.TrimSpace(id))
	if code != 0 {
		t.Fatal("save by ID failed")
	}
	code, out, _ = runBerth(t, filepath.Join(dir, "dst4"), strings.NewReader(byID), "load")
	if code != 0 || out != "Loaded image ID: "+id {
		t.Fatalf("load untagged: code %d out %q, want the ID %q", code, out, id)
	}
	st, err := store.Open(context.Background(), filepath.Join(dst, "images"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := st.Get(context.Background(), "myapp:v1")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := st.ID(context.Background(), img); got.String()+"\n" != id {
		t.Errorf("loaded image ID %s, want %s", got, id)
	}
}

func TestArchiveCommandErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	rootfs := filepath.Join(dir, "rootfs.tar")
	if err := os.WriteFile(rootfs, testRootfs(t), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runBerth(t, root, nil, "import", rootfs, "app:1"); code != 0 {
		t.Fatalf("import: %d %q", code, stderr)
	}
	for _, tc := range []struct {
		name string
		in   string
		args []string
		code int
		msg  string
	}{
		{"save without image", "", []string{"save"}, 125, "requires at least 1 argument"},
		{"save bad format", "", []string{"save", "--format", "zip", "app:1"}, 125, "invalid --format"},
		{"save missing image", "", []string{"save", "-o", filepath.Join(dir, "out.tar"), "nope:1"}, 1, "nope:1"},
		{"load garbage", strings.Repeat("garbage!", 200), []string{"load"}, 125, "not a tar archive"},
		{"load with argument", "", []string{"load", "x"}, 125, "requires exactly 0 arguments"},
		{"load missing file", "", []string{"load", "-i", filepath.Join(dir, "nope.tar")}, 1, "no such file"},
		{"import RUN", "", []string{"import", "-c", "RUN make", rootfs}, 125, "RUN is not supported"},
		{"import too many args", "", []string{"import", rootfs, "a", "b"}, 125, "requires at most 2 arguments"},
		{"import bad platform", "", []string{"import", "--platform", "linux/", rootfs}, 125, "--platform"},
		{"import bad name", "", []string{"import", rootfs, "UPPER"}, 125, "UPPER"},
		{"import missing file", "", []string{"import", filepath.Join(dir, "nope.tar")}, 1, "no such file"},
	} {
		code, _, stderr := runBerth(t, root, strings.NewReader(tc.in), tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.msg) {
			t.Errorf("%s: code %d stderr %q, want code %d mentioning %q", tc.name, code, stderr, tc.code, tc.msg)
		}
	}
	// Failures left no file next to the outputs and no image.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != "root" && e.Name() != "rootfs.tar" {
			t.Errorf("unexpected file %s", e.Name())
		}
	}
	st, err := store.Open(context.Background(), filepath.Join(root, "images"))
	if err != nil {
		t.Fatal(err)
	}
	if imgs, _ := st.List(context.Background()); len(imgs) != 1 {
		t.Errorf("%d images after the failures, want 1", len(imgs))
	}
}

// TestArchiveTerminal: save refuses a terminal stdout, load a terminal
// stdin. A pseudo-terminal's master side answers as a terminal.
func TestArchiveTerminal(t *testing.T) {
	t.Parallel()
	tty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer tty.Close()
	if !isTTY(tty) {
		t.Skip("/dev/ptmx is not a terminal here")
	}
	root := t.TempDir()
	var errOut bytes.Buffer
	code := Main(context.Background(), []string{"--root", root, "save", "app:1"}, strings.NewReader(""), tty, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "cowardly refusing to save to a terminal. Use the -o flag or redirect") {
		t.Errorf("save to a terminal: code %d stderr %q", code, errOut.String())
	}
	errOut.Reset()
	code = Main(context.Background(), []string{"--root", root, "load"}, tty, io.Discard, &errOut)
	if code != 125 || !strings.Contains(errOut.String(), "requested load from stdin, but stdin is empty") {
		t.Errorf("load from a terminal: code %d stderr %q", code, errOut.String())
	}
}
