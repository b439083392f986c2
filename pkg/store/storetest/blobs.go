package storetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berthsh/berth/pkg/errdefs"
)

func checkIngestEmpty(t *testing.T, s Store) {
	t.Helper()
	ds, ok := s.(dirStore)
	if !ok {
		return
	}
	_, ingest, err := OnDisk(ds.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if len(ingest) != 0 {
		t.Errorf("ingest/ not empty: %v", ingest)
	}
}

func testBlobRoundTrip(t *testing.T, s Store) {
	ctx := context.Background()
	lease(t, s)
	for _, n := range []int{0, 1, 4096, 1<<20 + 7} {
		data := Bytes(uint64(n)+1, n)
		d := Digest(data)
		if s.HasBlob(ctx, d) {
			t.Fatalf("%d bytes: HasBlob before write", n)
		}
		info, err := s.WriteBlob(ctx, bytes.NewReader(data), d, int64(n))
		if err != nil {
			t.Fatalf("%d bytes: WriteBlob: %v", n, err)
		}
		if info.Digest != d || info.Size != int64(n) {
			t.Errorf("%d bytes: WriteBlob = %+v", n, info)
		}
		if !s.HasBlob(ctx, d) {
			t.Errorf("%d bytes: HasBlob false after write", n)
		}
		if info, err := s.BlobInfo(ctx, d); err != nil || info.Digest != d || info.Size != int64(n) {
			t.Errorf("%d bytes: BlobInfo = %+v, %v", n, info, err)
		}
		got, err := s.ReadBlob(ctx, d)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%d bytes: ReadBlob: %d bytes, equal %v, %v", n, len(got), bytes.Equal(got, data), err)
		}
		rc, err := s.OpenBlob(ctx, d)
		if err != nil {
			t.Fatalf("%d bytes: OpenBlob: %v", n, err)
		}
		if n <= 4096 {
			// Small reads, reads past EOF, and so on.
			if err := iotest.TestReader(rc, data); err != nil {
				t.Errorf("%d bytes: OpenBlob reader: %v", n, err)
			}
		} else if got, err := io.ReadAll(rc); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%d bytes: OpenBlob read %d bytes, %v", n, len(got), err)
		}
		if err := rc.Close(); err != nil {
			t.Errorf("%d bytes: Close: %v", n, err)
		}
	}
	checkIngestEmpty(t, s)
}

func testBlobWrongDigest(t *testing.T, s Store) {
	ctx := context.Background()
	lease(t, s)
	data := Bytes(1, 10000)
	claimed := Digest(Bytes(2, 10000))
	_, err := s.WriteBlob(ctx, bytes.NewReader(data), claimed, int64(len(data)))
	if !errors.Is(err, errdefs.ErrDataCorrupt) {
		t.Fatalf("WriteBlob with the wrong digest: %v, want ErrDataCorrupt", err)
	}
	for _, d := range []v1.Hash{claimed, Digest(data)} {
		if s.HasBlob(ctx, d) {
			t.Errorf("blob %s stored after a failed write", d)
		}
	}
	checkIngestEmpty(t, s)
}

func testBlobWrongSize(t *testing.T, s Store) {
	ctx := context.Background()
	lease(t, s)
	data := Bytes(3, 10000)
	d := Digest(data)
	for _, size := range []int64{int64(len(data)) - 1, int64(len(data)) + 1, 0} {
		_, err := s.WriteBlob(ctx, bytes.NewReader(data), d, size)
		if !errors.Is(err, errdefs.ErrDataCorrupt) {
			t.Errorf("WriteBlob of %d bytes declared as %d: %v, want ErrDataCorrupt", len(data), size, err)
		}
		if s.HasBlob(ctx, d) {
			t.Fatalf("blob stored after a write with size %d", size)
		}
	}
	// A short read is a wrong size too.
	_, err := s.WriteBlob(ctx, bytes.NewReader(data[:5000]), d, int64(len(data)))
	if !errors.Is(err, errdefs.ErrDataCorrupt) {
		t.Errorf("WriteBlob of a truncated stream: %v, want ErrDataCorrupt", err)
	}
	if s.HasBlob(ctx, d) {
		t.Error("blob stored after a truncated stream")
	}
	checkIngestEmpty(t, s)
}

