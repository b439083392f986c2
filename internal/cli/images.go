package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	units "github.com/docker/go-units"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/reference"
	"github.com/berthsh/berth/pkg/store"
)

// addLocalImageCommands adds the commands that work on the local image
// store: images, tag, rmi, inspect, history and their "image" group forms,
// plus image prune and image verify.
func addLocalImageCommands(root, image *cobra.Command, g *globals) {
	root.AddCommand(
		newImagesCmd(g, "images [OPTIONS] [REPOSITORY[:TAG]]"),
		newTagCmd(g, "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]"),
		newRmiCmd(g, "rmi [OPTIONS] IMAGE [IMAGE...]"),
		newInspectCmd(g),
		newHistoryCmd(g),
	)
	ls := newImagesCmd(g, "ls [OPTIONS] [REPOSITORY[:TAG]]")
	ls.Aliases = []string{"list"}
	rm := newRmiCmd(g, "rm [OPTIONS] IMAGE [IMAGE...]")
	rm.Aliases = []string{"remove"}
	image.AddCommand(
		ls,
		rm,
		newTagCmd(g, "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]"),
		newImageInspectCmd(g),
		newHistoryCmd(g),
		newImagePruneCmd(g),
		newImageVerifyCmd(g),
	)
}

// argsBetween accepts min to max positional arguments (max < 0: no upper
// limit) and otherwise fails with a usage error worded as docker does.
func argsBetween(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		n := len(args)
		if n >= min && (max < 0 || n <= max) {
			return nil
		}
		plural := func(k int) string {
			if k == 1 {
				return ""
			}
			return "s"
		}
		var want string
		switch {
		case min == max:
			want = fmt.Sprintf("exactly %d argument%s", min, plural(min))
		case max < 0 || n < min:
			want = fmt.Sprintf("at least %d argument%s", min, plural(min))
		default:
			want = fmt.Sprintf("at most %d argument%s", max, plural(max))
		}
		return usageError{err: fmt.Errorf("%q requires %s", cmd.CommandPath(), want), cmd: cmd.CommandPath()}
	}
}

// noSuchImage turns a store "not found" error for name into docker's
// message; other errors pass through.
func noSuchImage(name string, err error) error {
	if errors.Is(err, errdefs.ErrNotFound) {
		return notFoundError("No such image: " + name)
	}
	return err
}

// notFoundError is a docker-worded "No such …" message that is an
// errdefs.ErrNotFound for errors.Is.
type notFoundError string

func (e notFoundError) Error() string      { return string(e) }
func (notFoundError) Is(target error) bool { return target == errdefs.ErrNotFound }

// imageID formats an image ID as docker does: 12 hex digits, or the full
// "sha256:…" with --no-trunc.
func imageID(h v1.Hash, trunc bool) string {
	if trunc && len(h.Hex) >= 12 {
		return h.Hex[:12]
	}
	return h.String()
}

// truncID shortens a "sha256:…" ID string; other strings ("<missing>")
// are kept.
func truncID(id string, trunc bool) string {
	if h, err := v1.NewHash(id); err == nil {
		return imageID(h, trunc)
	}
	return id
}

// createdSince is docker's CREATED column: "3 weeks ago", or "" when the
// image has no creation time.
func createdSince(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return units.HumanDuration(time.Now().UTC().Sub(t)) + " ago"
}

// createdAt is docker's CreatedAt for images: local time to the second.
func createdAt(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return time.Unix(t.Unix(), 0).String()
}

// imageRow is one line of "images". The fields are docker's template
// fields and JSON keys.
type imageRow struct {
	Containers   string
	CreatedAt    string
	CreatedSince string
	Digest       string
	ID           string
	Repository   string
	SharedSize   string
	Size         string
	Tag          string
	UniqueSize   string
}

const (
	imagesTable           = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince}}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}"
	imagesTableWithDigest = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince}}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}"
)

var imageHeaders = map[string]string{
	"ID":           "IMAGE ID",
	"Repository":   "REPOSITORY",
	"Tag":          "TAG",
	"Digest":       "DIGEST",
	"CreatedSince": "CREATED",
	"CreatedAt":    "CREATED AT",
	"Size":         "SIZE",
	"Containers":   "CONTAINERS",
	"SharedSize":   "SHARED SIZE",
	"UniqueSize":   "UNIQUE SIZE",
}

