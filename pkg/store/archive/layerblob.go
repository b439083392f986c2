package archive

import (
	"context"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berthsh/berth/pkg/store"
)

// StoreLayer stores the uncompressed layer tar read from r as a gzip blob,
// compressed with berth's fixed settings (so the same tar always gives the
// same blob), hashing the tar for its diff ID in the same pass. It returns
// the blob's descriptor (OCI layer media type) and the diff ID. The caller
// must hold a store lease.
func StoreLayer(ctx context.Context, s *store.Store, r io.Reader) (v1.Descriptor, v1.Hash, error) {
	l, err := ingestLayer(ctx, s, r, true, v1.Hash{}, -1, nil)
	if err != nil {
		return v1.Descriptor{}, v1.Hash{}, fmt.Errorf("store layer: %w", err)
	}
	return v1.Descriptor{MediaType: l.MediaType, Size: l.Size, Digest: l.Digest}, l.DiffID, nil
}
