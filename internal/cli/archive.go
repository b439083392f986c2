package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/reference"
	"github.com/berthsh/berth/pkg/store/archive"
)

// addArchiveCommands adds save, load and import, top-level and in the
// "image" group.
func addArchiveCommands(root, image *cobra.Command, g *globals) {
	root.AddCommand(newSaveCmd(g), newLoadCmd(g), newImportCmd(g))
	image.AddCommand(newSaveCmd(g), newLoadCmd(g), newImportCmd(g))
}

// isTTY reports whether v (a stream of globals) is a terminal.
func isTTY(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newSaveCmd(g *globals) *cobra.Command {
	var output, format string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Long: `Save one or more images to a tar archive that "docker load" and "berth load"
accept. A repository without a tag saves every tag of it; an image given by ID
is saved without a name. With --format oci the archive is an OCI image layout
(an "oci-archive" to skopeo and podman). The same images always give the same
bytes.`,
		Example: `  berth save -o python.tar python:3.11
  berth save myapp | gzip > myapp.tar.gz
  berth save --format oci -o app.oci.tar app:v1`,
		Args: argsBetween(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != archive.FormatDocker && format != archive.FormatOCI {
				return usageError{err: fmt.Errorf("invalid --format %q: want %q or %q", format, archive.FormatDocker, archive.FormatOCI), cmd: cmd.CommandPath()}
			}
			if output == "" && isTTY(g.Out) {
				return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
			}
			ctx := cmd.Context()
			s, err := g.openStore(ctx)
			if err != nil {
				return err
			}
			opts := archive.SaveOptions{Format: format}
			if output != "" {
				err = archive.SaveToFile(ctx, s, args, output, opts)
			} else {
				bw := bufio.NewWriterSize(g.Out, 1<<20)
				if err = archive.Save(ctx, s, args, bw, opts); err == nil {
					err = bw.Flush()
				}
			}
			if err != nil {
				return err
			}
			for _, name := range args {
				g.emitImageEvent("save", imageIDOf(ctx, s, name), name)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&output, "output", "o", "", "write to a file, instead of STDOUT")
	f.StringVar(&format, "format", archive.FormatDocker, `archive format: "docker" (docker save) or "oci" (OCI image layout)`)
	return cmd
}

func newLoadCmd(g *globals) *cobra.Command {
	var input string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load images from a tar archive or STDIN",
		Long: `Load images from a tar archive: the output of "docker save" (any version),
"berth save", or an OCI image layout archive, optionally compressed with gzip,
zstd or bzip2. Every layer is checked against the image config; nothing is
named unless all of it loads.`,
		Example: `  berth load -i python.tar
  gunzip -c myapp.tar.gz | berth load`,
		Args: argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var r io.Reader = g.In
			if input != "" {
				f, err := os.Open(input)
				if err != nil {
					if errors.Is(err, os.ErrNotExist) {
						return fmt.Errorf("open %s: no such file: %w", input, errdefs.ErrNotFound)
					}
					return err
				}
				defer f.Close()
				r = f
			} else if isTTY(g.In) {
				return usageError{err: errors.New("requested load from stdin, but stdin is empty"), cmd: cmd.CommandPath()}
			}
			s, err := g.openStore(ctx)
			if err != nil {
				return err
			}
			pp := newProgressPrinter(g.Out, "Loading", quiet || !isTTY(g.Out))
			imgs, err := archive.Load(ctx, s, r, archive.LoadOptions{Progress: pp.Update})
			pp.Close()
			if err != nil {
				return err
			}
			for _, img := range imgs {
				g.emitImage(ctx, s, img, "load", "")
				if len(img.Names) == 0 {
					id, err := s.ID(ctx, img)
					if err != nil {
						return err
					}
					fmt.Fprintf(g.Out, "Loaded image ID: %s\n", id)
					continue
				}
				for _, n := range img.Names {
					fmt.Fprintf(g.Out, "Loaded image: %s\n", n.Familiar())
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&input, "input", "i", "", "read from a tar archive file, instead of STDIN")
	f.BoolVarP(&quiet, "quiet", "q", false, "suppress the load progress output")
	return cmd
}

func newImportCmd(g *globals) *cobra.Command {
	var opts archive.ImportOptions
	var platform string
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Long: `Create a one-layer image from a root filesystem tarball (plain, gzip, zstd or
bzip2), read from a file, an http(s) URL or STDIN ("-"), and print its ID.
Entries leading outside the root are refused; device nodes are left out.
--change applies Dockerfile instructions to the config: CMD, ENTRYPOINT, ENV,
EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR.
Set SOURCE_DATE_EPOCH for a reproducible image ID.`,
		Example: `  berth import rootfs.tar.gz myapp:base
  berth import -c 'CMD ["python3", "app.py"]' -c 'WORKDIR /app' https://example.com/rootfs.tar myapp
  tar -C rootfs -c . | berth import - myapp`,
		Args: argsBetween(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if platform != "" {
				p, err := v1.ParsePlatform(platform)
				if err == nil && (p.OS == "" || p.Architecture == "") {
					err = errors.New("want os/arch[/variant]")
				}
				if err != nil {
					return usageError{err: fmt.Errorf("invalid --platform %q: %v", platform, err), cmd: cmd.CommandPath()}
				}
				opts.Platform = *p
			}
			if len(args) == 2 {
				ref, err := reference.Parse(args[1])
				if err != nil {
					return err
				}
				opts.Ref = &ref
			}
			opts.Warn = func(msg string) { fmt.Fprintln(g.Err, "Warning:", msg) }
			ctx := cmd.Context()
			s, err := g.openStore(ctx)
			if err != nil {
				return err
			}
			rc, err := archive.OpenSource(ctx, args[0], g.In)
			if err != nil {
				return err
			}
			defer rc.Close()
			img, err := archive.Import(ctx, s, rc, opts)
			if err != nil {
				return err
			}
			id, err := s.ID(ctx, img)
			if err != nil {
				return err
			}
			name := ""
			if opts.Ref != nil {
				name = opts.Ref.Familiar()
			}
			g.emitImageEvent("import", id.String(), name)
			fmt.Fprintln(g.Out, id.String())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&opts.Changes, "change", "c", nil, "apply a Dockerfile instruction to the image config (repeatable)")
	f.StringVarP(&opts.Message, "message", "m", "", "commit message for the image's history")
	f.StringVar(&platform, "platform", "", "set the image's platform (os/arch[/variant]); default: this machine's")
	return cmd
}
