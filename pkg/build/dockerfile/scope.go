package dockerfile

import (
	"maps"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// defaultPath is the PATH a Linux image gets when its base sets none, as in
// BuildKit.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// vars is an ordered set of variables. Setting an existing key replaces its
// value in place.
type vars struct {
	keys []string
	vals map[string]string
}

func (v *vars) set(k, val string) {
	if v.vals == nil {
		v.vals = map[string]string{}
	}
	if _, ok := v.vals[k]; !ok {
		v.keys = append(v.keys, k)
	}
	v.vals[k] = val
}

// Get implements shell.EnvGetter.
func (v *vars) Get(k string) (string, bool) {
	val, ok := v.vals[k]
	return val, ok
}

// Keys implements shell.EnvGetter.
func (v *vars) Keys() []string { return slices.Clone(v.keys) }

func (v *vars) slice() []string {
	out := make([]string, 0, len(v.keys))
	for _, k := range v.keys {
		out = append(out, k+"="+v.vals[k])
	}
	return out
}

func (v *vars) clone() vars {
	return vars{keys: slices.Clone(v.keys), vals: maps.Clone(v.vals)}
}

func varsFromSlice(env []string) vars {
	var v vars
	for _, kv := range env {
		k, val, _ := strings.Cut(kv, "=")
		if k != "" {
			v.set(k, val)
		}
	}
	return v
}

// Scope is the variable scope of one build stage at one point: the ARGs
// declared so far (with the value each resolved to) and the ENV values.
// Both are visible to expansion and to RUN; only ENV values are persisted
// in the image. Scope implements shell.EnvGetter.
//
// ARG resolution follows Docker: a --build-arg value wins, but only for an
// ARG the stage declares; an ARG declared without a default takes the value
// of the meta ARG (or predefined ARG such as TARGETPLATFORM) of the same
// name; otherwise the default is expanded in the current scope. An ENV of
// the same name, set later, overrides the ARG; an ARG declared after an ENV
// of the same name changes what later instructions and RUN see (as in
// BuildKit) but not the image's value.
type Scope struct {
	build vars // ENV and ARG values, in the order set: what expansion and RUN see
	image vars // ENV values: what the image keeps
	args  []instructions.KeyValuePairOptional
	// baseKnown is false when the stage's base is an image whose config
	// was not given: its environment is unknown, so undefined variables
	// are not reported.
	baseKnown  bool
	shell      []string // SHELL in effect; nil means the default
	workdir    string   // working directory in effect ("" means /)
	workdirSet bool     // a WORKDIR in this Dockerfile set the working directory
}

// newScope starts a stage scope from a base image environment.
func newScope(baseEnv []string, known bool) *Scope {
	s := &Scope{baseKnown: known}
	s.image = varsFromSlice(baseEnv)
	if _, ok := s.image.Get("PATH"); !ok {
		s.image.set("PATH", defaultPath)
	}
	s.build = s.image.clone()
	return s
}

func (s *Scope) clone() *Scope {
	c := *s
	c.build = s.build.clone()
	c.image = s.image.clone()
	c.args = slices.Clone(s.args)
	c.shell = slices.Clone(s.shell)
	return &c
}

// Get implements shell.EnvGetter: ARG and ENV values.
func (s *Scope) Get(k string) (string, bool) { return s.build.Get(k) }

// Keys implements shell.EnvGetter.
func (s *Scope) Keys() []string { return s.build.Keys() }

// Env is the persisted environment ("K=V", ENV and base image values).
func (s *Scope) Env() []string { return s.image.slice() }

// BuildEnv is the environment a RUN step sees: Env plus the values of the
// declared ARGs.
func (s *Scope) BuildEnv() []string { return s.build.slice() }

// Args are the ARGs declared in this stage (and the stages it derives
// from), in order, with the values they resolved to (nil for an ARG
// without any value).
func (s *Scope) Args() []instructions.KeyValuePairOptional { return slices.Clone(s.args) }

// declared reports whether an ARG named k was declared.
func (s *Scope) declared(k string) bool {
	for _, a := range s.args {
		if a.Key == k {
			return true
		}
	}
	return false
}

func (s *Scope) setEnv(k, v string) {
	s.build.set(k, v)
	s.image.set(k, v)
}

func (s *Scope) declare(a instructions.KeyValuePairOptional) {
	if a.Value != nil {
		s.build.set(a.Key, *a.Value)
	}
	s.args = append(s.args, a)
}

// Shell is the shell in effect for shell-form commands.
func (s *Scope) Shell() []string {
	if len(s.shell) == 0 {
		return []string{"/bin/sh", "-c"}
	}
	return slices.Clone(s.shell)
}

// Workdir is the working directory in effect.
func (s *Scope) Workdir() string {
	if s.workdir == "" {
		return "/"
	}
	return s.workdir
}
