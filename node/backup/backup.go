// Package backup moves a node between homes: Export writes its whole
// state to one archive, Import makes a new home from one, and ImportASP
// makes one from the original Python implementation's state
// (docs/cli.md "Export, import and moving a node").
//
// The archive is a gzip'd tar, written 0600 and not encrypted: it holds
// the private key, as key.pem does, and is kept the same way (encrypt it
// with age or gpg to send it anywhere). Its first entry is the manifest
// (format and version), then the home's files, then the store.
package backup

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/identity"
)

// Format names the archive; Version is the layout this code writes and
// the newest it reads.
const (
	Format  = "agent-swarm-export"
	Version = 1

	manifestName = "MANIFEST.json"
	storeName    = "store.badger"
	homePrefix   = "home/"
)

// Manifest is the archive's first entry.
type Manifest struct {
	Format      string   `json:"format"`
	Version     int      `json:"version"`
	Created     string   `json:"created"`
	Domain      string   `json:"domain"`
	Key         string   `json:"key"`
	Fingerprint string   `json:"fingerprint"`
	Files       []string `json:"files"` // relative to the home
	// What the store held when exported, for the import's report.
	Swarms int `json:"swarms"`
	Inbox  int `json:"inbox"`
	Outbox int `json:"outbox"`
}

// Report says what an export or import carried.
type Report struct {
	File        string   `json:"file"`
	Home        string   `json:"home,omitempty"`
	Domain      string   `json:"domain"`
	Fingerprint string   `json:"fingerprint"`
	Swarms      int      `json:"swarms"`
	Inbox       int      `json:"inbox"`
	Outbox      int      `json:"outbox"`
	Size        int64    `json:"size,omitempty"`
	Notes       []string `json:"notes,omitempty"`
}

