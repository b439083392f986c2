package cli

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/berthsh/berth/pkg/runtime"
)

func TestExecOptions(t *testing.T) {
	envFile := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(envFile, []byte("A=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := execFlags{tty: true, privileged: true, user: "nobody", workdir: "/tmp", env: []string{"B=2", "HOSTVAR", "MISSING"}, envFiles: []string{envFile},
		lookupEnv: func(k string) (string, bool) { return "h", k == "HOSTVAR" }}
	got, err := f.options([]string{"sh", "-c", "id"})
	want := runtime.ExecOptions{Cmd: []string{"sh", "-c", "id"}, Env: []string{"A=1", "B=2", "HOSTVAR=h"}, User: "nobody", WorkingDir: "/tmp", Privileged: true, Tty: true}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("options = %+v, %v; want %+v", got, err, want)
	}
	if _, err := (execFlags{workdir: "tmp"}).options([]string{"true"}); err == nil {
		t.Error("relative -w accepted")
	}
	if _, err := (execFlags{env: []string{"=x"}}).options([]string{"true"}); err == nil {
		t.Error("bad -e accepted")
	}
}
