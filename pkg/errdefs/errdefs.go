// Package errdefs defines the kinds of error berth's packages return.
//
// Packages wrap one of these sentinels with context
// (fmt.Errorf("image %s: %w", name, errdefs.ErrNotFound)) and callers
// classify with errors.Is. The CLI maps each kind to an exit code in one
// place (internal/cli).
package errdefs

import "errors"

var (
	// ErrNotFound: the named thing (image, blob, container, registry
	// repository or tag) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: a thing with that name or digest already exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalidArgument: the caller's input is malformed (a bad reference,
	// flag value, archive or Dockerfile).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrConflict: the operation conflicts with current state (an image in
	// use, a port taken, a name in use).
	ErrConflict = errors.New("conflict")
	// ErrUnauthorized: credentials are missing or were refused.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUnavailable: a remote service (registry) could not be reached.
	ErrUnavailable = errors.New("unavailable")
	// ErrDataCorrupt: content does not match its digest or is otherwise
	// damaged.
	ErrDataCorrupt = errors.New("content corrupt")
	// ErrNotImplemented: the operation is not supported here.
	ErrNotImplemented = errors.New("not implemented")
	// ErrPermission: the operation needs privileges the caller lacks.
	ErrPermission = errors.New("permission denied")
)
