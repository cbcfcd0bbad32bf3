package github

import (
	"errors"
	"fmt"

	"github.com/agent-swarm/agent-swarm/node"
)

// GaveUpError is a write the queue stopped trying: Attempts transient
// failures (network, 5xx), or Attempts secondary rate limits (Limited).
type GaveUpError struct {
	Attempts int
	Limited  bool
	Err      error // the last failure
}

func (e *GaveUpError) Error() string {
	if e.Limited {
		return fmt.Sprintf("github: write given up after GitHub's secondary rate limit refused it %d times: %v", e.Attempts, e.Err)
	}
	return fmt.Sprintf("github: write given up after %d failed attempts: %v", e.Attempts, e.Err)
}

func (e *GaveUpError) Unwrap() error { return e.Err }

// Permanent reports whether err is a refusal no retry can change: 401,
// a 403 that is no rate limit (read-only token, archived repository,
// locked issue), 404, 410, 422, or no token at all.
func Permanent(err error) bool {
	var rl *RateLimited
	if err == nil || errors.As(err, &rl) {
		return false
	}
	var ge *GaveUpError
	return !uncertain(err) && !errors.As(err, &ge) && !errors.As(err, new(*Unconfirmed))
}

// UserError gives a GitHub failure the kind of error the faces turn into
// an exit code (docs/cli.md): refused for a token GitHub rejects or that
// may not do this (5), not found (3), a request GitHub cannot take — a
// validation error, issues disabled, no token — invalid (2), and GitHub
// not answering or not taking the write in time unreachable (4). Other
// errors are returned as they are.
func UserError(err error) error {
	var ve *ValidationError
	var ge *GaveUpError
	switch {
	case err == nil:
		return nil
	case node.IsUser(err):
		return err
	case errors.As(err, &ge):
		return node.Unreachablef("%v", err)
	case errors.Is(err, ErrNotFound):
		return node.NotFoundf("%v", err)
	case errors.Is(err, ErrUnauthorized), errors.Is(err, ErrForbidden):
		return node.Refusedf("%v", err)
	case errors.Is(err, ErrGone), errors.Is(err, ErrNoToken), errors.As(err, &ve):
		return node.Userf("%v", err)
	}
	return err
}
