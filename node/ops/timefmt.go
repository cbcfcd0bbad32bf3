package ops

import "time"

// textTime shows a time of a result (RFC 3339, possibly with fractions of
// a second) the one way the CLI's text shows times: RFC 3339 in UTC, to
// the second. A value that is not a time is shown as it is.
func textTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format(time.RFC3339)
}
