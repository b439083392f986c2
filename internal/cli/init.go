package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berthsh/berth/pkg/pyproject"
)

type initFlags struct {
	app, python, server, kind, base string
	port                            int
	force, dryRun                   bool
}

func newInitCmd(g *globals) *cobra.Command {
	var f initFlags
	cmd := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Generate a Dockerfile, .dockerignore and compose.yaml for a Python project",
		Long: `Detect the Python project in DIR (default: the current directory) from its
own files - dependencies, Python version, framework, application object,
server and port - print what was found and why, and write a Dockerfile,
.dockerignore and compose.yaml. Existing files are kept unless --force.
Settle ambiguities with the flags or with [tool.berth] in pyproject.toml.
See docs/python.md.`,
		Args: argsBetween(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			if f.port < 0 || f.port > 65535 {
				return usageErrorf("--port %d: want 1 to 65535", f.port)
			}
			res, err := pyproject.Init(cmd.Context(), dir, pyproject.InitOptions{
				Detect: pyproject.DetectOptions{
					App: f.app, Port: f.port, PythonVersion: f.python, Server: f.server, Kind: f.kind,
				},
				Generate: pyproject.GenerateOptions{Base: f.base},
				Force:    f.force,
				DryRun:   f.dryRun,
			})
			if err != nil {
				return err
			}
			if f.dryRun {
				for _, nf := range res.Files.Named() {
					fmt.Fprintf(g.Out, "# ---- %s ----\n", nf.Name)
					g.Out.Write(nf.Data)
					if len(nf.Data) > 0 && nf.Data[len(nf.Data)-1] != '\n' {
						fmt.Fprintln(g.Out)
					}
				}
				printExplain(g.Err, res.Project)
				return nil
			}
			printExplain(g.Out, res.Project)
			var names []string
			for _, nf := range res.Files.Named() {
				names = append(names, nf.Name)
			}
			fmt.Fprintf(g.Out, "wrote %s in %s\n", strings.Join(names, ", "), dir)
			if res.Project.Release != nil {
				fmt.Fprintf(g.Out, "release step (run before starting a new version): %s\n", strings.Join(res.Project.Release, " "))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.app, "app", "", `application as module:attr (e.g. "api.main:app"), a module or a script file`)
	fl.IntVar(&f.port, "port", 0, "port the web app listens on (default: detected, else 8000)")
	fl.StringVar(&f.python, "python", "", `Python version, major.minor (e.g. "3.12")`)
	fl.StringVar(&f.server, "server", "", "server: gunicorn, uvicorn, flask, django or python")
	fl.StringVar(&f.kind, "kind", "", "process kind: web, worker or script")
	fl.StringVar(&f.base, "base", "", "base image (default python:<version>-slim)")
	fl.BoolVar(&f.force, "force", false, "overwrite an existing Dockerfile, .dockerignore or compose.yaml")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the generated files instead of writing them")
	return cmd
}

// printExplain prints what was detected and why, and any warnings.
func printExplain(w io.Writer, p *pyproject.Project) {
	for _, l := range p.Explain() {
		fmt.Fprintln(w, l)
	}
}
