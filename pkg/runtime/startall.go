package runtime

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/berthsh/berth/internal/filterargs"
	"github.com/berthsh/berth/pkg/errdefs"
)

// restartPolicyNames are the restart policy names, as --restart takes them.
var restartPolicyNames = []string{RestartNo, RestartAlways, RestartOnFailure, RestartUnlessStopped}

// CheckRestartPolicyName fails with errdefs.ErrInvalidArgument unless
// name is a restart policy name (no, always, on-failure, unless-stopped;
// without a retry count).
func CheckRestartPolicyName(name string) error {
	if slices.Contains(restartPolicyNames, name) {
		return nil
	}
	return fmt.Errorf("invalid restart policy %q: want one of %s: %w", name, strings.Join(restartPolicyNames, ", "), errdefs.ErrInvalidArgument)
}

// StartAllOptions select the containers StartAll starts.
type StartAllOptions struct {
	// RestartPolicies, when not empty, limits StartAll to the containers
	// whose restart policy is one of these names (no, always,
	// on-failure, unless-stopped).
	RestartPolicies []string
}

// StartAllFilterKeys are the --filter keys of "start --all".
var StartAllFilterKeys = []string{"restart-policy"}

// ParseStartAllFilters reads docker-style --filter values ("key=value";
// restart-policy=NAME, repeatable: any of them) into StartAllOptions. A
// missing "=", an unknown key or an unknown policy fails with
// errdefs.ErrInvalidArgument naming it.
func ParseStartAllFilters(list []string) (StartAllOptions, error) {
	var o StartAllOptions
	for _, a := range list {
		k, v, err := filterargs.Split(a)
		if err != nil {
			return StartAllOptions{}, err
		}
		if k != "restart-policy" {
			return StartAllOptions{}, fmt.Errorf("invalid filter %q: use one of %s: %w", k, strings.Join(StartAllFilterKeys, ", "), errdefs.ErrInvalidArgument)
		}
		if err := CheckRestartPolicyName(v); err != nil {
			return StartAllOptions{}, fmt.Errorf("invalid filter 'restart-policy=%s': want one of %s: %w", v, strings.Join(restartPolicyNames, ", "), errdefs.ErrInvalidArgument)
		}
		if !slices.Contains(o.RestartPolicies, v) {
			o.RestartPolicies = append(o.RestartPolicies, v)
		}
	}
	return o, nil
}

// StartAllResult is one container StartAll tried to start.
type StartAllResult struct {
	// Container is the container as it was before the start.
	Container Container
	// Err is why it did not start; nil when it runs.
	Err error
}

// StartAll starts every container that does not run (running, paused
// and restarting ones are left alone) and that opts selects, oldest
// first, so that a container joining another's network namespace comes
// after it. As docker's daemon does for its containers when it starts, an
// unless-stopped container that was stopped with stop or kill is not
// started (only starting it by name does); an always container is.
// Stopping the host does not count as a stop: its supervisor records no
// stop request then. This is what runs at boot, in place of a daemon.
//
// Each container's outcome is in the results; the error is for the
// options (errdefs.ErrInvalidArgument) or listing the containers.
// Containers removed meanwhile are skipped.
func (m *Manager) StartAll(ctx context.Context, opts StartAllOptions) ([]StartAllResult, error) {
	for _, p := range opts.RestartPolicies {
		if err := CheckRestartPolicyName(p); err != nil {
			return nil, fmt.Errorf("start all containers: %w", err)
		}
	}
	list, err := m.List(ctx, ListOptions{All: true})
	if err != nil {
		return nil, fmt.Errorf("start all containers: %w", err)
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].Config.Created.Before(list[j].Config.Created) })
	var res []StartAllResult
	for _, c := range list {
		if !startAllSelects(c, opts.RestartPolicies) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		err := m.Start(ctx, c.Config.ID)
		if errors.Is(err, errdefs.ErrNotFound) && !dirExists(c.Dir) {
			continue // removed since the listing
		}
		res = append(res, StartAllResult{Container: c, Err: err})
	}
	return res, nil
}

// dirExists reports whether a container directory is still there (a missing
// command fails a start with errdefs.ErrNotFound too).
func dirExists(dir string) bool {
	_, err := os.Stat(dir)
	return !errors.Is(err, fs.ErrNotExist)
}

// startAllSelects is StartAll's choice: c does not run, is not being
// removed, has one of policies (any when empty) and is not an
// unless-stopped container stopped by the user.
func startAllSelects(c Container, policies []string) bool {
	st := c.State
	if st.active() || st.Status == StatusRemoving || st.Status == StatusDead || st.Dead {
		return false
	}
	p := c.Config.RestartPolicy.Name
	if p == "" {
		p = RestartNo
	}
	if len(policies) > 0 && !slices.Contains(policies, p) {
		return false
	}
	return p != RestartUnlessStopped || !st.StopRequested
}