// imageRows turns an image into docker's rows: one per repository and tag
// (per digest too when digests are shown), rows for repositories known
// only by digest, or one <none> row for a dangling image.
func imageRows(sum store.ImageSummary, trunc, digests, digestOnlyRows bool) []imageRow {
	base := imageRow{
		Containers:   "N/A",
		CreatedAt:    createdAt(sum.Created),
		CreatedSince: createdSince(sum.Created),
		ID:           imageID(sum.ID, trunc),
		SharedSize:   "N/A",
		Size:         units.HumanSizeWithPrecision(float64(sum.Size), 3),
		UniqueSize:   "N/A",
	}
	row := func(repo, tag, digest string) imageRow {
		r := base
		r.Repository, r.Tag, r.Digest = repo, tag, digest
		return r
	}
	if len(sum.Names) == 0 && len(sum.RepoDigests) == 0 {
		return []imageRow{row("<none>", "<none>", "<none>")}
	}
	var repos []string
	tags := map[string][]string{}
	for _, n := range sum.Names {
		repo := n.FamiliarRepository()
		if _, ok := tags[repo]; !ok {
			repos = append(repos, repo)
		}
		tags[repo] = append(tags[repo], n.Tag())
	}
	repoDigests := map[string][]string{}
	var digestRepos []string
	for _, rd := range sum.RepoDigests {
		r, err := reference.ParseRepository(rd)
		if err != nil || r.Digest() == "" {
			continue
		}
		repo := r.FamiliarRepository()
		if _, ok := repoDigests[repo]; !ok {
			digestRepos = append(digestRepos, repo)
		}
		repoDigests[repo] = append(repoDigests[repo], r.Digest())
	}
	sort.Strings(repos)
	sort.Strings(digestRepos)
	var out []imageRow
	for _, repo := range repos {
		ds := repoDigests[repo]
		delete(repoDigests, repo)
		if !digests {
			ds = nil
		}
		for _, tag := range tags[repo] {
			if len(ds) == 0 {
				out = append(out, row(repo, tag, "<none>"))
				continue
			}
			for _, d := range ds {
				out = append(out, row(repo, tag, d))
			}
		}
	}
	for _, repo := range digestRepos {
		ds, ok := repoDigests[repo]
		if !ok {
			continue
		}
		if digestOnlyRows {
			for _, d := range ds {
				out = append(out, row(repo, "<none>", d))
			}
		} else {
			out = append(out, row(repo, "<none>", ""))
		}
	}
	return out
}

type imagesOptions struct {
	quiet, all, noTrunc, digests bool
	format                       string
	filters                      []string
}

