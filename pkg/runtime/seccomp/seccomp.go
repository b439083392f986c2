package seccomp

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthsh/berth/pkg/errdefs"
)

//go:embed default.json
var defaultProfile []byte

// Profile is a seccomp profile in Docker's format.
type Profile struct {
	DefaultAction    specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet  *uint                    `json:"defaultErrnoRet,omitempty"`
	ListenerPath     string                   `json:"listenerPath,omitempty"`
	ListenerMetadata string                   `json:"listenerMetadata,omitempty"`
	// Architectures is the old form of ArchMap: the architectures, with
	// no sub-architectures.
	Architectures []specs.Arch             `json:"architectures,omitempty"`
	ArchMap       []Architecture           `json:"archMap,omitempty"`
	Syscalls      []Syscall                `json:"syscalls"`
	Flags         []specs.LinuxSeccompFlag `json:"flags,omitempty"`
}

// Architecture is an archMap entry: an architecture and the ones its
// kernel also runs (x86 and x32 on x86_64).
type Architecture struct {
	Arch      specs.Arch   `json:"architecture"`
	SubArches []specs.Arch `json:"subArchitectures"`
}

// Syscall is a rule for a set of system calls.
type Syscall struct {
	Name     string                   `json:"name,omitempty"`
	Names    []string                 `json:"names,omitempty"`
	Action   specs.LinuxSeccompAction `json:"action"`
	ErrnoRet *uint                    `json:"errnoRet,omitempty"`
	Args     []specs.LinuxSeccompArg  `json:"args"`
	Comment  string                   `json:"comment,omitempty"`
	Includes *Filter                  `json:"includes,omitempty"`
	Excludes *Filter                  `json:"excludes,omitempty"`
}

// Filter is the condition of an includes or excludes clause.
type Filter struct {
	Caps      []string `json:"caps,omitempty"`
	Arches    []string `json:"arches,omitempty"`
	MinKernel string   `json:"minKernel,omitempty"`
}

// Default is Docker's default profile.
func Default() *Profile {
	p, err := Parse(defaultProfile)
	if err != nil {
		panic("seccomp: embedded default profile: " + err.Error()) // a build defect
	}
	return p
}

// Parse reads a Docker-format profile.
func Parse(data []byte) (*Profile, error) {
	var p Profile
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("seccomp profile: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if p.DefaultAction == "" {
		return nil, fmt.Errorf("seccomp profile: no defaultAction: %w", errdefs.ErrInvalidArgument)
	}
	if len(p.Architectures) > 0 && len(p.ArchMap) > 0 {
		return nil, fmt.Errorf("seccomp profile: both architectures and archMap are set: %w", errdefs.ErrInvalidArgument)
	}
	for i, s := range p.Syscalls {
		if s.Name != "" && len(s.Names) > 0 {
			return nil, fmt.Errorf("seccomp profile: syscall rule %d has both name and names: %w", i, errdefs.ErrInvalidArgument)
		}
		if s.Action == "" {
			return nil, fmt.Errorf("seccomp profile: syscall rule %d has no action: %w", i, errdefs.ErrInvalidArgument)
		}
	}
	return &p, nil
}

// Target is what a profile is resolved for.
type Target struct {
	// Caps is the container's bounding capability set ("CAP_SYS_ADMIN").
	Caps []string
	// GOARCH is the machine's architecture in Go's names; empty means
	// this process's.
	GOARCH string
	// Kernel is the running kernel's release ("6.1.0-18-amd64"); empty
	// means every minKernel condition holds.
	Kernel string
	// Unsupported lists subarchitectures the running kernel cannot run
	// (x32 on the many x86_64 kernels built or booted without it). They
	// are left out of an archMap profile's filter: no syscall of theirs
	// can reach the kernel's handlers, and each one costs libseccomp
	// several milliseconds to compile at every container start. A
	// profile's explicit "architectures" list is kept as written.
	Unsupported []specs.Arch
}

