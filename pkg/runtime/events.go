package runtime

import (
	"strconv"

	"github.com/berthsh/berth/pkg/events"
)

// emitEvent records a container event in the journal under root, with
// docker's attributes: the container's labels, its name and image, and
// extra. A lost event never fails the operation, so errors are dropped.
func emitEvent(root string, cfg ContainerConfig, action string, extra map[string]string) {
	attrs := make(map[string]string, len(cfg.Labels)+2+len(extra))
	for k, v := range cfg.Labels {
		attrs[k] = v
	}
	attrs["name"] = cfg.Name
	attrs["image"] = cfg.Image
	for k, v := range extra {
		attrs[k] = v
	}
	_ = events.Emit(root, events.Event{
		Type:   events.TypeContainer,
		Action: action,
		Actor:  events.Actor{ID: cfg.ID, Attributes: attrs},
	})
}

// emit records a container event of this manager's data directory.
func (m *Manager) emit(cfg ContainerConfig, action string, extra map[string]string) {
	emitEvent(m.root, cfg, action, extra)
}

// emitCurrent is emit with the configuration as it is now on disk in
// dir (a rename may have happened since cfg was read), else cfg.
func (m *Manager) emitCurrent(dir string, cfg ContainerConfig, action string, extra map[string]string) {
	if cur, err := loadConfig(dir); err == nil {
		cfg = cur
	}
	m.emit(cfg, action, extra)
}

// emitExit records how a run of the container in dir ended: "oom" when
// the kernel killed it for memory, then "die" with its exit code.
func (m *Manager) emitExit(dir string, cfg ContainerConfig, code int, oomKilled bool) {
	if cur, err := loadConfig(dir); err == nil {
		cfg = cur
	}
	if oomKilled {
		m.emit(cfg, "oom", nil)
	}
	m.emit(cfg, "die", map[string]string{"exitCode": strconv.Itoa(code)})
}
