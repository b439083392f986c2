package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set with -ldflags "-X github.com/berthsh/berth/internal/cli.version=…".
var (
	version = "dev"
	commit  = ""
)

func buildCommit() string {
	if commit != "" {
		return commit
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

func newVersionCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show the berth version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := struct {
				Version   string
				GitCommit string
				GoVersion string
				Os        string
				Arch      string
			}{version, buildCommit(), runtime.Version(), runtime.GOOS, runtime.GOARCH}
			if format != "" {
				return writeFormatted(g.Out, format, []any{v})
			}
			fmt.Fprintf(g.Out, "berth version %s\n commit: %s\n go:     %s\n os/arch: %s/%s\n",
				v.Version, v.GitCommit, v.GoVersion, v.Os, v.Arch)
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "output format: json or a Go template")
	return cmd
}
