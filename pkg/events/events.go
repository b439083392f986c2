package events

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Event types, as docker names them.
const (
	TypeContainer = "container"
	TypeImage     = "image"
	TypeNetwork   = "network"
	TypeVolume    = "volume"
)

// Actor is the object an event is about: its ID and attributes such as
// "name", "image", "exitCode".
type Actor struct {
	ID         string            `json:"ID"`
	Attributes map[string]string `json:"Attributes,omitempty"`
}

// Event is one entry of the journal, shaped like docker's events.
type Event struct {
	Type     string `json:"Type"`
	Action   string `json:"Action"`
	Actor    Actor  `json:"Actor"`
	Time     int64  `json:"time"`
	TimeNano int64  `json:"timeNano"`
}

// Dir is where the journal lives under a data directory.
func Dir(root string) string { return filepath.Join(root, "events") }

// Emit appends e to the journal under the data directory root, stamping
// it with the current time when e.TimeNano is zero. Callers treat a
// failure as non-fatal (an event lost never fails the operation).
func Emit(root string, e Event) error {
	if e.TimeNano == 0 {
		now := time.Now()
		e.TimeNano = now.UnixNano()
		e.Time = now.Unix()
	}
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("emit %s %s: %w", e.Type, e.Action, err)
	}
	if err := os.MkdirAll(Dir(root), 0o700); err != nil {
		return fmt.Errorf("emit %s %s: %w", e.Type, e.Action, err)
	}
	f, err := os.OpenFile(filepath.Join(Dir(root), "events.jsonl"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("emit %s %s: %w", e.Type, e.Action, err)
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("emit %s %s: %w", e.Type, e.Action, err)
	}
	return nil
}
