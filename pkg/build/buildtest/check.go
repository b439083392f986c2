package buildtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Check compares an image (its config and merged tree; added is how many
// layers the build put over the base) with the expectations and returns
// the differences, one sentence each.
func (e Expect) Check(cf *v1.ConfigFile, tree *Tree, added int) []string {
	var diffs []string
	if e.Layers != nil && *e.Layers != added {
		diffs = append(diffs, fmt.Sprintf("%d layers over the base, want %d", added, *e.Layers))
	}
	got := configFields(cf.Config)
	for _, k := range sortedKeys(e.Config) {
		want, err := normalizeJSON(e.Config[k])
		if err != nil {
			diffs = append(diffs, fmt.Sprintf("config %s: bad expectation: %v", k, err))
			continue
		}
		if !reflect.DeepEqual(got[k], want) {
			diffs = append(diffs, fmt.Sprintf("config %s = %s, want %s", k, jsonText(got[k]), jsonText(want)))
		}
	}
	for _, p := range sortedKeys(e.Files) {
		diffs = append(diffs, checkFile(p, e.Files[p], tree.Nodes[p])...)
	}
	for _, p := range e.Absent {
		if tree.Nodes[p] != nil {
			diffs = append(diffs, fmt.Sprintf("%s exists, want it absent", p))
		}
	}
	for _, p := range e.Whiteouts {
		if !tree.Whiteouts[p] {
			diffs = append(diffs, fmt.Sprintf("no whiteout for %s (whiteouts: %v)", p, sortedKeys(tree.Whiteouts)))
		}
	}
	return diffs
}

func checkFile(p string, want File, n *Node) []string {
	if n == nil {
		return []string{fmt.Sprintf("%s is missing", p)}
	}
	var diffs []string
	bad := func(field string, got, want any) {
		diffs = append(diffs, fmt.Sprintf("%s: %s %v, want %v", p, field, got, want))
	}
	if want.Type != "" && n.Type != want.Type {
		bad("type", n.Type, want.Type)
	}
	if want.Mode != "" {
		m, err := strconv.ParseInt(want.Mode, 8, 64)
		if err != nil {
			diffs = append(diffs, fmt.Sprintf("%s: bad mode %q in expectation", p, want.Mode))
		} else if n.Mode != m {
			bad("mode", fmt.Sprintf("%04o", n.Mode), want.Mode)
		}
	}
	if want.UID != nil && n.UID != *want.UID {
		bad("uid", n.UID, *want.UID)
	}
	if want.GID != nil && n.GID != *want.GID {
		bad("gid", n.GID, *want.GID)
	}
	if want.Content != nil && n.Content != *want.Content {
		bad("content", strconv.Quote(n.Content), strconv.Quote(*want.Content))
	}
	if want.Link != "" && n.Link != want.Link {
		bad("link target", n.Link, want.Link)
	}
	return diffs
}

// ConfigFields are the config fields Check and DiffConfig know.
var ConfigFields = []string{"Cmd", "Entrypoint", "Env", "WorkingDir", "User", "ExposedPorts",
	"Volumes", "Labels", "StopSignal", "Healthcheck", "Shell", "OnBuild"}

// configFields is c as JSON values, empty ones as nil.
func configFields(c v1.Config) map[string]any {
	data, _ := json.Marshal(c)
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	out := map[string]any{}
	for _, k := range ConfigFields {
		out[k] = emptyToNil(m[k])
	}
	return out
}

func normalizeJSON(raw json.RawMessage) (any, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return emptyToNil(v), nil
}

func emptyToNil(v any) any {
	switch x := v.(type) {
	case string:
		if x == "" {
			return nil
		}
	case []any:
		if len(x) == 0 {
			return nil
		}
	case map[string]any:
		if len(x) == 0 {
			return nil
		}
	}
	return v
}

func jsonText(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return string(bytes.TrimSpace(b.Bytes()))
}

// DiffConfig compares the ConfigFields of two configs.
func DiffConfig(a, b v1.Config, aName, bName string) []string {
	fa, fb := configFields(a), configFields(b)
	var diffs []string
	for _, k := range ConfigFields {
		if !reflect.DeepEqual(fa[k], fb[k]) {
			diffs = append(diffs, fmt.Sprintf("config %s: %s %s, %s %s", k, aName, jsonText(fa[k]), bName, jsonText(fb[k])))
		}
	}
	return diffs
}

// DiffTree compares two trees path by path (type, mode, owner, content
// digest, link target); ignore says which paths to leave out.
func DiffTree(a, b *Tree, aName, bName string, ignore func(string) bool) []string {
	var diffs []string
	paths := map[string]bool{}
	for p := range a.Nodes {
		paths[p] = true
	}
	for p := range b.Nodes {
		paths[p] = true
	}
	for _, p := range sortedKeys(paths) {
		if ignore != nil && ignore(p) {
			continue
		}
		na, nb := a.Nodes[p], b.Nodes[p]
		switch {
		case na == nil:
			diffs = append(diffs, fmt.Sprintf("%s: only in %s", p, bName))
		case nb == nil:
			diffs = append(diffs, fmt.Sprintf("%s: only in %s", p, aName))
		default:
			if d := nodeDiff(na, nb); d != "" {
				diffs = append(diffs, fmt.Sprintf("%s: %s %s, %s %s", p, aName, na.describe(), bName, nb.describe()))
			}
		}
	}
	return diffs
}

func nodeDiff(a, b *Node) string {
	if a.Type != b.Type || a.Mode != b.Mode || a.UID != b.UID || a.GID != b.GID || a.SHA256 != b.SHA256 || a.Link != b.Link {
		return "differ"
	}
	return ""
}

func (n *Node) describe() string {
	s := fmt.Sprintf("%s %04o %d:%d", n.Type, n.Mode, n.UID, n.GID)
	if n.Type == "file" {
		s += fmt.Sprintf(" %d bytes sha256:%.12s", n.Size, n.SHA256)
	}
	if n.Link != "" {
		s += " -> " + n.Link
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
