package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/sys/user"
)

// maxAccountFile bounds how much of /etc/passwd or /etc/group is read.
const maxAccountFile = 16 << 20

type resolvedUser struct {
	uid, gid int
	sgids    []uint32
	home     string
}

// resolveUser turns "user[:group]" (names or numbers; empty is root) and
// extra groups into numeric IDs using the container's /etc/passwd and
// /etc/group, as docker does: numbers need no entry, names must exist.
func resolveUser(rootfsPath, spec string, groupAdd []string) (resolvedUser, error) {
	passwd, err := readAccountFile(rootfsPath, "/etc/passwd")
	if err != nil {
		return resolvedUser{}, err
	}
	group, err := readAccountFile(rootfsPath, "/etc/group")
	if err != nil {
		return resolvedUser{}, err
	}
	eu, err := user.GetExecUser(spec, &user.ExecUser{Uid: 0, Gid: 0, Home: "/"}, reader(passwd), reader(group))
	if err != nil {
		return resolvedUser{}, invalidf("user %q: %v", spec, err)
	}
	extra, err := user.GetAdditionalGroups(groupAdd, reader(group))
	if len(groupAdd) > 0 && err != nil {
		return resolvedUser{}, invalidf("additional groups %v: %v", groupAdd, err)
	}
	u := resolvedUser{uid: eu.Uid, gid: eu.Gid, home: eu.Home}
	// GetAdditionalGroups returns groups in no particular order: sort, so
	// that the same options always give the same spec.
	for _, g := range append(eu.Sgids, extra...) {
		u.sgids = append(u.sgids, uint32(g))
	}
	slices.Sort(u.sgids)
	u.sgids = slices.Compact(u.sgids)
	return u, nil
}

// readAccountFile reads name inside rootfsPath, resolving symbolic links
// as if rootfsPath were "/". A missing file gives nil.
func readAccountFile(rootfsPath, name string) ([]byte, error) {
	p, err := securejoin.SecureJoin(rootfsPath, name)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", name, err)
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", name, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxAccountFile+1))
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", name, err)
	}
	if len(data) > maxAccountFile {
		return nil, invalidf("container %s is larger than %d bytes", name, maxAccountFile)
	}
	return data, nil
}

// reader returns nil (not a nil *bytes.Reader) for a missing file.
func reader(b []byte) io.Reader {
	if b == nil {
		return nil
	}
	return bytes.NewReader(b)
}
