package node

import (
	"errors"
	"fmt"
)

// UserError is a mistake the caller can correct (unknown swarm, not the
// master, bad argument). Faces show it as a plain message: a CLI error
// line, an MCP tool error, a 400 from the local API. Anything else is a
// fault of the node.
type UserError struct{ Msg string }

func (e *UserError) Error() string { return e.Msg }

// Userf makes a UserError.
func Userf(format string, a ...any) error { return &UserError{Msg: fmt.Sprintf(format, a...)} }

// IsUser reports whether err is (or wraps) a UserError.
func IsUser(err error) bool {
	var u *UserError
	return errors.As(err, &u)
}

// ErrClosed is returned by calls on a closed node.
var ErrClosed = errors.New("node: closed")
