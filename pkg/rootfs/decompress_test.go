package rootfs

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/berthsh/berth/pkg/errdefs"
)

// "hello bzip2\n", compressed with bzip2(1).
var bzip2Hello = []byte{
	0x42, 0x5a, 0x68, 0x39, 0x31, 0x41, 0x59, 0x26, 0x53, 0x59, 0xab, 0x6b,
	0xa1, 0xf1, 0x00, 0x00, 0x02, 0xd9, 0x80, 0x00, 0x10, 0x40, 0x00, 0x10,
	0x00, 0x12, 0x64, 0xc0, 0x10, 0x20, 0x00, 0x31, 0x00, 0xd3, 0x4d, 0x04,
	0x00, 0x1e, 0xa3, 0xef, 0x4e, 0x51, 0xa2, 0x07, 0x8b, 0xb9, 0x22, 0x9c,
	0x28, 0x48, 0x55, 0xb5, 0xd0, 0xf8, 0x80,
}

func gzipBytes(t *testing.T, data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstdBytes(t *testing.T, data []byte) []byte {
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll(data, nil)
}

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

func TestDecompress(t *testing.T) {
	payload := bytes.Repeat([]byte("layer data "), 10000)
	gz := gzipBytes(t, payload)
	ioErr := errors.New("network down")
	tests := []struct {
		name    string
		in      io.Reader
		want    []byte
		openErr error
		readErr error
	}{
		{name: "plain", in: bytes.NewReader(payload), want: payload},
		{name: "empty", in: bytes.NewReader(nil), want: []byte{}},
		{name: "gzip", in: bytes.NewReader(gz), want: payload},
		{name: "zstd", in: bytes.NewReader(zstdBytes(t, payload)), want: payload},
		{name: "bzip2", in: bytes.NewReader(bzip2Hello), want: []byte("hello bzip2\n")},
		{name: "xz", in: bytes.NewReader([]byte{0xfd, '7', 'z', 'X', 'Z', 0, 1, 2}), openErr: errdefs.ErrNotImplemented},
		{name: "truncated gzip", in: bytes.NewReader(gz[:len(gz)/2]), readErr: errdefs.ErrDataCorrupt},
		{name: "source error is not corruption", in: io.MultiReader(bytes.NewReader(gz[:len(gz)/2]), failingReader{ioErr}), readErr: ioErr},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := Decompress(tc.in)
			if tc.openErr != nil {
				if !errors.Is(err, tc.openErr) {
					t.Fatalf("Decompress: %v, want %v", err, tc.openErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if tc.readErr != nil {
				if !errors.Is(err, tc.readErr) {
					t.Fatalf("read: %v, want %v", err, tc.readErr)
				}
				if tc.readErr == ioErr && errors.Is(err, errdefs.ErrDataCorrupt) {
					t.Fatalf("source error classified as corrupt: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("got %d bytes %q..., want %d", len(got), strings.TrimSpace(string(got[:min(len(got), 20)])), len(tc.want))
			}
		})
	}
}
