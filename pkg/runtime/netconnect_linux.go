package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/network"
)

// NetworkConnectOptions configure ConnectNetwork.
type NetworkConnectOptions struct {
	// Aliases are extra names of the container on user networks
	// (--alias); berth keeps one list of aliases for all of a container's
	// networks.
	Aliases []string
}

// containersDir is ROOT/containers.
func containersDir(root string) string { return filepath.Join(root, "containers") }

// findContainerDir resolves a container's full ID, name or unique ID
// prefix to its directory and config.
func findContainerDir(root, idOrName string) (string, ContainerConfig, error) {
	notFound := fmt.Errorf("No such container: %s: %w", idOrName, errdefs.ErrNotFound)
	if idOrName == "" || strings.ContainsAny(idOrName, "/\x00") {
		return "", ContainerConfig{}, notFound
	}
	dir := containersDir(root)
	if cfg, err := loadConfig(filepath.Join(dir, idOrName)); err == nil && cfg.ID == idOrName {
		return filepath.Join(dir, idOrName), cfg, nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return "", ContainerConfig{}, notFound
	}
	if err != nil {
		return "", ContainerConfig{}, err
	}
	var prefixed []ContainerConfig
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		cfg, err := loadConfig(filepath.Join(dir, e.Name()))
		if err != nil || cfg.ID != e.Name() {
			continue
		}
		if strings.TrimPrefix(cfg.Name, "/") == strings.TrimPrefix(idOrName, "/") {
			return filepath.Join(dir, cfg.ID), cfg, nil
		}
		if strings.HasPrefix(cfg.ID, idOrName) {
			prefixed = append(prefixed, cfg)
		}
	}
	switch len(prefixed) {
	case 0:
		return "", ContainerConfig{}, notFound
	case 1:
		return filepath.Join(dir, prefixed[0].ID), prefixed[0], nil
	}
	return "", ContainerConfig{}, fmt.Errorf("container ID prefix %s is ambiguous (%d containers): %w", idOrName, len(prefixed), errdefs.ErrInvalidArgument)
}

// ContainerNames maps the ID of every container under root to its name.
func ContainerNames(ctx context.Context, root string) (map[string]string, error) {
	entries, err := os.ReadDir(containersDir(root))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if cfg, err := loadConfig(filepath.Join(containersDir(root), e.Name())); err == nil && cfg.ID == e.Name() {
			out[cfg.ID] = strings.TrimPrefix(cfg.Name, "/")
		}
	}
	return out, nil
}

// effectiveNetworks are the networks a container joins at start.
func effectiveNetworks(cfg ContainerConfig) []string {
	if len(cfg.Networks) > 0 {
		return slices.Clone(cfg.Networks)
	}
	switch {
	case cfg.NetworkMode == netModeHost, cfg.NetworkMode == netModeNone, strings.HasPrefix(cfg.NetworkMode, netModeContainerPrefix):
		return nil
	case cfg.NetworkMode == "":
		return []string{network.DefaultNetwork}
	}
	return []string{cfg.NetworkMode}
}

// running reports whether the container in dir runs now (its supervisor
// is alive and its network namespace exists).
func containerRunning(dir, id string) bool {
	st, err := loadState(dir)
	if err != nil || !(st.Running || st.Paused || st.Restarting) || !supervisorAlive(dir) {
		return false
	}
	_, err = os.Stat(ContainerNetNSPath(id))
	return err == nil
}

// ConnectNetwork connects a container (full ID, name or ID prefix) under
// root to a network: the container's configuration records it, so that it
// joins the network at every start, and a running container is attached
// at once (as an extra interface, without a default route) and known by
// name to the other containers of the network.
func ConnectNetwork(ctx context.Context, root string, nets *network.Manager, idOrName, netName string, opts NetworkConnectOptions) error {
	dir, cfg, err := findContainerDir(root, idOrName)
	if err != nil {
		return err
	}
	if netName == netModeHost || netName == netModeNone {
		return fmt.Errorf("container cannot be connected to the %s network: %w", netName, errdefs.ErrInvalidArgument)
	}
	n, err := nets.Get(ctx, netName)
	if errors.Is(err, errdefs.ErrNotFound) && netName == network.DefaultNetwork {
		n, err = nets.EnsureDefault(ctx)
	}
	if err != nil {
		return err
	}
	lock, err := lockExclusive(ctx, filepath.Join(dir, lockFile))
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if cfg, err = loadConfig(dir); err != nil {
		return err
	}
	switch {
	case cfg.NetworkMode == netModeHost, cfg.NetworkMode == netModeNone, strings.HasPrefix(cfg.NetworkMode, netModeContainerPrefix):
		return fmt.Errorf("container %s uses the %s network mode and cannot be connected to other networks: %w", strings.TrimPrefix(cfg.Name, "/"), cfg.NetworkMode, errdefs.ErrInvalidArgument)
	}
	current := effectiveNetworks(cfg)
	if slices.Contains(current, n.Name) || slices.Contains(current, n.ID) {
		return fmt.Errorf("container %s is already connected to network %s: %w", strings.TrimPrefix(cfg.Name, "/"), n.Name, errdefs.ErrAlreadyExists)
	}
	updated := cfg
	updated.Networks = append(current, n.Name)
	updated.NetworkMode = updated.Networks[0]
	updated.Aliases = slices.Clone(cfg.Aliases)
	for _, a := range opts.Aliases {
		if a != "" && !slices.Contains(updated.Aliases, a) {
			updated.Aliases = append(updated.Aliases, a)
		}
	}
	if containerRunning(dir, cfg.ID) {
		if err := attachRunning(ctx, nets, dir, &updated, n); err != nil {
			return err
		}
	}
	if err := saveConfig(dir, updated); err != nil {
		if containerRunning(dir, cfg.ID) {
			_ = detachRunning(context.WithoutCancel(ctx), nets, dir, cfg.ID, n)
		}
		return err
	}
	return nil
}

