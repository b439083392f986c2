package buildctx

import (
	"io/fs"
	"path"
	"time"
)

// Inline is a source whose content is given, such as a here-document of
// COPY <<EOF: a regular file of mode 0644 named name at a directory
// destination. It is never extracted.
func Inline(name string, data []byte) Source {
	return Source{Path: name, Arg: name, Name: path.Base(name), info: inlineInfo{name: path.Base(name), size: int64(len(data))}, data: data, inline: true}
}

type inlineInfo struct {
	name string
	size int64
}

func (i inlineInfo) Name() string       { return i.name }
func (i inlineInfo) Size() int64        { return i.size }
func (i inlineInfo) Mode() fs.FileMode  { return 0o644 }
func (i inlineInfo) ModTime() time.Time { return time.Time{} }
func (i inlineInfo) IsDir() bool        { return false }
func (i inlineInfo) Sys() any           { return nil }
