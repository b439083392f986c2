package runtime

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/berthsh/berth/pkg/errdefs"
)

// The boot rule: always containers come back even when stopped by the
// user, unless-stopped ones only when they were not; running, paused,
// restarting and removing containers are left alone.
func TestStartAllSelects(t *testing.T) {
	exited := State{Status: StatusExited, ExitCode: 255}
	userStopped := State{Status: StatusExited, ExitCode: 137, StopRequested: true}
	boot := []string{RestartAlways, RestartUnlessStopped}
	for _, tc := range []struct {
		name     string
		policy   string
		st       State
		policies []string
		want     bool
	}{
		{"always after a crash", RestartAlways, exited, boot, true},
		{"always stopped by the user", RestartAlways, userStopped, boot, true},
		{"unless-stopped after a crash", RestartUnlessStopped, exited, boot, true},
		{"unless-stopped stopped by the user", RestartUnlessStopped, userStopped, boot, false},
		{"unless-stopped stopped by the user, no filter", RestartUnlessStopped, userStopped, nil, false},
		{"unless-stopped never started", RestartUnlessStopped, State{Status: StatusCreated}, boot, true},
		{"no, boot filter", RestartNo, exited, boot, false},
		{"empty policy is no", "", exited, []string{RestartNo}, true},
		{"empty policy, boot filter", "", exited, boot, false},
		{"on-failure, boot filter", RestartOnFailure, exited, boot, false},
		{"on-failure selected", RestartOnFailure, exited, []string{RestartOnFailure}, true},
		{"no filter starts no", RestartNo, userStopped, nil, true},
		{"no filter starts created", RestartNo, State{Status: StatusCreated}, nil, true},
		{"running", RestartAlways, State{Status: StatusRunning, Running: true}, boot, false},
		{"running without status", RestartAlways, State{Running: true}, nil, false},
		{"paused", RestartAlways, State{Status: StatusPaused, Running: true, Paused: true}, boot, false},
		{"restarting", RestartAlways, State{Status: StatusRestarting, Restarting: true}, boot, false},
		{"removing", RestartAlways, State{Status: StatusRemoving}, boot, false},
		{"dead", RestartAlways, State{Status: StatusDead, Dead: true}, boot, false},
	} {
		c := Container{Config: ContainerConfig{RestartPolicy: RestartPolicy{Name: tc.policy}}, State: tc.st}
		if got := startAllSelects(c, tc.policies); got != tc.want {
			t.Errorf("%s: startAllSelects = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestParseStartAllFilters(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []string
		bad  bool
	}{
		{nil, nil, false},
		{[]string{"restart-policy=always", "Restart-Policy=unless-stopped", "restart-policy=always"}, []string{"always", "unless-stopped"}, false},
		{[]string{"restart-policy=no", "restart-policy=on-failure"}, []string{"no", "on-failure"}, false},
		{[]string{"restart-policy=on-failure:3"}, nil, true},
		{[]string{"restart-policy=sometimes"}, nil, true},
		{[]string{"restart-policy="}, nil, true},
		{[]string{"status=exited"}, nil, true},
		{[]string{"restart-policy"}, nil, true},
	} {
		got, err := ParseStartAllFilters(tc.in)
		if tc.bad {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("%q: error %v, want ErrInvalidArgument", tc.in, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got.RestartPolicies, tc.want) {
			t.Errorf("%q: %q, %v; want %q", tc.in, got.RestartPolicies, err, tc.want)
		}
	}
}

// Bad options fail before any container is looked at.
func TestStartAllBadPolicy(t *testing.T) {
	m := &Manager{root: t.TempDir()}
	_, err := m.StartAll(context.Background(), StartAllOptions{RestartPolicies: []string{"sometimes"}})
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("StartAll with policy sometimes: %v, want ErrInvalidArgument", err)
	}
}
