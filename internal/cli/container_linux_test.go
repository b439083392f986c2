package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	// The test binary is re-executed as container init and supervisor.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"

	"github.com/berthsh/berth/internal/testutil"
	"github.com/berthsh/berth/internal/testutil/nettest"
	"github.com/berthsh/berth/pkg/runtime"
)

func TestMain(m *testing.M) {
	runtime.InitIfRequested()
	runtime.SuperviseIfRequested()
	code := m.Run()
	if miniTemplate.dir != "" {
		_ = os.RemoveAll(miniTemplate.dir)
	}
	os.Exit(code)
}

// miniTemplate is a data directory made once per test binary with the
// minimal base image imported as "mini:1" and its layer unpacked; each
// ctrEnv starts from a hard-linked copy of its images and layers (blobs
// and unpacked layers are never written in place), which saves an import
// and an unpack per test. Tests must not modify blobs or layer files in
// place (they would change every test's copy); deleting them is fine.
var miniTemplate struct {
	once sync.Once
	dir  string
	err  error
}

func miniTemplateDir(t *testing.T) string {
	t.Helper()
	miniTemplate.once.Do(func() {
		tarball := testutil.BaseTarball(t, "minimal")
		dir, err := os.MkdirTemp("", "berth-cli-template-")
		if err != nil {
			miniTemplate.err = err
			return
		}
		miniTemplate.dir = dir
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		for _, args := range [][]string{
			{"import", tarball, "mini:1"},
			{"run", "--rm", "--network", "none", "mini:1", "true"}, // unpacks the layer
		} {
			var errOut bytes.Buffer
			if code := Main(ctx, append([]string{"--root", dir}, args...), strings.NewReader(""), io.Discard, &errOut); code != 0 {
				miniTemplate.err = fmt.Errorf("template %q: exit %d: %s", args, code, errOut.String())
				return
			}
		}
	})
	if miniTemplate.err != nil {
		t.Fatal(miniTemplate.err)
	}
	return miniTemplate.dir
}

// ctrEnv is a data directory with the minimal base image as "mini:1".
type ctrEnv struct {
	t    *testing.T
	root string
}

func newCtrEnv(t *testing.T) *ctrEnv {
	t.Helper()
	testutil.RequiresRoot(t)
	e := &ctrEnv{t: t, root: t.TempDir()}
	nettest.CleanupNetworks(t, e.root)
	tmpl := miniTemplateDir(t)
	if out, err := exec.Command("cp", "-a", "-l", filepath.Join(tmpl, "images"), filepath.Join(tmpl, "layers"), e.root+"/").CombinedOutput(); err != nil {
		t.Fatalf("copy the template data directory: %v: %s", err, out)
	}
	// Lock files must not be shared between tests' stores.
	locks, _ := filepath.Glob(filepath.Join(e.root, "images", "*.lock"))
	for _, l := range locks {
		_ = os.Remove(l)
	}
	t.Cleanup(func() {
		out, _, _ := e.berth("", "ps", "-aq", "--no-trunc")
		for _, id := range strings.Fields(out) {
			e.berth("", "rm", "-f", id)
		}
	})
	return e
}

