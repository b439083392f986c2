package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/berthsh/berth/pkg/errdefs"
)

func TestReportError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err      error
		code     int
		wantText string
	}{
		{fmt.Errorf("no such image: x: %w", errdefs.ErrNotFound), 1, "Error: no such image: x\n"},
		{fmt.Errorf("invalid reference %q: %w", "A B", errdefs.ErrInvalidArgument), 125, "Error: invalid reference \"A B\"\n"},
		{usageErrorf("bad flag"), 125, "Error: bad flag\n"},
		{fmt.Errorf("pull x: %w", errdefs.ErrUnauthorized), 1, "Error: pull x\nHint: check the credentials for this registry with 'berth login REGISTRY'\n"},
		{fmt.Errorf("pull: %w", context.Canceled), 130, "Error: interrupted\n"},
		{exitCodeError{code: 3}, 3, ""},
		{errors.New("plain"), 1, "Error: plain\n"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		if code := reportError(&b, tt.err); code != tt.code {
			t.Errorf("%v: exit %d, want %d", tt.err, code, tt.code)
		}
		if b.String() != tt.wantText {
			t.Errorf("%v: printed %q, want %q", tt.err, b.String(), tt.wantText)
		}
	}
}
