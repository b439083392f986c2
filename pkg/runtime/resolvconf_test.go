package runtime

import (
	"errors"
	"testing"

	"github.com/berthsh/berth/pkg/errdefs"
)

func TestContainerResolvConf(t *testing.T) {
	for _, tc := range []struct {
		name, host, resolved string
		dns                  []string
		want                 string
	}{
		{
			name: "plain host",
			host: "# comment\nsearch example.com\nnameserver 10.0.0.1\nnameserver 10.0.0.2\noptions ndots:2\n",
			want: "search example.com\noptions ndots:2\nnameserver 10.0.0.1\nnameserver 10.0.0.2\n",
		},
		{
			name:     "systemd-resolved stub uses the upstream file",
			host:     "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n",
			resolved: "nameserver 192.168.1.1\nnameserver fe80::1\n",
			want:     "options edns0 trust-ad\nsearch lan\nnameserver 192.168.1.1\n",
		},
		{
			name: "only loopback and IPv6 falls back to Google",
			host: "nameserver 127.0.0.1\nnameserver ::1\nnameserver 2001:db8::1\n",
			want: "nameserver 8.8.8.8\nnameserver 8.8.4.4\n",
		},
		{
			name: "empty host",
			want: "nameserver 8.8.8.8\nnameserver 8.8.4.4\n",
		},
		{
			name: "--dns overrides",
			host: "search corp\nnameserver 10.0.0.1\n",
			dns:  []string{"1.1.1.1"},
			want: "search corp\nnameserver 1.1.1.1\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(containerResolvConf(tc.host, tc.resolved, tc.dns)); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestParseDNS(t *testing.T) {
	got, err := parseDNS([]string{"1.1.1.1", " 2001:db8::1 "})
	if err != nil || len(got) != 2 || got[1] != "2001:db8::1" {
		t.Fatalf("got %v, %v", got, err)
	}
	if _, err := parseDNS([]string{"dns.google"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("err = %v", err)
	}
}
