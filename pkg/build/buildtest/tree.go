package buildtest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// Node is one path of a merged file tree.
type Node struct {
	// Type is "file", "dir", "symlink" or "other" (devices, fifos).
	Type     string
	Mode     int64 // permission bits with setuid, setgid and sticky
	UID, GID int
	Size     int64
	// SHA256 is a file's content digest, Content its content when small.
	SHA256  string
	Content string
	Link    string
}

// Tree is a merged file tree: absolute paths ("/etc/passwd") to nodes.
type Tree struct {
	Nodes map[string]*Node
	// Whiteouts are the paths layers deleted ("/a/b") and the directories
	// they made opaque ("/a/"), over every layer applied.
	Whiteouts map[string]bool
}

// NewTree is an empty tree (the root directory only).
func NewTree() *Tree {
	return &Tree{Nodes: map[string]*Node{"/": {Type: "dir", Mode: 0o755}}, Whiteouts: map[string]bool{}}
}

// maxContent is the largest content Node keeps as text.
const maxContent = 4096

// ApplyLayer applies a layer tar (gzip-compressed or not) on top of t, with
// OCI whiteouts; opaque markers and whiteouts act on the layers below
// whatever their order in the tar.
func (t *Tree) ApplyLayer(r io.Reader, recordWhiteouts bool) error {
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return err
		}
		defer zr.Close()
		r = zr
	} else {
		r = br
	}
	type entry struct {
		name string
		node *Node
		link string // hard link target
	}
	var entries []entry
	var deletes, opaques []string
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read layer: %w", err)
		}
		name := path.Clean("/" + h.Name)
		dir, base := path.Split(name)
		dir = path.Clean(dir)
		switch {
		case base == ".wh..wh..opq":
			opaques = append(opaques, dir)
			continue
		case strings.HasPrefix(base, ".wh."):
			deletes = append(deletes, path.Join(dir, strings.TrimPrefix(base, ".wh.")))
			continue
		}
		n := &Node{Mode: h.Mode & 0o7777, UID: h.Uid, GID: h.Gid}
		e := entry{name: name, node: n}
		switch h.Typeflag {
		case tar.TypeDir:
			n.Type = "dir"
		case tar.TypeSymlink:
			n.Type, n.Link = "symlink", h.Linkname
		case tar.TypeLink:
			n.Type = "file"
			e.link = path.Clean("/" + h.Linkname)
		case tar.TypeReg, tar.TypeRegA:
			n.Type = "file"
			data, err := io.ReadAll(tr)
			if err != nil {
				return fmt.Errorf("read layer: %s: %w", name, err)
			}
			n.setContent(data)
		default:
			n.Type = "other"
		}
		entries = append(entries, e)
	}
	for _, d := range opaques {
		if recordWhiteouts {
			t.Whiteouts[strings.TrimSuffix(d, "/")+"/"] = true
		}
		t.removeUnder(d)
	}
	for _, d := range deletes {
		if recordWhiteouts {
			t.Whiteouts[d] = true
		}
		delete(t.Nodes, d)
		t.removeUnder(d)
	}
	for _, e := range entries {
		if e.link != "" {
			// A hard link to a file of this layer or one below.
			target := t.Nodes[e.link]
			for _, o := range entries {
				if o.name == e.link {
					target = o.node
				}
			}
			if target != nil {
				e.node.Size, e.node.SHA256, e.node.Content = target.Size, target.SHA256, target.Content
			}
		}
		if e.node.Type != "dir" {
			t.removeUnder(e.name)
		}
		t.Nodes[e.name] = e.node
	}
	return nil
}

func (n *Node) setContent(data []byte) {
	sum := sha256.Sum256(data)
	n.Size = int64(len(data))
	n.SHA256 = hex.EncodeToString(sum[:])
	if len(data) <= maxContent {
		n.Content = string(data)
	}
}

// removeUnder removes what is below dir (not dir itself).
func (t *Tree) removeUnder(dir string) {
	prefix := strings.TrimSuffix(dir, "/") + "/"
	for p := range t.Nodes {
		if strings.HasPrefix(p, prefix) {
			delete(t.Nodes, p)
		}
	}
}

// Paths lists the tree's paths in order.
func (t *Tree) Paths() []string {
	out := make([]string, 0, len(t.Nodes))
	for p := range t.Nodes {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// TreeFromLayers merges layers, base first; whiteouts are recorded for the
// layers from index recordFrom on.
func TreeFromLayers(layers [][]byte, recordFrom int) (*Tree, error) {
	t := NewTree()
	for i, l := range layers {
		if err := t.ApplyLayer(bytes.NewReader(l), i >= recordFrom); err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
	}
	return t, nil
}
