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

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/store"
	"github.com/rs/zerolog"
)

// maxHomeFile bounds a home file read from an archive (config, keys,
// certificates are small); the store entry streams.
const maxHomeFile = 1 << 20

// Import makes home, which must be missing or empty, from an archive
// Export wrote. The node keeps its key, swarms, inbox and outbox; started,
// it delivers what was queued. Nothing is left in home unless it all
// worked.
func Import(home, file string, log zerolog.Logger) (Report, error) {
	if err := checkNewHome(home); err != nil {
		return Report{}, err
	}
	f, err := os.Open(file)
	if err != nil {
		return Report{}, node.Userf("import: %v", err)
	}
	defer f.Close()
	tmp, err := staging(home)
	if err != nil {
		return Report{}, fmt.Errorf("import: %w", err)
	}
	defer os.RemoveAll(tmp) // gone once placed
	m, err := unpack(f, tmp, log)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("the archive is cut short (%v)", err)
	}
	if err != nil {
		return Report{}, node.Userf("import: %s: %v", file, err)
	}
	if err := checkNewHome(home); err != nil { // filled meanwhile?
		return Report{}, err
	}
	if err := place(tmp, home); err != nil {
		return Report{}, fmt.Errorf("import: %w", err)
	}
	return Report{File: file, Home: home, Domain: m.Domain, Fingerprint: m.Fingerprint,
		Swarms: m.Swarms, Inbox: m.Inbox, Outbox: m.Outbox}, nil
}

// unpack reads the archive into dir: the manifest first (its format and
// version checked before anything else), the home's files, the store.
func unpack(r io.Reader, dir string, log zerolog.Logger) (Manifest, error) {
	var m Manifest
	zr, err := gzip.NewReader(r)
	if err != nil {
		return m, fmt.Errorf("not a swarm export (%v)", err)
	}
	tr := tar.NewReader(zr)
	h, err := tr.Next()
	if err != nil || h.Name != manifestName {
		return m, errors.New("not a swarm export: no manifest at its start")
	}
	if err := json.NewDecoder(io.LimitReader(tr, maxHomeFile)).Decode(&m); err != nil {
		return m, fmt.Errorf("manifest: %v", err)
	}
	if m.Format != Format {
		return m, fmt.Errorf("not a swarm export (format %q)", m.Format)
	}
	if m.Version < 1 || m.Version > Version {
		return m, fmt.Errorf("export format version %d; this swarm reads up to %d: use a newer swarm", m.Version, Version)
	}
	gotStore := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return m, err
		}
		if h.Typeflag != tar.TypeReg {
			return m, fmt.Errorf("entry %q is not a regular file", h.Name)
		}
		if h.Name == storeName {
			if err := loadStore(filepath.Join(dir, node.DataDir), tr, log); err != nil {
				return m, fmt.Errorf("store: %w", err)
			}
			gotStore = true
			continue
		}
		if err := writeHomeFile(dir, h, tr); err != nil {
			return m, err
		}
	}
	if !gotStore {
		return m, errors.New("the archive has no store: it is cut short")
	}
	for _, name := range m.Files {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(name))); err != nil {
			return m, fmt.Errorf("the archive lacks %s: it is cut short", name)
		}
	}
	return m, checkKey(dir, m)
}

func writeHomeFile(dir string, h *tar.Header, r io.Reader) error {
	rel, err := safeName(h.Name)
	if err != nil {
		return err
	}
	if h.Size > maxHomeFile {
		return fmt.Errorf("entry %q is %d bytes, too big for a home file", h.Name, h.Size)
	}
	path := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := io.ReadAll(io.LimitReader(r, maxHomeFile))
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// loadStore makes a new store in dir and loads the archive's into it.
func loadStore(dir string, r io.Reader, log zerolog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	st, err := store.Open(dir, store.Options{}, log)
	if err != nil {
		return err
	}
	if err := st.Load(r); err != nil {
		st.Close()
		return err
	}
	return st.Close()
}
