package network

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/berthsh/berth/internal/atomicfile"
)

// Firewall stamps let a container start skip re-installing rules that
// are in place. Checking them would take several nft and iptables runs
// (tens of milliseconds each); instead, after installing a network's rules
// berth writes a stamp under /run/berth/firewall (a tmpfs: gone after a
// reboot, when the rules are gone too) naming the boot, berth's rule
// version and the network. Removing the network removes its stamp. If
// another tool flushes the ruleset, "berth network prune"/"rm" or a
// reboot clears the stamps, and deleting /run/berth/firewall makes berth
// reinstall its rules at the next start.
var fwStampDir = "/run/berth/firewall"

// bootID identifies this boot of the machine.
var bootID = sync.OnceValue(func() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
})

// networkStamp is what the stamp of n holds once its rules are installed.
func networkStamp(n Network) string {
	return fmt.Sprintf("boot=%s rules=%s id=%s bridge=%s subnet=%s internal=%t\n", bootID(), nftVersion, n.ID, n.Bridge, n.Subnet, n.Internal)
}

func networkStampPath(n Network) string {
	return filepath.Join(fwStampDir, "network-"+n.Bridge)
}

// stampValid reports whether the stamp at path holds want (and the boot is
// known, so that a stale stamp is never trusted).
func stampValid(path, want string) bool {
	if bootID() == "" {
		return false
	}
	b, err := os.ReadFile(path)
	return err == nil && string(b) == want
}

// writeStamp records want at path; failing to is harmless (the rules are
// checked again next time).
func writeStamp(path, want string) {
	if bootID() == "" {
		return
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return
	}
	_ = atomicfile.WriteFile(path, []byte(want), 0o644)
}

func removeStamp(path string) { _ = os.Remove(path) }

// backendStampPath records the firewall backend chosen in this boot.
func backendStampPath() string { return filepath.Join(fwStampDir, "backend") }

// clearStamps forgets every table and network stamp (their rules are
// being removed), keeping the backend choice.
func clearStamps() {
	entries, _ := os.ReadDir(fwStampDir)
	for _, e := range entries {
		if e.Name() != filepath.Base(backendStampPath()) {
			_ = os.Remove(filepath.Join(fwStampDir, e.Name()))
		}
	}
}
