//go:build !linux

package network

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/berthsh/berth/pkg/errdefs"
)

var errNotLinux = fmt.Errorf("container networking needs Linux: %w", errdefs.ErrNotImplemented)

// Attach is only implemented on Linux.
func (m *Manager) Attach(ctx context.Context, network, containerID, netnsPath string, opts AttachOptions) (Endpoint, error) {
	return Endpoint{}, errNotLinux
}

// Detach is only implemented on Linux.
func (m *Manager) Detach(ctx context.Context, network, containerID string) error {
	return errNotLinux
}

// DetachAll is only implemented on Linux.
func (m *Manager) DetachAll(ctx context.Context, containerID string) error {
	return errNotLinux
}

// DetachAllKeepLinks is only implemented on Linux.
func (m *Manager) DetachAllKeepLinks(ctx context.Context, containerID string) ([]string, error) {
	return nil, errNotLinux
}

// DeleteLinks is only implemented on Linux.
func DeleteLinks(names []string) error { return errNotLinux }

// NewNetNS is only implemented on Linux.
func NewNetNS(ctx context.Context, name string) (string, error) { return "", errNotLinux }

// RemoveNetNS is only implemented on Linux.
func RemoveNetNS(path string) error { return errNotLinux }

func teardownNetwork(ctx context.Context, n Network) error { return nil }

func hostRoutes() ([]netip.Prefix, error) { return nil, nil }
