package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berthsh/berth/pkg/reference"
	"github.com/berthsh/berth/pkg/registry"
	"github.com/berthsh/berth/pkg/store"
)

// addRegistryClientCommands adds pull, push, login and logout, and the
// "image pull" and "image push" forms.
func addRegistryClientCommands(root, image *cobra.Command, g *globals) {
	root.AddCommand(newPullCmd(g), newPushCmd(g), newLoginCmd(g), newLogoutCmd(g))
	image.AddCommand(newPullCmd(g), newPushCmd(g))
}

const registryConfigHelp = `Registries on loopback (localhost, 127.0.0.0/8, ::1) are reached over plain
HTTP. For other registries without trusted TLS use --insecure, or list them in
berth's config file ($BERTH_CONFIG, else /etc/berth/config.json for root and
$XDG_CONFIG_HOME/berth/config.json otherwise):

  {"insecure-registries": ["registry.lan:5000", "10.0.0.0/8"]}

Credentials come from 'berth login' (the docker config file and its credential
helpers, as docker uses them).`

type pullFlags struct {
	quiet    bool
	platform string
	insecure bool
}

func newPullCmd(g *globals) *cobra.Command {
	var f pullFlags
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Long: `Download an image from a registry into the local image store. Layers already
stored are not downloaded again; every blob is verified against its digest.
For a multi-platform image the variant for this machine (or --platform) is
stored.

` + registryConfigHelp,
		Example: `  berth pull python:3.11-slim
  berth pull --platform linux/arm64 ghcr.io/org/app:v1
  berth pull localhost:5000/app@sha256:…`,
		Args: argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPull(cmd, g, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "suppress verbose output")
	fl.StringVar(&f.platform, "platform", os.Getenv("DOCKER_DEFAULT_PLATFORM"), "pull this platform (os/arch[/variant]) of a multi-platform image")
	fl.BoolVar(&f.insecure, "insecure", false, "allow plain HTTP and unverified TLS for this registry")
	return cmd
}

// parsePlatform parses os/arch[/variant].
func parsePlatform(cmd *cobra.Command, s string) (*v1.Platform, error) {
	if s == "" {
		return nil, nil
	}
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" || strings.Count(s, "/") > 2 {
		return nil, usageError{err: fmt.Errorf("invalid --platform %q: want os/arch[/variant], e.g. linux/amd64", s), cmd: cmd.CommandPath()}
	}
	return p, nil
}

// parseImageRef parses a NAME[:TAG|@DIGEST] argument; a malformed one is
// a usage error.
func parseImageRef(cmd *cobra.Command, s string) (reference.Reference, error) {
	ref, err := reference.Parse(s)
	if err != nil {
		return reference.Reference{}, usageError{err: err, cmd: cmd.CommandPath()}
	}
	return ref, nil
}

func runPull(cmd *cobra.Command, g *globals, f pullFlags, arg string) error {
	ctx := cmd.Context()
	ref, err := parseImageRef(cmd, arg)
	if err != nil {
		return err
	}
	platform, err := parsePlatform(cmd, f.platform)
	if err != nil {
		return err
	}
	s, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	if !f.quiet {
		if bare, err := reference.ParseRepository(arg); err == nil && bare.Tag() == "" && bare.Digest() == "" {
			fmt.Fprintf(g.Out, "Using default tag: %s\n", reference.DefaultTag)
		}
	}
	// Like docker, say "Pulling from" only once the registry answered.
	var announce sync.Once
	pullingFrom := func() {
		announce.Do(func() {
			if f.quiet {
				return
			}
			what := ref.Tag()
			if d := ref.Digest(); d != "" {
				what = d
			}
			fmt.Fprintf(g.Out, "%s: Pulling from %s\n", what, ref.Path())
		})
	}
	pp := newProgressPrinter(g.Out, "Pulling", f.quiet)
	res, err := registry.Pull(ctx, s, ref, registry.PullOptions{
		Platform: platform,
		Insecure: f.insecure,
		Progress: func(p store.Progress) { pullingFrom(); pp.Update(p) },
	})
	pp.Close()
	if err != nil {
		return err
	}
	g.emitImageEvent("pull", ref.Familiar(), ref.Familiar())
	pullingFrom()
	if !f.quiet {
		fmt.Fprintf(g.Out, "Digest: %s\n", res.Digest)
		if res.UpToDate {
			fmt.Fprintf(g.Out, "Status: Image is up to date for %s\n", ref.Familiar())
		} else {
			fmt.Fprintf(g.Out, "Status: Downloaded newer image for %s\n", ref.Familiar())
		}
	}
	fmt.Fprintln(g.Out, ref.String())
	return nil
}

type pushFlags struct {
	quiet       bool
	compression string
	insecure    bool
}

func newPushCmd(g *globals) *cobra.Command {
	var f pushFlags
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Long: `Upload the local image NAME[:TAG] to the registry its name points at. Blobs
the registry already has are skipped, and blobs it holds in another repository
this image came from are mounted instead of uploaded.

With --compression zstd every layer is recompressed with zstd and an OCI
manifest is pushed (the image ID is unchanged; the manifest digest differs
from the local one). The default, gzip, pushes the stored layers as they are.

` + registryConfigHelp,
		Example: `  berth push localhost:5000/app:v1
  berth push --compression zstd ghcr.io/org/app:v1`,
		Args: argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPush(cmd, g, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "suppress verbose output")
	fl.StringVar(&f.compression, "compression", string(registry.CompressionGzip), "layer compression in the registry: gzip (as stored) or zstd")
	fl.BoolVar(&f.insecure, "insecure", false, "allow plain HTTP and unverified TLS for this registry")
	return cmd
}

