package pyproject

import (
	"errors"
	"strings"
	"testing"

	"github.com/berthsh/berth/pkg/errdefs"
)

func TestReadRequirements(t *testing.T) {
	tests := []struct {
		name   string
		files  map[string]string
		want   []string // name|spec|marker|editable
		files2 []string // files read
		err    string
	}{
		{name: "includes, comments, continuations, options", files: map[string]string{
			"requirements.txt":     "# top\n-r reqs/base.txt\n--requirement=reqs/extra.txt\n-c reqs/constraints.txt\ngunicorn>=20.1 \\\n  # trailing\n",
			"reqs/base.txt":        "Flask_Login[async] ~= 0.6  # login\n-r common.txt\n",
			"reqs/common.txt":      "Jinja2==3.1.2\n",
			"reqs/extra.txt":       "-r common.txt\nuvloop ; sys_platform != \"win32\"\n",
			"reqs/constraints.txt": "urllib3<2\n",
		}, want: []string{
			"flask-login|~= 0.6||false", "jinja2|==3.1.2||false", "uvloop||sys_platform != \"win32\"|false", "gunicorn|>=20.1||false",
		}, files2: []string{"requirements.txt", "reqs/base.txt", "reqs/common.txt", "reqs/extra.txt", "reqs/constraints.txt"}},
		{name: "urls, paths and editables", files: map[string]string{
			"requirements.txt": "-e ./libs/core\n-e git+https://example.com/repo.git@v1#egg=Repo_Lib\ngit+https://example.com/other.git@main#egg=other\n./wheels/pkg-1.0-py3-none-any.whl\nname @ https://example.com/name.tar.gz ; python_version >= \"3.9\"\n",
		}, want: []string{
			"core|./libs/core||true", "repo-lib|git+https://example.com/repo.git@v1#egg=Repo_Lib||true",
			"other|git+https://example.com/other.git@main#egg=other||false", "|./wheels/pkg-1.0-py3-none-any.whl||true",
			"name|@ https://example.com/name.tar.gz|python_version >= \"3.9\"|false",
		}, files2: []string{"requirements.txt"}},
		{name: "self include", files: map[string]string{"requirements.txt": "-r requirements.txt\n"}, err: "requirements.txt -> requirements.txt"},
		{name: "outside the project", files: map[string]string{"requirements.txt": "-r ../x.txt\n"}, err: "outside the project"},
		{name: "missing include", files: map[string]string{"requirements.txt": "-r nope.txt\n"}, err: "nope.txt"},
		{name: "remote include", files: map[string]string{"requirements.txt": "-r https://example.com/r.txt\n"}, err: "remote include"},
		{name: "bad line", files: map[string]string{"requirements.txt": "ok\n\n==1.0\n"}, err: "requirements.txt:3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, tt.files)
			rf, err := readRequirements(dir, "requirements.txt")
			if tt.err != "" {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.err)
				}
				if !strings.Contains(err.Error(), tt.err) {
					t.Errorf("err %q lacks %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rf.reqs {
				got = append(got, r.Name+"|"+r.Spec+"|"+r.Marker+"|"+map[bool]string{true: "true", false: "false"}[r.Editable])
			}
			if len(got) != len(tt.want) {
				t.Fatalf("requirements:\n%q\nwant:\n%q", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("requirement %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
			if len(rf.files) != len(tt.files2) {
				t.Fatalf("files %q, want %q", rf.files, tt.files2)
			}
			for i := range rf.files {
				if rf.files[i] != tt.files2[i] {
					t.Errorf("files %q, want %q", rf.files, tt.files2)
				}
			}
		})
	}
}
