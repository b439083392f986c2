package testutil

import (
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

func TestRegistryPeers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		start func(testing.TB) string
	}{
		{"embedded", StartRegistry},
		{"docker-registry", StartDockerRegistry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			host := tt.start(t)
			ref, err := name.ParseReference(host + "/testutil/img:v1")
			if err != nil {
				t.Fatal(err)
			}
			opts := []remote.Option{remote.WithContext(t.Context())}

			// Nothing is there before the push.
			_, err = remote.Head(ref, opts...)
			var terr *transport.Error
			if !errors.As(err, &terr) || terr.StatusCode != http.StatusNotFound {
				t.Fatalf("HEAD before push: got %v, want 404", err)
			}

			img, err := random.Image(1024, 2)
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(ref, img, opts...); err != nil {
				t.Fatalf("push: %v", err)
			}
			got, err := remote.Image(ref, opts...)
			if err != nil {
				t.Fatalf("pull: %v", err)
			}
			gotDigest, err := got.Digest()
			if err != nil {
				t.Fatal(err)
			}
			wantDigest, err := img.Digest()
			if err != nil {
				t.Fatal(err)
			}
			if gotDigest != wantDigest {
				t.Fatalf("pulled %s, pushed %s", gotDigest, wantDigest)
			}
			layers, err := got.Layers()
			if err != nil {
				t.Fatal(err)
			}
			if len(layers) != 2 {
				t.Fatalf("pulled image has %d layers, want 2", len(layers))
			}
			for _, l := range layers {
				// Reading to EOF makes ggcr verify the blob's digest.
				rc, err := l.Compressed()
				if err != nil {
					t.Fatalf("open layer: %v", err)
				}
				_, err = io.Copy(io.Discard, rc)
				rc.Close()
				if err != nil {
					t.Fatalf("read layer: %v", err)
				}
			}

			// Deletes are enabled on both peers.
			if err := remote.Delete(ref.Context().Digest(wantDigest.String()), opts...); err != nil {
				t.Fatalf("delete: %v", err)
			}
		})
	}
}