// failReader fails the test's expectations if anything reads it.
type failReader struct{ read bool }

func (f *failReader) Read([]byte) (int, error) {
	f.read = true
	return 0, errors.New("read")
}

func testBlobIdempotent(t *testing.T, s Store) {
	ctx := context.Background()
	lease(t, s)
	data := Bytes(4, 3000)
	d := Digest(data)
	first, err := s.WriteBlob(ctx, bytes.NewReader(data), d, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	// Present already: not read again.
	fr := &failReader{}
	again, err := s.WriteBlob(ctx, fr, d, int64(len(data)))
	if err != nil || again != first {
		t.Errorf("second WriteBlob = %+v, %v; want %+v", again, err, first)
	}
	if fr.read {
		t.Error("second WriteBlob read its input although the blob is stored")
	}
	// Through a Writer as well.
	w, err := s.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if info, err := w.Commit(ctx, d, int64(len(data))); err != nil || info != first {
		t.Errorf("Commit of stored content = %+v, %v", info, err)
	}
	if got, err := s.ReadBlob(ctx, d); err != nil || !bytes.Equal(got, data) {
		t.Errorf("ReadBlob after rewrites: %v", err)
	}
	checkIngestEmpty(t, s)
}

func testWriterCommitComputesDigest(t *testing.T, s Store) {
	ctx := context.Background()
	lease(t, s)
	data := Bytes(5, 700000)
	w, err := s.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	half := len(data) / 2
	if n, err := w.Write(data[:half]); err != nil || n != half {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if w.Size() != int64(half) || w.Digest() != Digest(data[:half]) {
		t.Errorf("after %d bytes: Size %d, Digest %s", half, w.Size(), w.Digest())
	}
	if _, err := w.Write(data[half:]); err != nil {
		t.Fatal(err)
	}
	if s.HasBlob(ctx, Digest(data)) {
		t.Error("blob visible before Commit")
	}
	info, err := w.Commit(ctx, v1.Hash{}, -1)
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if info.Digest != Digest(data) || info.Size != int64(len(data)) {
		t.Errorf("Commit = %+v, want %s, %d bytes", info, Digest(data), len(data))
	}
	if got, err := s.ReadBlob(ctx, info.Digest); err != nil || !bytes.Equal(got, data) {
		t.Errorf("ReadBlob of committed blob: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("Close after Commit: %v", err)
	}
	if !s.HasBlob(ctx, info.Digest) {
		t.Error("Close after Commit removed the blob")
	}
	if _, err := w.Commit(ctx, v1.Hash{}, -1); err == nil {
		t.Error("second Commit succeeded")
	}
	checkIngestEmpty(t, s)
}

func testWriterCommitChecks(t *testing.T, s Store) {
	ctx := context.Background()
	lease(t, s)
	data := Bytes(6, 5000)
	tests := []struct {
		name string
		want v1.Hash
		size int64
	}{
		{"wrong digest", Digest(Bytes(7, 5000)), int64(len(data))},
		{"wrong digest, size unchecked", Digest(Bytes(7, 5000)), -1},
		{"wrong size", Digest(data), int64(len(data)) + 1},
		{"wrong size, digest unchecked", v1.Hash{}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := s.NewWriter(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if _, err := w.Write(data); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Commit(ctx, tc.want, tc.size); !errors.Is(err, errdefs.ErrDataCorrupt) {
				t.Errorf("Commit: %v, want ErrDataCorrupt", err)
			}
			if s.HasBlob(ctx, Digest(data)) {
				t.Error("content stored after a failed Commit")
			}
			checkIngestEmpty(t, s)
		})
	}
}

func testWriterCloseDiscards(t *testing.T, s Store) {
	ctx := context.Background()
	lease(t, s)
	data := Bytes(8, 300000)
	w, err := s.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if ds, ok := s.(dirStore); ok {
		// The partial blob lives in ingest/ until Close.
		if _, ingest, _ := OnDisk(ds.Dir()); len(ingest) != 1 {
			t.Errorf("ingest/ holds %v while writing, want one entry", ingest)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if s.HasBlob(ctx, Digest(data)) {
		t.Error("blob stored without Commit")
	}
	checkIngestEmpty(t, s)
	if _, err := w.Commit(ctx, v1.Hash{}, -1); err == nil {
		t.Error("Commit after Close succeeded")
	}
	if s.HasBlob(ctx, Digest(data)) {
		t.Error("blob stored by Commit after Close")
	}
}

func testBlobDamagedOnDisk(t *testing.T, s Store) {
	dir := dirOf(t, s)
	ctx := context.Background()
	lease(t, s)
	tests := []struct {
		name   string
		damage func(b []byte) []byte
	}{
		{"flipped byte", func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b }},
		{"flipped last byte", func(b []byte) []byte { b[len(b)-1] ^= 0x01; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)/3] }},
		{"emptied", func(b []byte) []byte { return nil }},
		{"extended", func(b []byte) []byte { return append(b, "more"...) }},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := Bytes(uint64(100+i), 600000)
			d := Digest(data)
			if _, err := s.WriteBlob(ctx, bytes.NewReader(data), d, int64(len(data))); err != nil {
				t.Fatal(err)
			}
			damage(t, blobPath(dir, d), tc.damage)

			rc, err := s.OpenBlob(ctx, d)
			if err != nil {
				t.Fatalf("OpenBlob: %v", err)
			}
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
			if !errors.Is(err, errdefs.ErrDataCorrupt) {
				t.Errorf("reading damaged blob to EOF: %v, want ErrDataCorrupt", err)
			}
			if err != nil && !strings.Contains(err.Error(), d.Hex) {
				t.Errorf("error %q does not name the blob", err)
			}
			if _, err := s.ReadBlob(ctx, d); !errors.Is(err, errdefs.ErrDataCorrupt) {
				t.Errorf("ReadBlob of damaged blob: %v, want ErrDataCorrupt", err)
			}
		})
	}
}

