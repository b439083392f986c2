package reference

import (
	"errors"
	"testing"

	"github.com/berthsh/berth/pkg/errdefs"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, full, familiar, domain, path, tag, digest string
	}{
		{"python", "docker.io/library/python:latest", "python:latest", "docker.io", "library/python", "latest", ""},
		{"python:3.11-slim", "docker.io/library/python:3.11-slim", "python:3.11-slim", "docker.io", "library/python", "3.11-slim", ""},
		{"me/app:v1", "docker.io/me/app:v1", "me/app:v1", "docker.io", "me/app", "v1", ""},
		{"localhost:5000/app", "localhost:5000/app:latest", "localhost:5000/app:latest", "localhost:5000", "app", "latest", ""},
		{"ghcr.io/org/team/app:1.0", "ghcr.io/org/team/app:1.0", "ghcr.io/org/team/app:1.0", "ghcr.io", "org/team/app", "1.0", ""},
		{"docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest", "docker.io", "library/busybox", "latest", ""},
		{"index.docker.io/library/busybox:1", "docker.io/library/busybox:1", "busybox:1", "docker.io", "library/busybox", "1", ""},
		{
			"busybox@sha256:" + sixtyFourA,
			"docker.io/library/busybox@sha256:" + sixtyFourA, "busybox@sha256:" + sixtyFourA,
			"docker.io", "library/busybox", "", "sha256:" + sixtyFourA,
		},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			got := []string{r.String(), r.Familiar(), r.Domain(), r.Path(), r.Tag(), r.Digest()}
			want := []string{tt.full, tt.familiar, tt.domain, tt.path, tt.tag, tt.digest}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("field %d: got %q, want %q", i, got[i], want[i])
				}
			}
		})
	}
}

const sixtyFourA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func TestParseInvalid(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "app/UPPER", "a:b:c", "foo@sha256:short", "-leading", sixtyFourA, "sha256:" + sixtyFourA, "bad name"} {
		_, err := Parse(in)
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Parse(%q) = %v, want ErrInvalidArgument", in, err)
		}
	}
}

func TestLoopbackAndName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in       string
		loopback bool
		scheme   string
	}{
		{"localhost:5000/a", true, "http"},
		{"127.0.0.1:5000/a", true, "http"},
		{"[::1]:5000/a", true, "http"},
		{"registry.example.com/a", false, "https"},
		{"python", false, "https"},
	}
	for _, tt := range tests {
		r, err := Parse(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if r.IsLoopback() != tt.loopback {
			t.Errorf("%s: IsLoopback = %v", tt.in, !tt.loopback)
		}
		n, err := r.Name(false)
		if err != nil {
			t.Fatal(err)
		}
		if s := n.Context().Registry.Scheme(); s != tt.scheme {
			t.Errorf("%s: scheme %s, want %s", tt.in, s, tt.scheme)
		}
	}
	r, _ := Parse("example.com/a")
	n, _ := r.Name(true)
	if n.Context().Registry.Scheme() != "http" {
		t.Error("insecure name should use http")
	}
}

func TestWithTag(t *testing.T) {
	t.Parallel()
	r, _ := Parse("python:3.11")
	r2, err := r.WithTag("3.12")
	if err != nil || r2.String() != "docker.io/library/python:3.12" {
		t.Fatalf("WithTag: %v %v", r2, err)
	}
	if _, err := r.WithTag("bad tag"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("bad tag: %v", err)
	}
}
