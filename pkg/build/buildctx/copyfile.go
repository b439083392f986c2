package buildctx

import (
	"io"
	"os"
)

// CopyFile copies the regular file src to dst, which must not exist yet,
// and gives dst the permission bits mode (not narrowed by the umask). On
// error dst may be left partly written; the caller removes what it made.
func CopyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}
