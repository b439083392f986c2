package logs

import (
	"errors"
	"strings"
	"testing"

	"github.com/berthsh/berth/pkg/errdefs"
)

func TestParseOptions(t *testing.T) {
	tests := []struct {
		in      map[string]string
		want    Options
		wantErr string // substring; the option's name
	}{
		{in: nil, want: Options{}},
		{in: map[string]string{"max-size": "10m", "max-file": "3"}, want: Options{MaxSize: 10_000_000, MaxFiles: 3}},
		{in: map[string]string{"max-size": "512k"}, want: Options{MaxSize: 512_000}},
		{in: map[string]string{"max-size": "1g"}, want: Options{MaxSize: 1_000_000_000}},
		{in: map[string]string{"max-size": "2MiB"}, want: Options{MaxSize: 2_000_000}}, // FromHumanSize, as Docker
		{in: map[string]string{"max-size": "100"}, want: Options{MaxSize: 100}},
		{in: map[string]string{"max-size": "-1"}, want: Options{MaxSize: NoRotation}},
		{in: map[string]string{"max-file": "1"}, want: Options{MaxFiles: 1}},
		{in: map[string]string{"compress": "true", "max-file": "2"}, want: Options{MaxFiles: 2, Compress: true}},
		{in: map[string]string{"compress": "false"}, want: Options{}},
		{in: map[string]string{"max-size": "10x"}, wantErr: "max-size"},
		{in: map[string]string{"max-size": "0"}, wantErr: "max-size"},
		{in: map[string]string{"max-size": ""}, wantErr: "max-size"},
		{in: map[string]string{"max-size": "-5m"}, wantErr: "max-size"},
		{in: map[string]string{"max-file": "0"}, wantErr: "max-file"},
		{in: map[string]string{"max-file": "three"}, wantErr: "max-file"},
		{in: map[string]string{"compress": "yes please"}, wantErr: "compress"},
		{in: map[string]string{"compress": "true", "max-file": "1"}, wantErr: "compress"},
		{in: map[string]string{"compress": "true", "max-size": "-1"}, wantErr: "compress"},
		{in: map[string]string{"mode": "non-blocking"}, wantErr: `"mode"`},
	}
	for _, tt := range tests {
		got, err := ParseOptions(tt.in)
		if tt.wantErr != "" {
			if err == nil || !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseOptions(%v) error = %v, want ErrInvalidArgument naming %s", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseOptions(%v): %v", tt.in, err)
			continue
		}
		if got.MaxSize != tt.want.MaxSize || got.MaxFiles != tt.want.MaxFiles || got.Compress != tt.want.Compress {
			t.Errorf("ParseOptions(%v) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}
