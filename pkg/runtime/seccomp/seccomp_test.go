package seccomp

import (
	"errors"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthsh/berth/pkg/errdefs"
)

// allowed reports whether name is allowed unconditionally (a rule with no
// argument conditions) and whether any rule names it at all.
func allowed(s *specs.LinuxSeccomp, name string) (unconditional, named bool) {
	for _, r := range s.Syscalls {
		if slices.Contains(r.Names, name) && r.Action == specs.ActAllow {
			named = true
			if len(r.Args) == 0 {
				unconditional = true
			}
		}
	}
	return
}

func TestDefaultProfile(t *testing.T) {
	dockerCaps := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}
	withAdmin := append(slices.Clone(dockerCaps), "CAP_SYS_ADMIN", "CAP_SYS_PTRACE")
	tests := []struct {
		name          string
		target        Target
		syscall       string
		unconditional bool // allowed with no argument conditions
		named         bool // some allow rule names it
	}{
		{"read is allowed", Target{Caps: dockerCaps, GOARCH: "amd64"}, "read", true, true},
		{"mount needs CAP_SYS_ADMIN", Target{Caps: dockerCaps, GOARCH: "amd64"}, "mount", false, false},
		{"mount with CAP_SYS_ADMIN", Target{Caps: withAdmin, GOARCH: "amd64"}, "mount", true, true},
		{"clone is argument-filtered without CAP_SYS_ADMIN", Target{Caps: dockerCaps, GOARCH: "amd64"}, "clone", false, true},
		{"clone is free with CAP_SYS_ADMIN", Target{Caps: withAdmin, GOARCH: "amd64"}, "clone", true, true},
		{"kexec_load is never allowed by default caps", Target{Caps: dockerCaps, GOARCH: "amd64"}, "kexec_load", false, false},
		{"arch_prctl on amd64", Target{Caps: dockerCaps, GOARCH: "amd64"}, "arch_prctl", true, true},
		{"arch_prctl not on arm64", Target{Caps: dockerCaps, GOARCH: "arm64"}, "arch_prctl", false, false},
		{"ptrace on a new kernel", Target{Caps: dockerCaps, GOARCH: "amd64", Kernel: "6.1.0-18-amd64"}, "ptrace", true, true},
		{"ptrace not before 4.8", Target{Caps: dockerCaps, GOARCH: "amd64", Kernel: "4.4.0"}, "ptrace", false, false},
	}
	p := Default()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := p.Spec(tc.target)
			if err != nil {
				t.Fatal(err)
			}
			if s.DefaultAction != specs.ActErrno {
				t.Errorf("default action %q, want SCMP_ACT_ERRNO", s.DefaultAction)
			}
			u, n := allowed(s, tc.syscall)
			if u != tc.unconditional || n != tc.named {
				t.Errorf("%s: unconditional=%v named=%v, want %v %v", tc.syscall, u, n, tc.unconditional, tc.named)
			}
		})
	}
}

func TestArchitectures(t *testing.T) {
	s, err := Default().Spec(Target{GOARCH: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	want := []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}
	if !slices.Equal(s.Architectures, want) {
		t.Errorf("architectures %v, want %v", s.Architectures, want)
	}
	// A kernel without x32 gets no x32 filter; the native architecture
	// is never dropped, nor is an explicit architectures list trimmed.
	s, err = Default().Spec(Target{GOARCH: "amd64", Unsupported: []specs.Arch{specs.ArchX32, specs.ArchX86_64}})
	if err != nil {
		t.Fatal(err)
	}
	want = []specs.Arch{specs.ArchX86_64, specs.ArchX86}
	if !slices.Equal(s.Architectures, want) {
		t.Errorf("without x32: architectures %v, want %v", s.Architectures, want)
	}
	custom, err := Parse([]byte(`{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X32"]}`))
	if err != nil {
		t.Fatal(err)
	}
	s, err = custom.Spec(Target{GOARCH: "amd64", Unsupported: []specs.Arch{specs.ArchX32}})
	if err != nil {
		t.Fatal(err)
	}
	want = []specs.Arch{specs.ArchX86_64, specs.ArchX32}
	if !slices.Equal(s.Architectures, want) {
		t.Errorf("explicit list: architectures %v, want %v", s.Architectures, want)
	}
	if _, err := Default().Spec(Target{GOARCH: "pdp11"}); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("unknown arch: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := map[string]string{
		"not json":         `{`,
		"no default":       `{"syscalls":[]}`,
		"unknown field":    `{"defaultAction":"SCMP_ACT_ALLOW","bogus":1}`,
		"name and names":   `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ERRNO"}]}`,
		"rule no action":   `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["b"]}]}`,
		"arch both styles": `{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],"archMap":[{"architecture":"SCMP_ARCH_X86"}],"syscalls":[]}`,
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(in)); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("Parse(%s) = %v, want ErrInvalidArgument", in, err)
			}
		})
	}
}

func TestCustomProfile(t *testing.T) {
	p, err := Parse([]byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"mkdir","action":"SCMP_ACT_ERRNO"},{"names":["chmod"],"action":"SCMP_ACT_ERRNO","includes":{"caps":["CAP_FOWNER"]}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.Spec(Target{GOARCH: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Syscalls) != 1 || s.Syscalls[0].Names[0] != "mkdir" || s.Syscalls[0].Action != specs.ActErrno {
		t.Errorf("syscalls = %+v, want only mkdir denied", s.Syscalls)
	}
	if len(s.Architectures) != 0 {
		t.Errorf("architectures = %v, want none (the native one)", s.Architectures)
	}
}

func TestParseKernel(t *testing.T) {
	tests := []struct {
		in   string
		want []int
		bad  bool
	}{
		{"", nil, false},
		{"6.18.0", []int{6, 18}, false},
		{"4.8", []int{4, 8}, false},
		{"5.10.0-28-cloud-amd64", []int{5, 10}, false},
		{"6.1rc2", nil, true},
		{"6", nil, true},
		{"x.y", nil, true},
	}
	for _, tc := range tests {
		got, err := parseKernel(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && !slices.Equal(got, tc.want)) {
			t.Errorf("parseKernel(%q) = %v, %v", tc.in, got, err)
		}
	}
}