// damage rewrites the (read-only) file at path with fn's result.
func damage(t *testing.T, path string, fn func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, fn(b), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}

func testBlobNotFound(t *testing.T, s Store) {
	ctx := context.Background()
	d := Digest([]byte("never stored"))
	if s.HasBlob(ctx, d) {
		t.Error("HasBlob of unknown digest")
	}
	if _, err := s.BlobInfo(ctx, d); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("BlobInfo: %v, want ErrNotFound", err)
	}
	if rc, err := s.OpenBlob(ctx, d); !errors.Is(err, errdefs.ErrNotFound) {
		if rc != nil {
			rc.Close()
		}
		t.Errorf("OpenBlob: %v, want ErrNotFound", err)
	}
	if _, err := s.ReadBlob(ctx, d); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("ReadBlob: %v, want ErrNotFound", err)
	}
}

func testBlobMalformedDigest(t *testing.T, s Store) {
	ctx := context.Background()
	lease(t, s)
	good := Digest([]byte("x")).Hex
	tests := []struct {
		name string
		d    v1.Hash
	}{
		{"zero", v1.Hash{}},
		{"short", v1.Hash{Algorithm: "sha256", Hex: "abc"}},
		{"upper case", v1.Hash{Algorithm: "sha256", Hex: strings.ToUpper(good)}},
		{"not hex", v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("g", 64)}},
		{"path", v1.Hash{Algorithm: "sha256", Hex: "../../../../../../../etc/passwd" + strings.Repeat("0", 33)}},
		{"other algorithm", v1.Hash{Algorithm: "sha512", Hex: strings.Repeat("0", 128)}},
		{"path algorithm", v1.Hash{Algorithm: "../sha256", Hex: good}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if s.HasBlob(ctx, tc.d) {
				t.Error("HasBlob true")
			}
			if _, err := s.BlobInfo(ctx, tc.d); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("BlobInfo: %v, want ErrInvalidArgument", err)
			}
			if rc, err := s.OpenBlob(ctx, tc.d); !errors.Is(err, errdefs.ErrInvalidArgument) {
				if rc != nil {
					rc.Close()
				}
				t.Errorf("OpenBlob: %v, want ErrInvalidArgument", err)
			}
			if _, err := s.ReadBlob(ctx, tc.d); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("ReadBlob: %v, want ErrInvalidArgument", err)
			}
			if _, err := s.WriteBlob(ctx, strings.NewReader("x"), tc.d, 1); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("WriteBlob: %v, want ErrInvalidArgument", err)
			}
		})
	}
	checkIngestEmpty(t, s)
}