// nativeArches maps Go's architecture names to libseccomp's.
var nativeArches = map[string]specs.Arch{
	"386":      specs.ArchX86,
	"amd64":    specs.ArchX86_64,
	"arm":      specs.ArchARM,
	"arm64":    specs.ArchAARCH64,
	"loong64":  specs.ArchLOONGARCH64,
	"mips":     specs.ArchMIPS,
	"mipsle":   specs.ArchMIPSEL,
	"mips64":   specs.ArchMIPS64,
	"mips64le": specs.ArchMIPSEL64,
	"ppc64":    specs.ArchPPC64,
	"ppc64le":  specs.ArchPPC64LE,
	"riscv64":  specs.ArchRISCV64,
	"s390x":    specs.ArchS390X,
}

// Spec resolves the profile for one container into the OCI spec's
// filter: only the rules that apply to t, for t's architectures.
func (p *Profile) Spec(t Target) (*specs.LinuxSeccomp, error) {
	goarch := t.GOARCH
	if goarch == "" {
		goarch = runtime.GOARCH
	}
	s := &specs.LinuxSeccomp{
		DefaultAction:    p.DefaultAction,
		DefaultErrnoRet:  p.DefaultErrnoRet,
		ListenerPath:     p.ListenerPath,
		ListenerMetadata: p.ListenerMetadata,
		Flags:            slices.Clone(p.Flags),
		Architectures:    slices.Clone(p.Architectures),
	}
	if len(p.ArchMap) > 0 {
		native, ok := nativeArches[goarch]
		if !ok {
			return nil, fmt.Errorf("seccomp profile: unknown architecture %q: %w", goarch, errdefs.ErrNotImplemented)
		}
		for _, a := range p.ArchMap {
			if a.Arch != native {
				continue
			}
			s.Architectures = append(s.Architectures, a.Arch)
			for _, sub := range a.SubArches {
				if !slices.Contains(t.Unsupported, sub) {
					s.Architectures = append(s.Architectures, sub)
				}
			}
		}
	}
	kernel, err := parseKernel(t.Kernel)
	if err != nil {
		return nil, err
	}
	for _, call := range p.Syscalls {
		ok, err := applies(call, t.Caps, goarch, kernel)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		names := call.Names
		if call.Name != "" {
			names = []string{call.Name}
		}
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{
			Names:    slices.Clone(names),
			Action:   call.Action,
			ErrnoRet: call.ErrnoRet,
			Args:     slices.Clone(call.Args),
		})
	}
	return s, nil
}

// applies says whether a rule's includes all hold and none of its excludes
// does.
func applies(call Syscall, caps []string, goarch string, kernel []int) (bool, error) {
	if in := call.Includes; in != nil {
		if len(in.Arches) > 0 && !slices.Contains(in.Arches, goarch) {
			return false, nil
		}
		for _, c := range in.Caps {
			if !slices.Contains(caps, c) {
				return false, nil
			}
		}
		if in.MinKernel != "" && kernel != nil {
			min, err := parseKernel(in.MinKernel)
			if err != nil {
				return false, err
			}
			if slices.Compare(kernel, min) < 0 {
				return false, nil
			}
		}
	}
	if ex := call.Excludes; ex != nil {
		if slices.Contains(ex.Arches, goarch) {
			return false, nil
		}
		for _, c := range ex.Caps {
			if slices.Contains(caps, c) {
				return false, nil
			}
		}
		if ex.MinKernel != "" {
			return false, fmt.Errorf("seccomp profile: minKernel in excludes is not supported: %w", errdefs.ErrInvalidArgument)
		}
	}
	return true, nil
}

// parseKernel reads "major.minor[.patch][-extra]" as [major, minor]; ""
// gives nil.
func parseKernel(release string) ([]int, error) {
	if release == "" {
		return nil, nil
	}
	v, _, _ := strings.Cut(release, "-")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return nil, fmt.Errorf("seccomp profile: bad kernel version %q: %w", release, errdefs.ErrInvalidArgument)
	}
	out := make([]int, 2)
	for i := range 2 {
		n, err := strconv.Atoi(strings.TrimRightFunc(parts[i], func(r rune) bool { return r < '0' || r > '9' }))
		if err != nil {
			return nil, fmt.Errorf("seccomp profile: bad kernel version %q: %w", release, errdefs.ErrInvalidArgument)
		}
		out[i] = n
	}
	return out, nil
}
