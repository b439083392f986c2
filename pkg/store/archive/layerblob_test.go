package archive

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
)

func TestStoreLayer(t *testing.T) {
	ctx := context.Background()
	ts := newTestStore(t)
	raw := layerTar(t, "a.txt", "dir/b.txt")
	lease, err := ts.Lease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release()
	desc, diffID, err := StoreLayer(ctx, ts.Store, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if diffID != digestOf(raw) {
		t.Errorf("diff ID %s, want %s", diffID, digestOf(raw))
	}
	if desc.MediaType != types.OCILayer {
		t.Errorf("media type %s", desc.MediaType)
	}
	blob, err := ts.ReadBlob(ctx, desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(blob)) != desc.Size {
		t.Errorf("size %d, blob has %d", desc.Size, len(blob))
	}
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(plain, raw) {
		t.Errorf("blob does not decompress to the tar: %v", err)
	}
	// The same tar gives the same blob.
	again, _, err := StoreLayer(ctx, ts.Store, bytes.NewReader(raw))
	if err != nil || again.Digest != desc.Digest {
		t.Errorf("second store: %s, %v; want %s", again.Digest, err, desc.Digest)
	}
	if _, _, err := StoreLayer(ctx, ts.Store, bytes.NewReader([]byte("not a tar at all, clearly"))); err == nil {
		t.Error("non-tar input stored")
	}
}
