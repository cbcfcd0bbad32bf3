package ops

import "encoding/json"

// Helpers for extensions' operations (Register), so their parameters and
// text read as the core's do.

// SwarmParam is the optional swarm parameter the core's operations take.
func SwarmParam() Param { return pSwarm }

// TextOf adapts a typed renderer of a result to Op.Text.
func TextOf[T any](f func(T) string) func(json.RawMessage) (string, error) { return textOf(f) }

// TextTime shows a time of a result the one way the CLI's text shows
// times (RFC 3339 in UTC, to the second); a value that is not a time is
// shown as it is.
func TextTime(s string) string { return textTime(s) }
