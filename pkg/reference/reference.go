package reference

import (
	"fmt"
	"regexp"
	"strings"

	dref "github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/berthsh/berth/pkg/errdefs"
)

// DefaultTag is the tag a name without tag or digest gets.
const DefaultTag = "latest"

// Reference is a normalised image name: registry, repository path, and a
// tag, a digest, or both.
type Reference struct {
	named dref.Named
}

// Parse parses s as Docker does and normalises it: docker.io is the default
// registry, library/ the default namespace on it, and latest the default tag
// when s has neither tag nor digest.
func Parse(s string) (Reference, error) {
	n, err := parse(s)
	if err != nil {
		return Reference{}, err
	}
	return Reference{named: dref.TagNameOnly(n)}, nil
}

// ParseRepository parses s and keeps it as given: no default tag is added,
// so a bare repository stays bare (for "push all tags" or filters).
func ParseRepository(s string) (Reference, error) {
	n, err := parse(s)
	if err != nil {
		return Reference{}, err
	}
	return Reference{named: n}, nil
}

var anyIDRe = regexp.MustCompile(`^(sha256:)?[a-f0-9]{64}$`)

func parse(s string) (dref.Named, error) {
	if s == "" {
		return nil, fmt.Errorf("empty image name: %w", errdefs.ErrInvalidArgument)
	}
	if anyIDRe.MatchString(s) {
		return nil, fmt.Errorf("invalid reference %q: a bare image ID is not a name: %w", s, errdefs.ErrInvalidArgument)
	}
	n, err := dref.ParseNormalizedNamed(s)
	if err != nil {
		return nil, fmt.Errorf("invalid reference %q: %v: %w", s, err, errdefs.ErrInvalidArgument)
	}
	return n, nil
}

// IsZero reports whether r is the zero Reference.
func (r Reference) IsZero() bool { return r.named == nil }

// String is the fully qualified form: docker.io/library/python:3.11.
func (r Reference) String() string {
	if r.named == nil {
		return ""
	}
	return r.named.String()
}

// Familiar is the short form docker shows: python:3.11, me/app:v1,
// ghcr.io/org/app:v1.
func (r Reference) Familiar() string {
	if r.named == nil {
		return ""
	}
	return dref.FamiliarString(r.named)
}

// Domain is the registry host (and port): docker.io, localhost:5000.
func (r Reference) Domain() string { return dref.Domain(r.named) }

// Path is the repository path within the registry: library/python.
func (r Reference) Path() string { return dref.Path(r.named) }

// Repository is the fully qualified repository: docker.io/library/python.
func (r Reference) Repository() string { return r.named.Name() }

// FamiliarRepository is the short repository: python, me/app.
func (r Reference) FamiliarRepository() string { return dref.FamiliarName(r.named) }

// Tag returns the tag, or "" when there is none.
func (r Reference) Tag() string {
	if t, ok := r.named.(dref.Tagged); ok {
		return t.Tag()
	}
	return ""
}

// Digest returns the digest ("sha256:…"), or "" when there is none.
func (r Reference) Digest() string {
	if d, ok := r.named.(dref.Digested); ok {
		return d.Digest().String()
	}
	return ""
}

// WithTag returns r with its tag (and any digest) replaced by tag.
func (r Reference) WithTag(tag string) (Reference, error) {
	n, err := dref.WithTag(dref.TrimNamed(r.named), tag)
	if err != nil {
		return Reference{}, fmt.Errorf("invalid tag %q: %v: %w", tag, err, errdefs.ErrInvalidArgument)
	}
	return Reference{named: n}, nil
}

// WithDigest returns repository@digest for r's repository.
func (r Reference) WithDigest(digest string) (Reference, error) {
	n, err := ParseRepository(r.Repository() + "@" + digest)
	if err != nil {
		return Reference{}, err
	}
	return n, nil
}

// IsLoopback reports whether the registry is on this machine (localhost,
// 127.0.0.0/8, ::1), where plain HTTP is used as docker does.
func (r Reference) IsLoopback() bool {
	host := r.Domain()
	if strings.HasPrefix(host, "[") {
		if i := strings.Index(host, "]"); i > 0 {
			host = host[1:i]
		}
	} else if i := strings.LastIndex(host, ":"); i >= 0 {
		host = host[:i]
	}
	return host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1"
}

// Name converts r to a go-containerregistry reference. insecure allows
// plain HTTP for a registry that is not on loopback.
func (r Reference) Name(insecure bool) (name.Reference, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	// ggcr wants a tag or a digest, not both: the digest wins, as in docker.
	s := r.String()
	if d := r.Digest(); d != "" {
		s = r.Repository() + "@" + d
	}
	ref, err := name.ParseReference(s, opts...)
	if err != nil {
		return nil, fmt.Errorf("invalid reference %q: %v: %w", r.String(), err, errdefs.ErrInvalidArgument)
	}
	return ref, nil
}
