//go:build !linux

package logs

import "os"

// fileKey is only implemented on Linux; elsewhere a follower cannot
// recognise a compressed file (see identity_linux.go).
func fileKey(os.FileInfo) (string, bool) { return "", false }