func (e *ctrEnv) berth(stdin string, args ...string) (string, string, int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	code := Main(ctx, append([]string{"--root", e.root}, args...), strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

func (e *ctrEnv) must(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.berth("", args...)
	if code != 0 {
		e.t.Fatalf("berth %q: exit %d: %s", args, code, errOut)
	}
	return out
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestRunExitCodesCLI(t *testing.T) {
	e := newCtrEnv(t)
	out, errOut, code := e.berth("", "run", "--rm", "mini:1", "echo", "hi")
	if code != 0 || out != "hi\n" {
		t.Errorf("run --rm echo hi: %d %q %q", code, out, errOut)
	}
	if out := e.must("ps", "-aq"); out != "" {
		t.Errorf("--rm left %q", out)
	}
	out, errOut, code = e.berth("", "run", "mini:1", "sh", "-c", "echo out; echo err >&2; exit 3")
	if code != 3 || out != "out\n" || errOut != "err\n" {
		t.Errorf("run exit 3: %d %q %q", code, out, errOut)
	}
	if _, errOut, code = e.berth("", "run", "mini:1", "nosuchcmd"); code != 127 || !strings.HasPrefix(errOut, "Error:") {
		t.Errorf("run nosuchcmd: %d %q", code, errOut)
	}
	if _, errOut, code = e.berth("", "run", "mini:1", "/etc"); code != 126 {
		t.Errorf("run /etc: %d %q", code, errOut)
	}
	if _, errOut, code = e.berth("", "run", "--name", "dup", "mini:1", "true"); code != 0 {
		t.Fatalf("run --name dup: %d %q", code, errOut)
	}
	if _, errOut, code = e.berth("", "run", "--name", "dup", "mini:1", "true"); code != 125 || !strings.Contains(errOut, "dup") {
		t.Errorf("name in use: %d %q", code, errOut)
	}
	out, errOut, code = e.berth("", "run", "localhost:1/nosuch:1", "true")
	errLines := 0
	for _, l := range strings.Split(errOut, "\n") {
		if strings.HasPrefix(l, "Error:") {
			errLines++
		}
	}
	if code != 125 || errLines != 1 || out != "" {
		t.Errorf("unknown image: %d %q %q", code, out, errOut)
	}
	if _, errOut, code = e.berth("", "run", "-p", "http", "mini:1"); code != 125 || !strings.Contains(errOut, `"http"`) {
		t.Errorf("bad -p: %d %q", code, errOut)
	}
	// stdin with -i.
	if out, errOut, code = e.berth("piped\n", "run", "--rm", "-i", "mini:1", "cat"); code != 0 || out != "piped\n" {
		t.Errorf("run -i cat: %d %q %q", code, out, errOut)
	}
}

func TestContainerLifecycleCLI(t *testing.T) {
	e := newCtrEnv(t)
	id := strings.TrimSpace(e.must("run", "-d", "--name", "bg", "-l", "app=test", "-e", "GREETING=hello",
		"mini:1", "sh", "-c", "echo $GREETING; echo warn >&2; while :; do sleep 1; done"))
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("run -d printed %q", id)
	}
	ps := e.must("ps")
	if !strings.Contains(ps, id[:12]) || !strings.Contains(ps, "Up ") || !strings.Contains(ps, "bg") {
		t.Errorf("ps:\n%s", ps)
	}
	eventually(t, "logs", func() bool {
		out, errOut, _ := e.berth("", "logs", "bg")
		return out == "hello\n" && errOut == "warn\n"
	})
	if out, errOut, _ := e.berth("", "logs", "--tail", "0", "bg"); out != "" || errOut != "" {
		t.Errorf("logs --tail 0 = %q %q", out, errOut)
	}
	if out := e.must("logs", "-t", "bg"); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z hello\n$`).MatchString(out) {
		t.Errorf("logs -t = %q", out)
	}
	if _, _, code := e.berth("", "exec", "bg", "sh", "-c", "exit 5"); code != 5 {
		t.Errorf("exec exit 5: %d", code)
	}
	if out := e.must("exec", "-e", "X=1", "-w", "/tmp", "bg", "sh", "-c", "echo $X $(pwd)"); out != "1 /tmp\n" {
		t.Errorf("exec output %q", out)
	}
	if out := e.must("inspect", "-f", "{{.Name}} {{.State.Running}} {{.Config.Labels.app}} {{.Path}}", "bg"); out != "/bg true test sh\n" {
		t.Errorf("inspect = %q", out)
	}
	if top := e.must("top", "bg"); !strings.Contains(top, "UID") || !strings.Contains(top, "sleep") {
		t.Errorf("top:\n%s", top)
	}

	// cp both ways, and export.
	local := filepath.Join(t.TempDir(), "hello.txt")
	if err := os.WriteFile(local, []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.must("cp", local, "bg:/tmp/")
	if out := e.must("exec", "bg", "cat", "/tmp/hello.txt"); out != "from host\n" {
		t.Errorf("copied file = %q", out)
	}
	back := filepath.Join(t.TempDir(), "back.txt")
	e.must("cp", "bg:/tmp/hello.txt", back)
	if b, err := os.ReadFile(back); err != nil || string(b) != "from host\n" {
		t.Errorf("copied back %q, %v", b, err)
	}
	if _, errOut, code := e.berth("", "cp", local, "bg:/../../../../etc/escape"); code != 0 {
		t.Errorf("cp with .. : %d %s", code, errOut)
	}
	if _, err := os.Stat("/etc/escape"); err == nil {
		os.Remove("/etc/escape")
		t.Fatal("cp escaped the container root")
	}

	// A tar on stdin with entries that try to leave the directory.
	var evil bytes.Buffer
	tw := tar.NewWriter(&evil)
	for _, name := range []string{"../../../../tmp/berth-cp-escape", "ok.txt"} {
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: 2, Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte("x\n"))
	}
	_ = tw.Close()
	e.berth(evil.String(), "cp", "-", "bg:/tmp")
	if _, err := os.Stat("/tmp/berth-cp-escape"); err == nil {
		os.Remove("/tmp/berth-cp-escape")
		t.Fatal("cp - wrote outside the container")
	}

	e.must("stop", "-t", "1", "bg")
	if out := e.must("ps", "-q"); out != "" {
		t.Errorf("ps after stop = %q", out)
	}
	if out := e.must("ps", "-a", "--format", "{{.Names}} {{.State}} {{.Status}}"); !strings.HasPrefix(out, "bg exited Exited (137)") {
		t.Errorf("ps -a after stop = %q", out)
	}
	tarOut := e.must("export", "bg")
	names := map[string]bool{}
	tr := tar.NewReader(strings.NewReader(tarOut))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("export tar: %v", err)
		}
		names[h.Name] = true
	}
	if !names["etc/"] || !names["etc/passwd"] || !names["tmp/hello.txt"] {
		t.Errorf("export lacks etc/, etc/passwd or tmp/hello.txt (%d entries)", len(names))
	}

	e.must("start", "bg")
	if _, errOut, code := e.berth("", "rm", "bg"); code != 1 || !strings.Contains(errOut, "Error:") {
		t.Errorf("rm of a running container: %d %q", code, errOut)
	}
	e.must("rename", "bg", "bg2")
	e.must("rm", "-f", "bg2")
	if out := e.must("ps", "-aq"); out != "" {
		t.Errorf("containers left: %q", out)
	}
	entries, _ := os.ReadDir(filepath.Join(e.root, "containers"))
	for _, en := range entries {
		if en.IsDir() && len(en.Name()) == 64 {
			t.Errorf("container directory left: %s", en.Name())
		}
	}
	if _, errOut, code := e.berth("", "stop", "nosuch"); code != 1 || !strings.Contains(errOut, "No such container: nosuch") {
		t.Errorf("stop nosuch: %d %q", code, errOut)
	}
}

func TestContainerHooksCLI(t *testing.T) {
	e := newCtrEnv(t)
	e.must("create", "--name", "user", "-v", "keep:/data", "mini:1", "true")
	if _, errOut, code := e.berth("", "rmi", "mini:1"); code != 1 || !strings.Contains(errOut, "being used by container") {
		t.Errorf("rmi of a used image: %d %q", code, errOut)
	}
	df := e.must("system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}")
	if !strings.Contains(df, "Images 1 1\n") || !strings.Contains(df, "Containers 1 0\n") {
		t.Errorf("system df:\n%s", df)
	}
	e.must("start", "user")
	e.must("wait", "user")
	if _, errOut, code := e.berth("", "volume", "rm", "keep"); code != 1 || !strings.Contains(errOut, "in use") {
		t.Errorf("volume rm of a used volume: %d %q", code, errOut)
	}
	if out := e.must("container", "prune", "-f"); !strings.Contains(out, "Deleted Containers:") {
		t.Errorf("prune: %q", out)
	}
	e.must("volume", "rm", "keep")
	e.must("rmi", "mini:1")
}
