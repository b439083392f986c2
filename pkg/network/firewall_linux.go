package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/berthsh/berth/pkg/errdefs"
)

const (
	// fwLockPath serialises firewall changes of all berth processes on the
	// host (their state directories may differ; the rules are shared).
	fwLockPath = "/run/berth/firewall.lock"
	fwTimeout  = 30 * time.Second
)

// firewall installs berth's packet filtering and NAT. Every method is
// idempotent; removals of things that are not there succeed.
type firewall interface {
	name() string
	// available reports whether the backend's tool is installed.
	available() bool
	// ensureNetwork installs masquerading, isolation and FORWARD accept
	// rules for n.
	ensureNetwork(ctx context.Context, n Network) error
	// removeNetwork removes what ensureNetwork installed, and berth's
	// tables and chains once they are empty.
	removeNetwork(ctx context.Context, n Network) error
	// addPorts publishes ports of the container at ip.
	addPorts(ctx context.Context, ip netip.Addr, ports []PortMapping) error
	// removePorts removes what addPorts installed.
	removePorts(ctx context.Context, ip netip.Addr, ports []PortMapping) error
}

var firewalls = []firewall{nftFirewall{}, iptFirewall{}}

// forceFirewall names the backend to use instead of detecting one (tests).
var forceFirewall string

// chooseFirewall picks the backend that installs rules: nftables when the
// nft command is present and the host's iptables (if any) is nf_tables
// based, else iptables, else nftables.
func chooseFirewall(ctx context.Context) (firewall, error) {
	nftFW, iptFW := firewalls[0], firewalls[1]
	switch forceFirewall {
	case nftFW.name():
		return nftFW, nil
	case iptFW.name():
		return iptFW, nil
	}
	// The choice is made once per boot (it runs iptables -V).
	for _, fw := range firewalls {
		if fw.available() && stampValid(backendStampPath(), "boot="+bootID()+" backend="+fw.name()+"\n") {
			return fw, nil
		}
	}
	var chosen firewall
	switch {
	case nftFW.available() && (!iptFW.available() || iptablesIsNft(ctx)):
		chosen = nftFW
	case iptFW.available():
		chosen = iptFW
	case nftFW.available():
		chosen = nftFW
	}
	if chosen != nil {
		writeStamp(backendStampPath(), "boot="+bootID()+" backend="+chosen.name()+"\n")
		return chosen, nil
	}
	return nil, fmt.Errorf("firewall: neither nft nor iptables is installed (apt-get install nftables): %w", errdefs.ErrNotImplemented)
}

// iptablesIsNft reports whether the iptables command is the nf_tables
// variant.
func iptablesIsNft(ctx context.Context) bool {
	v, err := exec.CommandContext(ctx, "iptables", "-V").Output()
	return err == nil && strings.Contains(string(v), "nf_tables")
}

// fwEnsureNetwork installs n's firewall state with the chosen backend,
// unless its stamp says that was done in this boot (see fwstamp_linux.go).
func fwEnsureNetwork(ctx context.Context, n Network) error {
	stamp, want := networkStampPath(n), networkStamp(n)
	if forceFirewall == "" && stampValid(stamp, want) {
		return nil
	}
	err := fwLocked(ctx, func(ctx context.Context) error {
		if forceFirewall == "" && stampValid(stamp, want) {
			return nil // another process just did it
		}
		fw, err := chooseFirewall(ctx)
		if err != nil {
			return err
		}
		if err := fw.ensureNetwork(ctx, n); err != nil {
			return err
		}
		if forceFirewall == "" {
			writeStamp(stamp, want)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("firewall for network %s: %w", n.Name, err)
	}
	return nil
}

// fwRemoveNetwork removes n's firewall state from every backend that is
// installed (the choice may have changed since it was set up).
func fwRemoveNetwork(ctx context.Context, n Network) error {
	err := fwLocked(ctx, func(ctx context.Context) error {
		removeStamp(networkStampPath(n))
		var errs []error
		for _, fw := range firewalls {
			if fw.available() {
				errs = append(errs, fw.removeNetwork(ctx, n))
			}
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return fmt.Errorf("remove firewall state of network %s: %w", n.Name, err)
	}
	return nil
}

// fwAddPorts publishes ports of the container at ip.
func fwAddPorts(ctx context.Context, ip netip.Addr, ports []PortMapping) error {
	if len(ports) == 0 {
		return nil
	}
	err := fwLocked(ctx, func(ctx context.Context) error {
		fw, err := chooseFirewall(ctx)
		if err != nil {
			return err
		}
		return fw.addPorts(ctx, ip, ports)
	})
	if err != nil {
		return fmt.Errorf("publish ports of %s: %w", ip, err)
	}
	return nil
}

// fwRemovePorts unpublishes ports of the container at ip in every
// installed backend.
func fwRemovePorts(ctx context.Context, ip netip.Addr, ports []PortMapping) error {
	if len(ports) == 0 {
		return nil
	}
	err := fwLocked(ctx, func(ctx context.Context) error {
		var errs []error
		for _, fw := range firewalls {
			if fw.available() {
				errs = append(errs, fw.removePorts(ctx, ip, ports))
			}
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return fmt.Errorf("unpublish ports of %s: %w", ip, err)
	}
	return nil
}

// fwLocked runs fn holding the host-wide firewall lock.
func fwLocked(ctx context.Context, fn func(ctx context.Context) error) error {
	if err := os.MkdirAll(filepath.Dir(fwLockPath), 0o755); err != nil {
		return fmt.Errorf("firewall: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, fwTimeout)
	defer cancel()
	unlock, err := lockFile(ctx, fwLockPath)
	if err != nil {
		return fmt.Errorf("firewall: %w", err)
	}
	defer unlock()
	return fn(ctx)
}
