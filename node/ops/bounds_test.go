package ops

import (
	"strings"
	"testing"
)

// TestValidateBoundsAndPaths: an Int given out of its bounds is refused,
// never bent to a default; left out, it still means the default; a Path
// must be absolute (the CLI makes it so before the daemon sees it).
func TestValidateBoundsAndPaths(t *testing.T) {
	cases := []struct {
		op      string
		raw     map[string]any
		wantErr string
	}{
		{"invite", map[string]any{"uses": 0.0}, `invite: uses "0": outside [1, 1000]`},
		{"invite", map[string]any{"uses": "-1"}, `invite: uses "-1": outside [1, 1000]`},
		{"invite", map[string]any{"uses": 1001.0}, "outside [1, 1000]"},
		{"invite", map[string]any{"uses": 1000.0}, ""},
		{"invite", map[string]any{}, ""},
		{"inbox", map[string]any{"limit": -1.0}, `inbox: limit "-1": outside [1, 1000]`},
		{"inbox", map[string]any{"limit": 0.0}, "outside [1, 1000]"},
		{"inbox", map[string]any{"limit": 1.0}, ""},
		{"inbox", map[string]any{"status": "old"}, "not one of unread, read, archived, all"},
		{"sent", map[string]any{"limit": 0.0}, `sent: limit "0": outside [1, 1000]`},
		{"export", map[string]any{"file": "rel/a.swarm"}, "want an absolute file name"},
		{"export", map[string]any{"file": ""}, "want a file name"},
		{"export", map[string]any{"file": "/tmp/x/../a.swarm"}, ""},
	}
	for _, c := range cases {
		_, err := Find(c.op).Validate(c.raw)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s %v: %v", c.op, c.raw, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s %v: error %v, want %q", c.op, c.raw, err, c.wantErr)
		}
	}
	a, err := Find("export").Validate(map[string]any{"file": "/tmp/x/../a.swarm"})
	if err != nil || a.Str("file") != "/tmp/a.swarm" {
		t.Fatalf("export file %q, %v: want the cleaned /tmp/a.swarm", a.Str("file"), err)
	}
}

// TestExportIsNoModelTool: export writes the private key to a file, so it
// is the user's alone, never an MCP tool; the lists are read-only.
func TestExportIsNoModelTool(t *testing.T) {
	if !Find("export").Local {
		t.Fatal("export is offered to models")
	}
	for _, name := range []string{"inbox_count", "sent", "invite_list", "mute_list"} {
		op := Find(name)
		if !op.ReadOnly || !op.Idempotent || op.Destructive || op.Local {
			t.Errorf("%s: read-only %v idempotent %v destructive %v local %v", name, op.ReadOnly, op.Idempotent, op.Destructive, op.Local)
		}
	}
}
