package events

import (
	"errors"
	"testing"
	"time"

	"github.com/berthsh/berth/pkg/errdefs"
)

func TestFilterMatch(t *testing.T) {
	ctr := func(action string) Event {
		return Event{Type: TypeContainer, Action: action, TimeNano: 2000, Actor: Actor{
			ID:         "3f2a9c0e1b2d4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c",
			Attributes: map[string]string{"name": "web", "image": "mini:1", "app": "shop", "tier": ""},
		}}
	}
	img := Event{Type: TypeImage, Action: "tag", TimeNano: 2000, Actor: Actor{ID: "sha256:abcd", Attributes: map[string]string{"name": "registry:5000/team/app:v2"}}}
	net := Event{Type: TypeNetwork, Action: "connect", TimeNano: 2000, Actor: Actor{ID: "9999aaaa", Attributes: map[string]string{"name": "front", "container": "3f2a"}}}
	tests := []struct {
		name string
		f    Filter
		e    Event
		want bool
	}{
		{"no filter", Filter{}, ctr("start"), true},
		{"type", Filter{Args: map[string][]string{"type": {"container"}}}, ctr("start"), true},
		{"type other", Filter{Args: map[string][]string{"type": {"image"}}}, ctr("start"), false},
		{"type OR", Filter{Args: map[string][]string{"type": {"image", "container"}}}, ctr("start"), true},
		{"event", Filter{Args: map[string][]string{"event": {"die"}}}, ctr("die"), true},
		{"event other", Filter{Args: map[string][]string{"event": {"die"}}}, ctr("start"), false},
		{"event OR", Filter{Args: map[string][]string{"event": {"die", "start"}}}, ctr("start"), true},
		{"health_status prefix", Filter{Args: map[string][]string{"event": {"health_status"}}}, ctr("health_status: healthy"), true},
		{"health_status exact", Filter{Args: map[string][]string{"event": {"health_status: unhealthy"}}}, ctr("health_status: healthy"), false},
		{"event no partial word", Filter{Args: map[string][]string{"event": {"sta"}}}, ctr("start"), false},
		{"container name", Filter{Args: map[string][]string{"container": {"web"}}}, ctr("start"), true},
		{"container /name", Filter{Args: map[string][]string{"container": {"/web"}}}, ctr("start"), true},
		{"container id prefix", Filter{Args: map[string][]string{"container": {"3f2a9c"}}}, ctr("start"), true},
		{"container other", Filter{Args: map[string][]string{"container": {"db"}}}, ctr("start"), false},
		{"container OR", Filter{Args: map[string][]string{"container": {"db", "web"}}}, ctr("start"), true},
		{"container vs image event", Filter{Args: map[string][]string{"container": {"sha256"}}}, img, false},
		{"image of container", Filter{Args: map[string][]string{"image": {"mini:1"}}}, ctr("start"), true},
		{"image repo of container", Filter{Args: map[string][]string{"image": {"mini"}}}, ctr("start"), true},
		{"image other", Filter{Args: map[string][]string{"image": {"maxi"}}}, ctr("start"), false},
		{"image event by name", Filter{Args: map[string][]string{"image": {"registry:5000/team/app:v2"}}}, img, true},
		{"image event by repo", Filter{Args: map[string][]string{"image": {"registry:5000/team/app"}}}, img, true},
		{"image event by registry only", Filter{Args: map[string][]string{"image": {"registry"}}}, img, false},
		{"image event by id", Filter{Args: map[string][]string{"image": {"sha256:abcd"}}}, img, true},
		{"label key", Filter{Args: map[string][]string{"label": {"app"}}}, ctr("start"), true},
		{"label key=value", Filter{Args: map[string][]string{"label": {"app=shop"}}}, ctr("start"), true},
		{"label wrong value", Filter{Args: map[string][]string{"label": {"app=blog"}}}, ctr("start"), false},
		{"label empty value", Filter{Args: map[string][]string{"label": {"tier="}}}, ctr("start"), true},
		{"labels all needed", Filter{Args: map[string][]string{"label": {"app=shop", "missing"}}}, ctr("start"), false},
		{"network", Filter{Args: map[string][]string{"network": {"front"}}}, net, true},
		{"network id", Filter{Args: map[string][]string{"network": {"9999"}}}, net, true},
		{"network vs container event", Filter{Args: map[string][]string{"network": {"web"}}}, ctr("start"), false},
		{"volume vs network event", Filter{Args: map[string][]string{"volume": {"front"}}}, net, false},
		{"keys AND", Filter{Args: map[string][]string{"type": {"container"}, "event": {"die"}}}, ctr("start"), false},
		{"keys AND match", Filter{Args: map[string][]string{"type": {"container"}, "event": {"start"}, "container": {"web"}}}, ctr("start"), true},
		{"since", Filter{Since: time.Unix(0, 2000)}, ctr("start"), true},
		{"since after", Filter{Since: time.Unix(0, 2001)}, ctr("start"), false},
		{"until", Filter{Until: time.Unix(0, 2000)}, ctr("start"), true},
		{"until before", Filter{Until: time.Unix(0, 1999)}, ctr("start"), false},
	}
	for _, tt := range tests {
		if got := tt.f.Match(tt.e); got != tt.want {
			t.Errorf("%s: Match = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestParseFilters(t *testing.T) {
	got, err := ParseFilters([]string{"type=container", "event=die", "event=start", "label=a=b", "event=die"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got["type"]) != 1 || len(got["event"]) != 2 || got["label"][0] != "a=b" {
		t.Errorf("ParseFilters = %v", got)
	}
	for _, bad := range []string{"nokey", "=x", "colour=red", "type=plugin"} {
		if _, err := ParseFilters([]string{bad}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseFilters(%q) = %v, want an invalid-argument error", bad, err)
		}
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 22, 2, 55, 0, 0, time.UTC)
	local := func(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, time.Local)
	}
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2026-11-22T02:00:00Z", time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)},
		{"2026-11-22T02:00:00.123456789Z", time.Date(2026, 11, 22, 2, 0, 0, 123456789, time.UTC)},
		{"2026-11-22T02:00:00.5+02:00", time.Date(2026, 11, 22, 0, 0, 0, 500000000, time.UTC)},
		{"2026-11-22T02:00Z", time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)},
		{"2026-11-22T02:00:00", local(2026, 11, 22, 2, 0, 0, 0)},
		{"2026-11-22T02:00:00.25", local(2026, 11, 22, 2, 0, 0, 250000000)},
		{"2026-11-22T02:00", local(2026, 11, 22, 2, 0, 0, 0)},
		{"2026-11-22", local(2026, 11, 22, 0, 0, 0, 0)},
		{"1700000000", time.Unix(1700000000, 0)},
		{"1700000000.123", time.Unix(1700000000, 123000000)},
		{"1700000000.000000001", time.Unix(1700000000, 1)},
		{"0", time.Unix(0, 0)},
		{"10m", now.Add(-10 * time.Minute)},
		{"1h30m", now.Add(-90 * time.Minute)},
		{"-5m", now.Add(5 * time.Minute)},
	}
	for _, tt := range tests {
		got, err := ParseTime(tt.in, now)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "yesterday", "10 minutes", "2026-13-01", "1700000000.", "17000.1234567890", "12:00"} {
		if _, err := ParseTime(bad, now); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseTime(%q) = %v, want an invalid-argument error", bad, err)
		}
	}
}
