package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/berthsh/berth/pkg/errdefs"
)

// Exit codes follow the Docker CLI so scripts written for docker keep
// working: 1 for a failed operation, 125 for a command that could not run
// as given (bad flags or arguments). Commands that run a container return
// the container's own code through exitCodeError.
const (
	exitFailure = 1
	exitUsage   = 125
)

// usageError marks an error in how berth was called.
type usageError struct {
	err error
	cmd string
}

func (e usageError) Error() string {
	if e.cmd != "" {
		return fmt.Sprintf("%v\nSee '%s --help'.", e.err, e.cmd)
	}
	return e.err.Error()
}

func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return usageError{err: fmt.Errorf(format, args...)}
}

// exitCodeError carries an exit code decided elsewhere (a container's own
// exit status) with an optional message.
type exitCodeError struct {
	code int
	msg  string
}

func (e exitCodeError) Error() string { return e.msg }

// hint returns one line telling the user what to do about err, or "".
func hint(err error) string {
	switch {
	case errors.Is(err, errdefs.ErrUnauthorized):
		return "check the credentials for this registry with 'berth login REGISTRY'"
	case errors.Is(err, errdefs.ErrUnavailable):
		return "check the registry address and that it is running (a plain-HTTP registry not on loopback also needs --insecure)"
	case errors.Is(err, errdefs.ErrPermission):
		return "run berth as root, or point --root at a directory you own"
	case errors.Is(err, errdefs.ErrDataCorrupt):
		return "the content was rejected and nothing was stored; retry, and run 'berth image verify' if it persists"
	}
	return ""
}

// kinds are the errdefs sentinels whose text message() drops.
var kinds = []error{
	errdefs.ErrNotFound, errdefs.ErrAlreadyExists, errdefs.ErrInvalidArgument,
	errdefs.ErrConflict, errdefs.ErrUnauthorized, errdefs.ErrUnavailable,
	errdefs.ErrDataCorrupt, errdefs.ErrNotImplemented, errdefs.ErrPermission,
}

// message is err's text without the trailing name of its kind: packages
// wrap a sentinel last ("no such image: x: not found") so errors.Is works,
// but the user needs only the sentence before it.
func message(err error) string {
	msg := err.Error()
	for _, k := range kinds {
		if errors.Is(err, k) {
			msg = strings.TrimSuffix(msg, ": "+k.Error())
		}
	}
	return msg
}

// reportError prints err (and a hint) to w and returns the exit code for it.
// It is the one place that maps error kinds to exit codes.
func reportError(w io.Writer, err error) int {
	var re runError
	if errors.As(err, &re) {
		fmt.Fprintln(w, "Error:", message(err))
		if h := hint(err); h != "" {
			fmt.Fprintln(w, "Hint:", h)
		}
		return re.code
	}
	var ec exitCodeError
	if errors.As(err, &ec) {
		if ec.msg != "" {
			fmt.Fprintln(w, "Error:", ec.msg)
		}
		return ec.code
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(w, "Error: interrupted")
		return 130
	}
	fmt.Fprintln(w, "Error:", message(err))
	if h := hint(err); h != "" {
		fmt.Fprintln(w, "Hint:", h)
	}
	var ue usageError
	if errors.As(err, &ue) || errors.Is(err, errdefs.ErrInvalidArgument) {
		return exitUsage
	}
	return exitFailure
}
