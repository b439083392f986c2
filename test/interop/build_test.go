package interop

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berthsh/berth/internal/testutil"
	"github.com/berthsh/berth/pkg/build/buildtest"
)

// corpusDir is the builder's Dockerfile corpus.
var corpusDir = filepath.Join("..", "..", "pkg", "build", "testdata", "corpus")

// buildKitCLI returns a docker CLI that builds with BuildKit against the
// engine of env: the CLI on PATH when it has buildx, or Debian's 20.10 CLI
// (/usr/bin/docker), whose BuildKit support is built in. t is skipped when
// there is none: the classic builder lacks too much of the corpus (RUN
// --mount, COPY --chmod, <Dockerfile>.dockerignore).
func buildKitCLI(t *testing.T, env []string) string {
	t.Helper()
	if _, err := runCmd(t.Context(), env, "docker", "buildx", "version"); err == nil {
		return "docker"
	}
	if out, err := runCmd(t.Context(), env, "/usr/bin/docker", "--version"); err == nil && strings.Contains(out, " 20.10") {
		return "/usr/bin/docker"
	}
	t.Skip("no docker CLI that builds with BuildKit (needs buildx, or Debian docker.io's 20.10 CLI at /usr/bin/docker)")
	return ""
}

// Differences between Docker's images and berth's that the comparison
// ignores, each for a reason:
//
//   - Times (layer file times, history and "created"): berth writes
//     SOURCE_DATE_EPOCH or 1970 for reproducible images; Docker 20.10 writes
//     the time of the build. Node has no time field, so they never count.
//   - History details: Docker 20.10 records other created_by texts for
//     some steps; history is not compared.
//   - Mount points of RUN --mount: BuildKit creates a missing target
//     directory in the layer and leaves it there; berth removes mount points
//     it had to create, as they were not written by the command. The paths
//     are listed in ignoredMountPoints per case.
var ignoredMountPoints = map[string][]string{
	"32-run-mount-cache":  {"/root/.cache", "/root/.cache/pip", "/c"},
	"33-run-mount-bind":   {"/mnt", "/mnt/data", "/t.txt", "/ctx"},
	"34-run-mount-tmpfs":  {"/scratch"},
	"35-run-mount-secret": {"/run", "/run/secrets", "/run/secrets/token", "/etc/tok"},
}

// TestBuildCorpusAgainstDocker builds the corpus cases Docker's builder
// supports with both berth and "docker build" (BuildKit) from the same base
// image, and compares the image configs field by field and the merged file
// trees path by path (type, mode, owner, content digest, link target).
func TestBuildCorpusAgainstDocker(t *testing.T) {
	testutil.RequiresRoot(t)
	env := testutil.Docker(t)
	cli := buildKitCLI(t, env)
	cases, err := buildtest.LoadCorpus(corpusDir)
	if err != nil {
		t.Fatal(err)
	}

	// The same base image on both sides: berth imports it, Docker loads
	// berth's archive of it.
	b := newBerth(t)
	slim, err := buildtest.SlimBase(testutil.BaseTarball(t, testutil.BaseMinimal), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b.run(t, "import", slim, buildtest.BaseImage, "--change", `CMD ["/bin/sh"]`)
	baseArchive := filepath.Join(t.TempDir(), "base.tar")
	b.run(t, "save", buildtest.BaseImage, "-o", baseArchive)
	removeDockerImagesAtEnd(t, env, buildtest.BaseImage)
	mustRun(t, env, "docker", "load", "-i", baseArchive)

	buildEnv := append(env, "DOCKER_BUILDKIT=1")
	// Docker builds one at a time: parallel BuildKit builds on 2 cores only
	// queue up in the daemon.
	var dockerMu sync.Mutex
	compared := 0
	for _, c := range cases {
		if c.Expect.Error != "" || c.Expect.DockerSkip != "" {
			continue
		}
		compared++
		t.Run(c.Name, func(t *testing.T) {
			ctxDir := t.TempDir()
			if err := c.WriteContext(ctxDir); err != nil {
				t.Fatal(err)
			}
			var args []string
			args = append(args, "-f", c.DockerfilePath(ctxDir))
			for k, v := range c.Expect.BuildArgs {
				args = append(args, "--build-arg", k+"="+v)
			}
			if c.Expect.Target != "" {
				args = append(args, "--target", c.Expect.Target)
			}
			for id, v := range c.Expect.Secrets {
				p := filepath.Join(t.TempDir(), id)
				if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--secret", "id="+id+",src="+p)
			}
			args = append(args, "--network", "none")
			name := "corpus-diff/" + c.Name + ":" + uniq()

			b.run(t, append(append([]string{"build", "-q", "-t", name}, args...), ctxDir)...)
			berthTar := filepath.Join(t.TempDir(), "berth.tar")
			b.run(t, "save", name, "-o", berthTar)

			removeDockerImagesAtEnd(t, env, name)
			dockerTar := filepath.Join(t.TempDir(), "docker.tar")
			dockerMu.Lock()
			_, err := runCmd(t.Context(), buildEnv, cli, append(append([]string{"build", "-q", "-t", name}, args...), ctxDir)...)
			if err == nil {
				_, err = runCmd(t.Context(), env, "docker", "save", "-o", dockerTar, name)
			}
			dockerMu.Unlock()
			if err != nil {
				t.Fatal(err)
			}

			bcf, blayers, err := buildtest.ReadDockerArchive(berthTar)
			if err != nil {
				t.Fatal(err)
			}
			dcf, dlayers, err := buildtest.ReadDockerArchive(dockerTar)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range buildtest.DiffConfig(bcf.Config, dcf.Config, "berth", "docker") {
				t.Error(d)
			}
			if bcf.OS != dcf.OS || bcf.Architecture != dcf.Architecture {
				t.Errorf("platform: berth %s/%s, docker %s/%s", bcf.OS, bcf.Architecture, dcf.OS, dcf.Architecture)
			}
			btree, err := buildtest.TreeFromLayers(blayers, 0)
			if err != nil {
				t.Fatal(err)
			}
			dtree, err := buildtest.TreeFromLayers(dlayers, 0)
			if err != nil {
				t.Fatal(err)
			}
			ignored := map[string]bool{}
			for _, p := range ignoredMountPoints[c.Name] {
				ignored[p] = true
			}
			diffs := buildtest.DiffTree(btree, dtree, "berth", "docker", func(p string) bool {
				if !ignored[p] {
					return false
				}
				// Only an empty directory, or a file only Docker has.
				n := dtree.Nodes[p]
				return btree.Nodes[p] == nil && n != nil && (n.Type == "dir" || n.Size == 0)
			})
			for _, d := range diffs {
				t.Error(d)
			}
			// The expectations hold for Docker's image too.
			for _, d := range c.Expect.Check(dcf, dtree, len(dlayers)-1) {
				if !strings.Contains(d, "layers over the base") && !strings.Contains(d, "whiteout") {
					t.Errorf("docker: %s", d)
				}
			}
		})
	}
	if compared < 30 {
		t.Errorf("only %d corpus cases compared with Docker, want at least 30", compared)
	}
}
