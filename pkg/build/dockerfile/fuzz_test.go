package dockerfile

import (
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// FuzzParsePlan checks that no input makes Parse or Plan panic.
func FuzzParsePlan(f *testing.F) {
	for _, seed := range []string{
		"FROM alpine\nRUN echo hi\n",
		"ARG V=1\nFROM python:$V AS b\nCOPY --from=b <<EOF /x\n$V\nEOF\nRUN --mount=type=cache,target=$D true\n",
		"# escape=`\nFROM scratch\nENV A=`$B\nONBUILD RUN x\nFROM 0\nCOPY --from=0 a b\n",
		"FROM scratch AS a\nCOPY --from=a x y\n",
		"FROM scratch\n# check=skip=all\nEXPOSE 80-82/udp 1:2:3\nHEALTHCHECK CMD true\nCMD x\n",
	} {
		f.Add(seed, "")
	}
	f.Fuzz(func(t *testing.T, src, target string) {
		file, err := Parse(strings.NewReader(src), "Dockerfile")
		if err != nil {
			return
		}
		p, err := Plan(file, PlanOptions{Target: target, BuildArgs: map[string]string{"V": "2"}, BaseConfigs: map[string]BaseConfig{
			"docker.io/library/python:2": {OnBuild: []string{src}},
		}})
		if err != nil {
			return
		}
		for _, s := range p.Stages {
			for _, st := range s.Steps {
				_ = CreatedBy(st)
				st.RunArgs()
				NewConfigBuilder(v1.Config{}).Apply(st)
			}
		}
	})
}