// Export writes the node's state to file, which must not exist. The store
// part is one consistent snapshot taken while the node runs (a daemon
// keeps delivering); what it delivers after the snapshot the imported
// node sends again, and the peer's seen set drops the copy.
func Export(n *node.Node, file string) (Report, error) {
	if _, err := os.Lstat(file); err == nil {
		return Report{}, node.Userf("export: %s exists; give a new file name", file)
	}
	home := n.Home()
	cfg, err := node.LoadConfig(home)
	if err != nil {
		return Report{}, err
	}
	files, notes := homeFiles(home, cfg)
	st, err := n.Status()
	if err != nil {
		return Report{}, err
	}
	count, err := n.Count("", true)
	if err != nil {
		return Report{}, err
	}
	r := Report{File: file, Domain: st.Domain, Fingerprint: st.Fingerprint, Swarms: st.Swarms, Inbox: count.Total, Outbox: st.Outbox, Notes: notes}
	m := Manifest{Format: Format, Version: Version, Created: time.Now().UTC().Format(time.RFC3339),
		Domain: st.Domain, Key: st.Key, Fingerprint: st.Fingerprint, Files: files, Swarms: r.Swarms, Inbox: r.Inbox, Outbox: r.Outbox}
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp-*")
	if err != nil {
		return Report{}, fmt.Errorf("export: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once linked to its name
	if err := writeArchive(tmp, n, home, m); err != nil {
		tmp.Close()
		return Report{}, fmt.Errorf("export: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return Report{}, fmt.Errorf("export: %w", err)
	}
	// Link, not rename: it fails if the name was taken meanwhile.
	if err := os.Link(tmp.Name(), file); err != nil {
		if errors.Is(err, os.ErrExist) {
			return Report{}, node.Userf("export: %s exists; give a new file name", file)
		}
		return Report{}, fmt.Errorf("export: %w", err)
	}
	if fi, err := os.Stat(file); err == nil {
		r.Size = fi.Size()
	}
	r.Notes = append(r.Notes, "the file holds this node's private key: keep it as secret as key.pem",
		"to move the node, stop it here (`swarm stop`) before starting the imported copy: two nodes with one key confuse its peers")
	return r, nil
}

// homeFiles are the files of a home the archive carries: the config, the
// key, and the certificate when it lives in the home. Notes say what is
// left behind.
func homeFiles(home string, cfg *node.Config) ([]string, []string) {
	files := []string{node.ConfigFile, node.KeyFile}
	var notes []string
	for _, f := range []string{cfg.CertFile, cfg.KeyFile} {
		if f == "" {
			continue
		}
		if filepath.IsAbs(f) || !filepath.IsLocal(f) {
			notes = append(notes, fmt.Sprintf("%s is outside the home and not in the archive: copy it yourself", f))
			continue
		}
		files = append(files, filepath.ToSlash(f))
	}
	// A bearer token is the host's, not the agent's: the new home makes
	// its own, and its clients are given that one.
	if _, err := os.Stat(filepath.Join(home, "mcp.token")); err == nil {
		notes = append(notes, "mcp.token (MCP over HTTP) is not in the archive: the imported node makes a new one for its clients")
	}
	return files, notes
}

func writeArchive(f *os.File, n *node.Node, home string, m Manifest) error {
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := addBytes(tw, manifestName, mb); err != nil {
		return err
	}
	for _, name := range m.Files {
		b, err := os.ReadFile(filepath.Join(home, filepath.FromSlash(name)))
		if err != nil {
			return err
		}
		if err := addBytes(tw, homePrefix+name, b); err != nil {
			return err
		}
	}
	// The store's size is known only once written: spool it to a
	// temporary file (0600, removed) beside the archive.
	spool, err := os.CreateTemp(filepath.Dir(f.Name()), ".swarm-export-store-*")
	if err != nil {
		return err
	}
	defer func() { spool.Close(); os.Remove(spool.Name()) }()
	if err := n.Snapshot(spool); err != nil {
		return err
	}
	size, err := spool.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: storeName, Mode: 0o600, Size: size, ModTime: time.Now()}); err != nil {
		return err
	}
	if _, err := io.Copy(tw, spool); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Sync()
}

func addBytes(tw *tar.Writer, name string, b []byte) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(b)), ModTime: time.Now()}); err != nil {
		return err
	}
	_, err := tw.Write(b)
	return err
}

// checkNewHome refuses a home that holds anything: import never merges
// into or clobbers a node, live or not.
func checkNewHome(home string) error {
	entries, err := os.ReadDir(home)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return node.Userf("import: %s is not empty (it holds %s); import only into a new or empty home", home, entries[0].Name())
	}
	return nil
}

// staging makes the directory a new home is built in, beside home, so a
// rename puts it in place whole; on failure nothing is left.
func staging(home string) (string, error) {
	parent := filepath.Dir(home)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return "", err
	}
	return os.MkdirTemp(parent, "."+filepath.Base(home)+".import-*")
}

// place moves a finished staging directory to home (which is missing or
// an empty directory).
func place(tmp, home string) error {
	if err := os.Remove(home); err != nil && !errors.Is(err, os.ErrNotExist) {
		return node.Userf("import: %s: %v", home, err)
	}
	if err := os.Chmod(tmp, 0o700); err != nil {
		return err
	}
	return os.Rename(tmp, home)
}

// checkKey makes sure the home's key is the one the manifest names.
func checkKey(dir string, m Manifest) error {
	id, err := identity.Load(filepath.Join(dir, node.KeyFile), m.Domain)
	if err != nil {
		return err
	}
	if id.KeyString() != m.Key {
		return errors.New("the archive's key.pem is not the key its manifest names: the archive is damaged")
	}
	return nil
}

// safeName is an archive entry's home file as a local path, or an error.
func safeName(name string) (string, error) {
	rel := strings.TrimPrefix(name, homePrefix)
	if rel == name || !filepath.IsLocal(filepath.FromSlash(rel)) {
		return "", fmt.Errorf("entry %q is outside the home", name)
	}
	return filepath.FromSlash(rel), nil
}
