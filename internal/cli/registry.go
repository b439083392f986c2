package cli

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/berthsh/berth/pkg/registry"
)

// newRegistryCmd returns the "registry" group: commands that run a registry.
func newRegistryCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Run a local OCI image registry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newRegistryServeCmd(g))
	return cmd
}

func newRegistryServeCmd(g *globals) *cobra.Command {
	var opts registry.ServerOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve an OCI distribution registry from a local directory",
		Long: `Serve an OCI distribution registry (the Docker Registry HTTP API v2) that
stores images under --root, until interrupted.

With --htpasswd every request needs basic-auth credentials listed in that file
(bcrypt entries, as written by 'htpasswd -B'). With --tls-cert and --tls-key the
registry speaks HTTPS only. Without TLS, clients must treat it as an insecure
registry unless it listens on a loopback address.`,
		Example: `  berth registry serve
  berth registry serve --addr 0.0.0.0:5000 --htpasswd ./htpasswd --tls-cert cert.pem --tls-key key.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (opts.TLSCert == "") != (opts.TLSKey == "") {
				return usageError{err: fmt.Errorf("--tls-cert and --tls-key must be given together"), cmd: cmd.CommandPath()}
			}
			if opts.Addr == "" {
				return usageError{err: fmt.Errorf("--addr must not be empty"), cmd: cmd.CommandPath()}
			}
			if opts.Root == "" {
				opts.Root = filepath.Join(g.Root, "registry")
			}
			ctx := cmd.Context()
			srv, err := registry.NewServer(ctx, opts)
			if err != nil {
				return err
			}
			ln, err := srv.Listen(ctx)
			if err != nil {
				srv.Close()
				return err
			}
			fmt.Fprintf(g.Err, "registry listening on %s://%s (storage %s)\n", srv.Scheme(), ln.Addr(), srv.Root())
			return srv.Serve(ctx, ln)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Addr, "addr", registry.DefaultServerAddr, "address to listen on (HOST:PORT)")
	f.StringVar(&opts.Root, "root", "", "directory to store the registry's content (default: <global --root>/registry)")
	f.StringVar(&opts.HtpasswdPath, "htpasswd", "", "require basic auth with the users in this htpasswd file (bcrypt)")
	f.StringVar(&opts.TLSCert, "tls-cert", "", "serve HTTPS with this PEM certificate (needs --tls-key)")
	f.StringVar(&opts.TLSKey, "tls-key", "", "PEM private key for --tls-cert")
	return cmd
}
