package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/berthsh/berth/internal/testutil"
)

func TestBuilderPruneFlags(t *testing.T) {
	out, errOut, code := runCLI(t, "builder", "prune", "-f")
	if code != 0 || out != "Total reclaimed space: 0B\n" {
		t.Errorf("prune of an empty root: exit %d, %q %q", code, out, errOut)
	}
	for _, bad := range [][]string{
		{"builder", "prune", "-f", "--filter", "type=regular"},
		{"builder", "prune", "-f", "--filter", "until=yesterday-ish"},
		{"builder", "prune", "extra"},
	} {
		if _, errOut, code := runCLI(t, bad...); code != 125 {
			t.Errorf("%q: exit %d, want 125 (%s)", bad, code, errOut)
		}
	}
	// Without -f it asks, and "no" removes nothing.
	var o, e bytes.Buffer
	code = Main(context.Background(), []string{"--root", t.TempDir(), "builder", "prune"}, strings.NewReader("n\n"), &o, &e)
	if code != 0 || !strings.Contains(o.String(), "Are you sure") || strings.Contains(o.String(), "reclaimed") {
		t.Errorf("declined prune: exit %d, %q", code, o.String())
	}
}

// TestBuilderPrune builds an image, prunes the cache without and with -a,
// and checks that only the second prune makes the next build miss.
func TestBuilderPrune(t *testing.T) {
	testutil.RequiresRoot(t)
	root := t.TempDir()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY a.txt /a.txt\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte(t.Name()), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := Main(context.Background(), append([]string{"--root", root}, args...), strings.NewReader(""), &out, &errOut); code != 0 {
			t.Fatalf("%q: exit %d\n%s", args, code, errOut.String())
		}
		return out.String(), errOut.String()
	}
	run("build", "--progress", "plain", "-t", "prune:1", dir)
	cacheCount := func() string {
		out, _ := run("system", "df", "--format", "{{.Type}}={{.TotalCount}}")
		for _, l := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(l, "Build Cache="); ok {
				return v
			}
		}
		t.Fatalf("system df has no Build Cache row:\n%s", out)
		return ""
	}
	if n := cacheCount(); n == "0" {
		t.Errorf("system df counts no build cache after a build")
	}
	// The image uses the cached layer: nothing is dangling.
	if out, _ := run("builder", "prune", "-f"); out != "Total reclaimed space: 0B\n" {
		t.Errorf("prune: %q", out)
	}
	if _, errOut := run("build", "--progress", "plain", "-t", "prune:1", dir); !strings.Contains(errOut, "CACHED") {
		t.Errorf("build after prune without -a is not cached:\n%s", errOut)
	}
	out, _ := run("builder", "prune", "-a", "-f")
	if !regexp.MustCompile(`^Deleted build cache objects:\n[0-9a-f]{64}\n\nTotal reclaimed space: `).MatchString(out) {
		t.Errorf("prune -a: %q", out)
	}
	if n := cacheCount(); n != "0" {
		t.Errorf("system df counts %s build cache entries after prune -a", n)
	}
	if _, errOut := run("build", "--progress", "plain", "-t", "prune:1", dir); strings.Contains(errOut, "CACHED") {
		t.Errorf("build after prune -a is cached:\n%s", errOut)
	}
}