// attachRunning attaches a running container to n and updates the hosts
// files of the network's containers (its own included).
func attachRunning(ctx context.Context, nets *network.Manager, dir string, cfg *ContainerConfig, n network.Network) error {
	snap, err := snapshotNetworks(ctx, nets)
	if err != nil {
		return err
	}
	used := map[string]bool{}
	for _, eps := range snap.eps {
		for _, ep := range eps {
			if ep.ContainerID == cfg.ID {
				used[ep.IfName] = true
			}
		}
	}
	ifName := ""
	for i := 0; ifName == ""; i++ {
		if !used["eth"+strconv.Itoa(i)] {
			ifName = "eth" + strconv.Itoa(i)
		}
	}
	ao := network.AttachOptions{IfName: ifName, NoDefaultRoute: len(used) > 0}
	if n.Name != network.DefaultNetwork {
		ao.Aliases = containerAliases(cfg)
	}
	ep, err := nets.Attach(ctx, n.ID, cfg.ID, ContainerNetNSPath(cfg.ID), ao)
	if err != nil {
		return err
	}
	containers := filepath.Dir(dir)
	err = withHostsLock(ctx, containers, func() error {
		snap, err := snapshotNetworks(ctx, nets)
		if err != nil {
			return err
		}
		return snap.refresh(containers, append([]string{cfg.ID}, snap.peerIDs(cfg.ID)...))
	})
	if err == nil {
		// The caller holds the container lock, under which state.json is
		// written.
		err = updateStateEndpoints(dir, func(eps []EndpointState) []EndpointState {
			return append(eps, endpointState(n, ep))
		})
	}
	if err != nil {
		_ = detachRunning(context.WithoutCancel(ctx), nets, dir, cfg.ID, n)
		return err
	}
	return nil
}

// updateStateEndpoints changes the endpoints recorded in the container's
// state.json; the caller holds the container lock.
func updateStateEndpoints(dir string, fn func([]EndpointState) []EndpointState) error {
	st, err := loadState(dir)
	if err != nil {
		return err
	}
	st.Endpoints = fn(st.Endpoints)
	return saveState(dir, st)
}

// detachRunning detaches a running container from n and updates the
// hosts files of the containers it shared n with (its own included).
func detachRunning(ctx context.Context, nets *network.Manager, dir, id string, n network.Network) error {
	var peers []string
	if eps, err := nets.Endpoints(ctx, n.ID); err == nil {
		for _, ep := range eps {
			if ep.ContainerID != id {
				peers = append(peers, ep.ContainerID)
			}
		}
	}
	if err := nets.Detach(ctx, n.ID, id); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	_ = updateStateEndpoints(dir, func(eps []EndpointState) []EndpointState {
		return slices.DeleteFunc(eps, func(e EndpointState) bool { return e.Network == n.Name })
	})
	containers := filepath.Dir(dir)
	return withHostsLock(ctx, containers, func() error {
		snap, err := snapshotNetworks(ctx, nets)
		if err != nil {
			return err
		}
		return snap.refresh(containers, append([]string{id}, peers...))
	})
}

// DisconnectNetwork disconnects a container (full ID, name or ID prefix)
// under root from a network: its configuration stops listing it and a
// running container is detached at once. A container disconnected from
// its last network has only loopback from its next start (network mode
// "none").
func DisconnectNetwork(ctx context.Context, root string, nets *network.Manager, idOrName, netName string) error {
	dir, cfg, err := findContainerDir(root, idOrName)
	if err != nil {
		return err
	}
	lock, err := lockExclusive(ctx, filepath.Join(dir, lockFile))
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if cfg, err = loadConfig(dir); err != nil {
		return err
	}
	if cfg.NetworkMode == netModeHost || netName == netModeHost {
		return fmt.Errorf("container cannot be disconnected from the host network or connected to it: %w", errdefs.ErrInvalidArgument)
	}
	n, nerr := nets.Get(ctx, netName)
	current := effectiveNetworks(cfg)
	i := slices.IndexFunc(current, func(s string) bool {
		return s == netName || (nerr == nil && (s == n.Name || s == n.ID))
	})
	if i < 0 {
		return fmt.Errorf("container %s is not connected to network %s: %w", strings.TrimPrefix(cfg.Name, "/"), netName, errdefs.ErrNotFound)
	}
	updated := cfg
	updated.Networks = slices.Delete(current, i, i+1)
	if len(updated.Networks) == 0 {
		updated.Networks = nil
		updated.NetworkMode = netModeNone
	} else {
		updated.NetworkMode = updated.Networks[0]
	}
	if nerr == nil && containerRunning(dir, cfg.ID) {
		if err := detachRunning(ctx, nets, dir, cfg.ID, n); err != nil {
			return err
		}
	}
	return saveConfig(dir, updated)
}

// NetworkUsers maps each network name that containers under root are
// configured to join (running or not) to their IDs, for network prune.
func NetworkUsers(ctx context.Context, root string) (map[string][]string, error) {
	entries, err := os.ReadDir(containersDir(root))
	if errors.Is(err, os.ErrNotExist) {
		return map[string][]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		cfg, err := loadConfig(filepath.Join(containersDir(root), e.Name()))
		if err != nil || cfg.ID != e.Name() {
			continue
		}
		for _, n := range effectiveNetworks(cfg) {
			out[n] = append(out[n], cfg.ID)
		}
	}
	return out, nil
}
