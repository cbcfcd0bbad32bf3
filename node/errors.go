package node

import (
	"errors"
	"fmt"
)

// UserError is an error that is not a fault of this node: a mistake the
// caller can correct (unknown swarm, not the master, bad argument), or a
// peer that could not be reached or refused. Faces show it as a plain
// message: a CLI error line, an MCP tool error, a 400 from the local API.
// Anything else is a fault of the node. Kind says which it is, so the CLI
// can give each its own exit code (docs/cli.md).
type UserError struct {
	Msg  string
	Kind Kind
}

func (e *UserError) Error() string { return e.Msg }

// Kind is the class of a UserError, as the local API carries it and the
// CLI prints it under --json ("code").
type Kind string

// Kinds of UserError. The zero Kind is Invalid.
const (
	Invalid     Kind = "invalid"     // a mistake in what the caller asked
	NotFound    Kind = "not_found"   // the swarm, message, member, invite or node named does not exist
	Unreachable Kind = "unreachable" // a peer or the master did not answer
	Refused     Kind = "refused"     // a peer, the master or GitHub refused (authentication, authorisation)
)

// Userf makes a UserError of kind Invalid.
func Userf(format string, a ...any) error { return &UserError{Msg: fmt.Sprintf(format, a...)} }

// NotFoundf makes a UserError for something named that does not exist.
func NotFoundf(format string, a ...any) error {
	return &UserError{Msg: fmt.Sprintf(format, a...), Kind: NotFound}
}

// Unreachablef makes a UserError for a peer that could not be reached.
func Unreachablef(format string, a ...any) error {
	return &UserError{Msg: fmt.Sprintf(format, a...), Kind: Unreachable}
}

// Refusedf makes a UserError for a peer (or GitHub) that refused.
func Refusedf(format string, a ...any) error {
	return &UserError{Msg: fmt.Sprintf(format, a...), Kind: Refused}
}

// IsUser reports whether err is (or wraps) a UserError.
func IsUser(err error) bool {
	var u *UserError
	return errors.As(err, &u)
}

// KindOf is the Kind of a UserError in err (Invalid when it has none), or
// "" when err is a fault of the node.
func KindOf(err error) Kind {
	var u *UserError
	if !errors.As(err, &u) {
		return ""
	}
	switch u.Kind {
	case NotFound, Unreachable, Refused:
		return u.Kind
	}
	return Invalid
}

// ErrClosed is returned by calls on a closed node.
var ErrClosed = errors.New("node: closed")
