package ops

import "testing"

func TestTextTime(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"2026-03-01T10:20:30.123456789Z", "2026-03-01T10:20:30Z"},
		{"2026-03-01T10:20:30Z", "2026-03-01T10:20:30Z"},
		{"2026-03-01T12:20:30.5+02:00", "2026-03-01T10:20:30Z"},
		{"", ""},
		{"not a time", "not a time"},
	} {
		if got := textTime(c.in); got != c.want {
			t.Errorf("textTime(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