func runPush(cmd *cobra.Command, g *globals, f pushFlags, arg string) error {
	ctx := cmd.Context()
	ref, err := parseImageRef(cmd, arg)
	if err != nil {
		return err
	}
	if ref.Digest() != "" {
		return usageError{err: fmt.Errorf("cannot push to a digest reference %q; give NAME[:TAG]", arg), cmd: cmd.CommandPath()}
	}
	comp, err := registry.ParseCompression(f.compression)
	if err != nil {
		return usageError{err: err, cmd: cmd.CommandPath()}
	}
	s, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	if !f.quiet {
		fmt.Fprintf(g.Out, "The push refers to repository [%s]\n", ref.Repository())
	}
	pp := newProgressPrinter(g.Out, "Pushing", f.quiet)
	res, err := registry.Push(ctx, s, ref.String(), ref, registry.PushOptions{
		Insecure:    f.insecure,
		Compression: comp,
		Progress:    pp.Update,
	})
	pp.Close()
	if err != nil {
		return err
	}
	g.emitImageEvent("push", res.Reference.Familiar(), res.Reference.Familiar())
	if f.quiet {
		fmt.Fprintln(g.Out, res.Reference.String())
		return nil
	}
	fmt.Fprintf(g.Out, "%s: digest: %s size: %d\n", res.Reference.Tag(), res.Digest, res.Size)
	return nil
}

type loginFlags struct {
	username, password string
	passwordStdin      bool
	insecure           bool
}

func newLoginCmd(g *globals) *cobra.Command {
	var f loginFlags
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Log in to a registry",
		Long: `Check a user name and password with a registry and store them for pull and
push, as 'docker login' does: in the docker config file
($DOCKER_CONFIG/config.json, else ~/.docker/config.json), through its
credential helper (credsStore, credHelpers) when one is configured. Without
SERVER, Docker Hub is used. Without -u or a password, berth asks for them on
the terminal.`,
		Example: `  berth login localhost:5000
  echo "$TOKEN" | berth login -u me --password-stdin ghcr.io`,
		Args: argsBetween(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			return runLogin(cmd, g, f, server)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.username, "username", "u", "", "user name")
	fl.StringVarP(&f.password, "password", "p", "", "password or token (insecure: prefer --password-stdin)")
	fl.BoolVar(&f.passwordStdin, "password-stdin", false, "read the password or token from stdin")
	fl.BoolVar(&f.insecure, "insecure", false, "allow plain HTTP and unverified TLS for this registry")
	return cmd
}

func runLogin(cmd *cobra.Command, g *globals, f loginFlags, server string) error {
	ctx := cmd.Context()
	if f.password != "" {
		fmt.Fprintln(g.Err, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
		if f.passwordStdin {
			return usageError{err: errors.New("--password and --password-stdin are mutually exclusive"), cmd: cmd.CommandPath()}
		}
	}
	if f.passwordStdin {
		if f.username == "" {
			return usageError{err: errors.New("must provide --username with --password-stdin"), cmd: cmd.CommandPath()}
		}
		b, err := io.ReadAll(g.In)
		if err != nil {
			return fmt.Errorf("read password from stdin: %w", err)
		}
		f.password = strings.TrimRight(string(b), "\r\n")
	}
	if f.username == "" || f.password == "" {
		fd, ok := terminalFd(g.In)
		if !ok {
			return usageError{err: errors.New("cannot perform an interactive login from a non TTY device; use -u and --password-stdin"), cmd: cmd.CommandPath()}
		}
		if f.username == "" {
			fmt.Fprint(g.Out, "Username: ")
			line, err := bufio.NewReader(g.In).ReadString('\n')
			if err != nil && line == "" {
				return fmt.Errorf("read username: %w", err)
			}
			f.username = strings.TrimSpace(line)
		}
		if f.password == "" {
			fmt.Fprint(g.Out, "Password: ")
			b, err := term.ReadPassword(fd)
			fmt.Fprintln(g.Out)
			if err != nil {
				return fmt.Errorf("read password: %w", err)
			}
			f.password = string(b)
		}
		if f.username == "" || f.password == "" {
			return usageError{err: errors.New("username and password are required"), cmd: cmd.CommandPath()}
		}
	}
	res, err := registry.Login(ctx, server, f.username, f.password, registry.LoginOptions{Insecure: f.insecure})
	if err != nil {
		return err
	}
	if res.Helper == "" {
		fmt.Fprintf(g.Err, "WARNING! Your password will be stored unencrypted in %s.\n"+
			"Configure a credential helper to remove this warning. See\n"+
			"https://docs.docker.com/go/credential-store/\n\n", res.ConfigFile)
	}
	fmt.Fprintln(g.Out, "Login Succeeded")
	return nil
}

// terminalFd returns r's file descriptor if r is a terminal.
func terminalFd(r io.Reader) (int, bool) {
	f, ok := r.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0, false
	}
	return int(f.Fd()), true
}

func newLogoutCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Long: `Remove the credentials stored for SERVER (Docker Hub without SERVER) from the
docker config file and its credential helper.`,
		Args: argsBetween(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			res, err := registry.Logout(cmd.Context(), server, registry.LogoutOptions{})
			if !res.LoggedIn && err == nil {
				fmt.Fprintf(g.Out, "Not logged in to %s\n", res.ServerAddress)
				return nil
			}
			fmt.Fprintf(g.Out, "Removing login credentials for %s\n", res.ServerAddress)
			return err
		},
	}
}