func newImagesCmd(g *globals, use string) *cobra.Command {
	var opts imagesOptions
	cmd := &cobra.Command{
		Use:   use,
		Short: "List images",
		Long: `List the images in the local store, newest first.

SIZE is the stored size: the compressed layers, config and manifest as kept
in the store (docker shows the unpacked size, so berth's numbers are smaller).`,
		Example: `  berth images
  berth images python
  berth images --filter dangling=true -q
  berth images --filter reference='py*' --format '{{.Repository}}:{{.Tag}}'`,
		Args: argsBetween(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			match := ""
			if len(args) == 1 {
				match = args[0]
			}
			n, err := runImages(cmd, g, opts, match)
			if err != nil {
				return err
			}
			if n == 0 && match != "" && cmd.CalledAs() == "images" {
				switch match {
				case "history", "inspect", "list", "ls", "prune", "pull", "push", "rm", "save", "load", "tag", "import", "verify":
					fmt.Fprintf(g.Err, "No images found matching %q: did you mean \"berth image %[1]s\"?\n", match)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&opts.quiet, "quiet", "q", false, "only show image IDs (each once)")
	f.BoolVarP(&opts.all, "all", "a", false, "show all images (berth has no intermediate images: the default already shows every image)")
	f.BoolVar(&opts.noTrunc, "no-trunc", false, "don't truncate output")
	f.BoolVar(&opts.digests, "digests", false, "show digests")
	f.StringVar(&opts.format, "format", "", "output format: table, json, 'table TEMPLATE' or a Go template")
	f.StringArrayVarP(&opts.filters, "filter", "f", nil, "filter output: dangling=true|false, reference=PATTERN, before=IMAGE, since=IMAGE, label=KEY[=VALUE]")
	return cmd
}

func runImages(cmd *cobra.Command, g *globals, opts imagesOptions, match string) (int, error) {
	ctx := cmd.Context()
	filterArgs := opts.filters
	if match != "" {
		filterArgs = append(append([]string(nil), filterArgs...), "reference="+match)
	}
	filter, err := store.ParseImageFilter(filterArgs)
	if err != nil {
		return 0, usageError{err: err, cmd: cmd.CommandPath()}
	}
	st, err := g.openStore(ctx)
	if err != nil {
		return 0, err
	}
	sums, err := st.Summaries(ctx, filter)
	if err != nil {
		return 0, err
	}

	format := opts.format
	quiet := false
	switch {
	case format == "" || format == "table":
		switch {
		case opts.quiet:
			format, quiet = "{{.ID}}", true
		case opts.digests:
			format = imagesTableWithDigest
		default:
			format = imagesTable
		}
	case opts.digests && strings.HasPrefix(format, "table") && !strings.Contains(format, "{{.Digest}}"):
		format += `\t{{.Digest}}`
	}
	showDigests := opts.digests || strings.Contains(format, "{{.Digest}}")
	var rows []any
	seen := map[string]bool{}
	for _, sum := range sums {
		for _, r := range imageRows(sum, !opts.noTrunc, showDigests, opts.digests) {
			if quiet {
				if seen[r.ID] {
					continue
				}
				seen[r.ID] = true
			}
			rows = append(rows, r)
		}
	}
	return len(rows), writeList(g.Out, format, listFormat{Table: imagesTable, Headers: imageHeaders}, rows)
}

func newTagCmd(g *globals, use string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Long: `Give an image another name. SOURCE_IMAGE is a name or an image ID (or a
unique prefix of it). A name that pointed at another image moves to this one.`,
		Example: `  berth tag python:3.11 registry.example.com/team/python:3.11
  berth tag 0e5b3f2a1c9d myapp:v2`,
		Args: argsBetween(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			target, err := reference.Parse(args[1])
			if err != nil {
				return err
			}
			st, err := g.openStore(ctx)
			if err != nil {
				return err
			}
			img, err := st.Tag(ctx, args[0], target)
			if err != nil {
				return noSuchImage(args[0], err)
			}
			g.emitImage(ctx, st, img, "tag", target.Familiar())
			return nil
		},
	}
}

func newRmiCmd(g *globals, use string) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   use,
		Short: "Remove one or more images",
		Long: `Remove images. A name is untagged; an image left without names is deleted
together with the blobs no other image uses. An image ID removes every name
of the image, which needs --force when the names are in several repositories.`,
		Example: `  berth rmi python:3.11
  berth rmi -f 0e5b3f2a1c9d`,
		Args: argsBetween(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := g.openStore(ctx)
			if err != nil {
				return err
			}
			inUse, err := imageInUse(ctx, g, st)
			if err != nil {
				return err
			}
			var msgs []string
			fatal := false
			for _, name := range args {
				id := imageIDOf(ctx, st, name) // for the events
				res, err := st.Remove(ctx, name, store.RemoveOptions{Force: force, InUse: inUse})
				for _, u := range res.Untagged {
					fmt.Fprintln(g.Out, "Untagged:", u)
					g.emitImageEvent("untag", id, u)
				}
				for _, d := range res.Deleted {
					fmt.Fprintln(g.Out, "Deleted:", d)
					g.emitImageEvent("delete", d.String(), d.String())
				}
				if err != nil {
					if !errors.Is(err, errdefs.ErrNotFound) {
						fatal = true
					}
					msgs = append(msgs, noSuchImage(name, err).Error())
				}
			}
			for _, m := range msgs {
				fmt.Fprintln(g.Err, "Error:", m)
			}
			if len(msgs) > 0 && (!force || fatal) {
				return exitCodeError{code: exitFailure}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove an image given by ID even if its names span several repositories; ignore unknown images")
	return cmd
}

const (
	pruneDanglingWarning = `WARNING! This will remove all dangling images.
Are you sure you want to continue?`
	pruneAllWarning = `WARNING! This will remove all images without at least one container associated to them.
Are you sure you want to continue?`
)

// promptConfirm prints msg and " [y/N] " to out and reads one line from in;
// only "y" or "Y" confirms. Like docker it reads a line whether or not in
// is a terminal, so "yes | berth image prune" works.
func promptConfirm(in io.Reader, out io.Writer, msg string) bool {
	fmt.Fprint(out, msg+" [y/N] ")
	if in == nil {
		return false
	}
	line, _ := bufio.NewReader(in).ReadString('\n')
	return strings.EqualFold(strings.TrimSpace(line), "y")
}

func newImagePruneCmd(g *globals) *cobra.Command {
	var all, force bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Long: `Remove dangling images (images without a name), or with --all every image
no container uses, and then the blobs nothing references any more.`,
		Args: argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if !force {
				warning := pruneDanglingWarning
				if all {
					warning = pruneAllWarning
				}
				if !promptConfirm(g.In, g.Out, warning) {
					// Docker exits 1 without a message when the user declines.
					return exitCodeError{code: exitFailure}
				}
			}
			st, err := g.openStore(ctx)
			if err != nil {
				return err
			}
			// Names to report as untagged, by image ID.
			before, err := st.Summaries(ctx, store.ImageFilter{})
			if err != nil {
				return err
			}
			names := map[v1.Hash][]string{}
			for _, s := range before {
				for _, n := range s.Names {
					names[s.ID] = append(names[s.ID], n.Familiar())
				}
				for _, rd := range s.RepoDigests {
					names[s.ID] = append(names[s.ID], store.FamiliarRepoDigest(rd))
				}
			}
			inUse, err := imageInUse(ctx, g, st)
			if err != nil {
				return err
			}
			res, err := st.Prune(ctx, store.PruneOptions{All: all, InUse: inUse})
			if len(res.Deleted) > 0 {
				fmt.Fprintln(g.Out, "Deleted Images:")
				for _, id := range res.Deleted {
					for _, n := range names[id] {
						fmt.Fprintln(g.Out, "untagged:", n)
					}
					fmt.Fprintln(g.Out, "deleted:", id)
				}
				fmt.Fprintln(g.Out)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(g.Out, "Total reclaimed space:", units.HumanSize(float64(res.Bytes)))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all unused images, not just dangling ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	return cmd
}

// verifyProblem is a store.Problem as --format json prints it.
type verifyProblem struct {
	Image string
	Blob  string
	Error string
}

// verifyReport is the outcome of image verify as --format prints it.
type verifyReport struct {
	Images   int
	Blobs    int
	Problems []verifyProblem
}

func newImageVerifyCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "verify [OPTIONS]",
		Short: "Check every stored image against its digests",
		Long: `Read every image's manifest, config and layers and check them against their
digests and sizes. Prints one line per problem and exits 1 when there are
any; remove a damaged image with 'berth rmi' and pull or load it again.`,
		Args: argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := g.openStore(ctx)
			if err != nil {
				return err
			}
			rep, err := st.Verify(ctx)
			if err != nil {
				return err
			}
			out := verifyReport{Images: rep.Images, Blobs: rep.Blobs, Problems: []verifyProblem{}}
			for _, p := range rep.Problems {
				out.Problems = append(out.Problems, verifyProblem{Image: p.Image, Blob: p.Blob.String(), Error: p.Err.Error()})
			}
			switch format {
			case "":
				for _, p := range rep.Problems {
					fmt.Fprintln(g.Out, p.String())
				}
				if len(rep.Problems) == 0 {
					fmt.Fprintf(g.Out, "OK: %d images, %d blobs verified\n", rep.Images, rep.Blobs)
				}
			case "json":
				enc := json.NewEncoder(g.Out)
				enc.SetEscapeHTML(false)
				if err := enc.Encode(out); err != nil {
					return err
				}
			default:
				t, err := parseTemplate(strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format))
				if err != nil {
					return err
				}
				if err := t.Execute(g.Out, out); err != nil {
					return usageErrorf("invalid --format template: %v", err)
				}
				fmt.Fprintln(g.Out)
			}
			if n := len(rep.Problems); n > 0 {
				return exitCodeError{code: exitFailure, msg: fmt.Sprintf(
					"%d problem(s) in the image store; remove the damaged images with 'berth rmi' and pull or load them again", n)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "output format: json or a Go template")
	return cmd
}
