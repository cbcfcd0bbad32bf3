package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// archive builds a gzip'd tar from entries in order (a nil body: a
// symlink).
func archive(t *testing.T, entries ...[2]any) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		name := e[0].(string)
		body, _ := e[1].([]byte)
		h := &tar.Header{Name: name, Mode: 0o600, Size: int64(len(body)), Typeflag: tar.TypeReg}
		if e[1] == nil {
			h = &tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func manifest(version int) []byte {
	b, _ := json.Marshal(Manifest{Format: Format, Version: version, Domain: "a.test"})
	return b
}

// TestImportRefusesBadArchives: a hostile or foreign archive is refused
// before it writes outside the staging directory, and no home is left.
func TestImportRefusesBadArchives(t *testing.T) {
	cases := []struct {
		name    string
		entries [][2]any
		want    string
	}{
		{"no manifest first", [][2]any{{"home/config.json", []byte("{}")}}, "no manifest at its start"},
		{"foreign format", [][2]any{{manifestName, []byte(`{"format":"other","version":1}`)}}, `format "other"`},
		{"newer version", [][2]any{{manifestName, manifest(2)}}, "version 2; this swarm reads up to 1"},
		{"escaping name", [][2]any{{manifestName, manifest(1)}, {"home/../../evil", []byte("x")}}, "outside the home"},
		{"absolute name", [][2]any{{manifestName, manifest(1)}, {"/etc/evil", []byte("x")}}, "outside the home"},
		{"symlink", [][2]any{{manifestName, manifest(1)}, {"home/key.pem", nil}}, "not a regular file"},
		{"no store", [][2]any{{manifestName, manifest(1)}}, "no store"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "x.swarm")
			if err := os.WriteFile(file, archive(t, c.entries...), 0o600); err != nil {
				t.Fatal(err)
			}
			home := filepath.Join(dir, "home")
			_, err := Import(home, file, zerolog.Nop())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
			left, _ := os.ReadDir(dir)
			if len(left) != 1 {
				t.Fatalf("left behind: %v", left)
			}
			if _, err := os.Stat(filepath.Join(dir, "..", "evil")); err == nil {
				t.Fatal("wrote outside the home")
			}
		})
	}
}

// TestYAMLScalar: the original's config.yaml values, plain or quoted as
// yaml.safe_dump writes them; anything cleverer is refused, not guessed.
func TestYAMLScalar(t *testing.T) {
	cases := []struct{ in, want, err string }{
		{"agent-a.example.com", "agent-a.example.com", ""},
		{"https://a.example.com/swarm", "https://a.example.com/swarm", ""},
		{"'it''s'", "it's", ""},
		{`"quoted"`, "quoted", ""},
		{`"esc\n"`, "", "escaped"},
		{"[a, b]", "", "not a plain scalar"},
		{"&anchor x", "", "not a plain scalar"},
	}
	for _, c := range cases {
		got, err := yamlScalar(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}
