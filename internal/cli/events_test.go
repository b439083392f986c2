package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/berthsh/berth/pkg/events"
)

func TestEventsBadTimes(t *testing.T) {
	root := t.TempDir()
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"events", "--since", future, "--until", "1m"}, "is after --until"},
		{[]string{"events", "--since", "10m", "--until", "20m"}, "is after --until"},
		{[]string{"events", "--since", "yesterday-ish"}, "--since: invalid time"},
	} {
		code, out, errOut := runBerth(t, root, nil, tc.args...)
		if code != 125 || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 125 and %q", tc.args, code, out, errOut, tc.want)
		}
	}
	// A --since in the future with an --until after it: nothing yet,
	// and it ends at --until.
	soon := time.Now().Add(1500 * time.Millisecond)
	code, out, errOut := runBerth(t, root, nil, "events", "--since", soon.Add(-time.Second).Format(time.RFC3339Nano), "--until", soon.Format(time.RFC3339Nano))
	if code != 0 || out != "" {
		t.Errorf("future --since: exit %d, %q, %q", code, out, errOut)
	}
}

// docker's JSON for a container event carries the legacy status, id and
// from fields and scope "local" besides Type, Action, Actor, time and
// timeNano; network events have no legacy fields.
func TestEventJSON(t *testing.T) {
	e := events.Event{Type: events.TypeContainer, Action: "die", Time: 1700000000, TimeNano: 1700000000123456789,
		Actor: events.Actor{ID: "abc", Attributes: map[string]string{"name": "web", "image": "mini:1", "exitCode": "255"}}}
	var b strings.Builder
	print, err := eventPrinter(&b, "json")
	if err != nil {
		t.Fatal(err)
	}
	if err := print(e); err != nil {
		t.Fatal(err)
	}
	if err := print(events.Event{Type: events.TypeNetwork, Action: "create", Time: 1, TimeNano: 1e9, Actor: events.Actor{ID: "n1"}}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"status": "die", "id": "abc", "from": "mini:1", "Type": "container", "Action": "die",
		"scope": "local", "time": float64(1700000000), "timeNano": float64(1700000000123456789)} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if a, _ := got["Actor"].(map[string]any); a == nil || a["ID"] != "abc" {
		t.Errorf("Actor = %v", got["Actor"])
	}
	if strings.Contains(lines[1], `"status"`) || !strings.Contains(lines[1], `"scope":"local"`) {
		t.Errorf("network event JSON %s", lines[1])
	}
	if got, want := eventLine(e), time.Unix(0, e.TimeNano).Format("2006-01-02T15:04:05.000000000Z07:00")+
		" container die abc (exitCode=255, image=mini:1, name=web)\n"; got != want {
		t.Errorf("line %q, want %q", got, want)
	}
}
