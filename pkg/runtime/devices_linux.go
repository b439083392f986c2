package runtime

import (
	"fmt"

	"github.com/moby/sys/devices"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// hostDevices lists the host's devices under /dev for a privileged
// container, which sees them all (as with docker run --privileged).
func hostDevices() ([]specs.LinuxDevice, error) {
	list, err := devices.HostDevices()
	if err != nil {
		return nil, fmt.Errorf("list host devices: %w", err)
	}
	out := make([]specs.LinuxDevice, 0, len(list))
	for _, d := range list {
		mode := d.FileMode
		uid, gid := d.Uid, d.Gid
		out = append(out, specs.LinuxDevice{
			Path:     d.Path,
			Type:     string(d.Type),
			Major:    d.Major,
			Minor:    d.Minor,
			FileMode: &mode,
			UID:      &uid,
			GID:      &gid,
		})
	}
	return out, nil
}
