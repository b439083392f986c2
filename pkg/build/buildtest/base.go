package buildtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Applets are the busybox commands SlimBase links into /usr/bin.
var Applets = []string{"sh", "cat", "id", "ls", "mkdir", "touch", "rm", "ln", "sleep", "true", "false", "echo",
	"pwd", "env", "grep", "cut", "chmod", "chown", "cp", "mv", "stat", "wc", "printf", "test", "head", "tail", "sed"}

// SlimBase makes a small base image root file system from the minimal
// one (testutil.BaseTarball) with the host's tar: busybox and the libraries
// it needs, the account files and the top-level directories, with Applets
// linked to busybox. It writes dir/slim.tar.gz and returns its path.
// Importing and unpacking the whole base takes a minute under the race
// detector; this takes a second.
func SlimBase(tarball, dir string) (string, error) {
	tree := filepath.Join(dir, "slim")
	if err := os.Mkdir(tree, 0o755); err != nil {
		return "", err
	}
	members := []string{
		"./bin", "./lib", "./lib64", "./sbin", "./etc", "./tmp", "./proc", "./sys", "./dev", "./root",
		"./usr", "./usr/bin", "./usr/lib", "./usr/lib64", "./usr/bin/busybox",
		"./etc/passwd", "./etc/group", "./etc/issue",
		"*/ld-linux*", "*/libc.so.6", "*/libresolv.so.2", "*/libm.so.6",
	}
	args := append([]string{"-xzf", tarball, "-C", tree, "--no-recursion", "--wildcards"}, members...)
	if out, err := exec.Command("tar", args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("extract base: %v: %s", err, out)
	}
	for _, applet := range Applets {
		if err := os.Symlink("busybox", filepath.Join(tree, "usr/bin", applet)); err != nil {
			return "", err
		}
	}
	out := filepath.Join(dir, "slim.tar.gz")
	if b, err := exec.Command("tar", "-czf", out, "-C", tree, "--sort=name", "--numeric-owner", "--mtime=@0", ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("pack base: %v: %s", err, b)
	}
	return out, os.RemoveAll(tree)
}
