package backup

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/identity"
	"github.com/agent-swarm/agent-swarm/node/wire"
)

// The original Python implementation (finml-sage/agent-swarm-protocol)
// keeps an agent in ~/.swarm: config.yaml (agent_id, endpoint, written
// by yaml.safe_dump), agent.key (the Ed25519 private key as its 32 raw
// seed bytes, 0600) and swarm.db (SQLite: swarms, members, inbox,
// outbox, mutes, public keys).

// ASPOptions are the choices an import from the original leaves to the
// user: the new node's name (default its agent_id) and addresses, as
// `swarm init` takes them.
type ASPOptions struct {
	Domain    string
	Listen    string // "" makes a production node behind Angie
	Advertise string
}

// aspConfig is the original's config.yaml.
type aspConfig struct {
	AgentID  string
	Endpoint string
}

// ImportASP makes home, which must be missing or empty, from the
// original's state in dir. The agent keeps its key (both are Ed25519,
// so peers that knew the key know the agent) and its name; nothing of
// swarm.db carries over (Report.Notes says why).
func ImportASP(home, dir string, o ASPOptions) (Report, error) {
	if err := checkNewHome(home); err != nil {
		return Report{}, err
	}
	cfg, err := readASPConfig(filepath.Join(dir, "config.yaml"))
	if err != nil {
		return Report{}, node.Userf("import --from-asp: %v", err)
	}
	key, err := readASPKey(filepath.Join(dir, "agent.key"))
	if err != nil {
		return Report{}, node.Userf("import --from-asp: %v", err)
	}
	if o.Domain == "" {
		o.Domain = cfg.AgentID
	}
	if err := wire.ValidDomain(o.Domain); err != nil {
		return Report{}, node.Userf("import --from-asp: the agent_id %q is not a domain name this node can go by (%v): give --domain", o.Domain, err)
	}
	tmp, err := staging(home)
	if err != nil {
		return Report{}, err
	}
	defer os.RemoveAll(tmp)
	opts := node.InitOptions{Domain: o.Domain, Listen: o.Listen, Advertise: o.Advertise}
	if o.Listen == "" {
		opts.Angie = &node.AngieSettings{}
	}
	if _, err := node.Init(tmp, opts); err != nil {
		return Report{}, err
	}
	// Init made a key of its own: the agent's replaces it before the
	// home is in place.
	kp := filepath.Join(tmp, node.KeyFile)
	if err := os.Remove(kp); err != nil {
		return Report{}, err
	}
	id := &identity.Identity{Domain: o.Domain, Key: key}
	if err := id.Save(kp); err != nil {
		return Report{}, err
	}
	if err := checkNewHome(home); err != nil {
		return Report{}, err
	}
	if err := place(tmp, home); err != nil {
		return Report{}, err
	}
	r := Report{File: dir, Home: home, Domain: o.Domain, Fingerprint: identity.Fingerprint(id.Public())}
	r.Notes = aspNotes(cfg, o, dir)
	return r, nil
}

func aspNotes(cfg aspConfig, o ASPOptions, dir string) []string {
	notes := []string{
		fmt.Sprintf("carried over: the Ed25519 key of %s (the same key, so the same agent) and its name %s", cfg.AgentID, o.Domain),
		fmt.Sprintf("its endpoint %s is not used: this node is reached at its own address (init's --listen/--advertise, or https://%s behind Angie)", cfg.Endpoint, o.Domain),
	}
	if _, err := os.Stat(filepath.Join(dir, "swarm.db")); err == nil {
		notes = append(notes, "swarm.db is not carried over: its swarms are unsigned tables of another protocol whose peers cannot talk to this node, "+
			"so rejoin each swarm with an invite from a master running this node; its inbox, outbox, mutes and known keys belong to those swarms "+
			"(the original's `swarm export` keeps a readable copy)")
	}
	if o.Listen == "" {
		notes = append(notes, "this is a production node behind Angie: `swarm angie config --write` writes its site")
	}
	return notes
}

// readASPConfig reads the two keys of the original's config.yaml. It is
// the flat mapping yaml.safe_dump writes; anything else is refused
// rather than guessed at.
func readASPConfig(path string) (aspConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return aspConfig{}, err
	}
	var c aspConfig
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") || t == "---" {
			continue
		}
		k, v, ok := strings.Cut(t, ":")
		if !ok {
			return c, fmt.Errorf("%s:%d: want key: value", path, line)
		}
		v, err := yamlScalar(strings.TrimSpace(v))
		if err != nil {
			return c, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		switch strings.TrimSpace(k) {
		case "agent_id":
			c.AgentID = v
		case "endpoint":
			c.Endpoint = v
		}
	}
	if c.AgentID == "" {
		return c, fmt.Errorf("%s has no agent_id", path)
	}
	return c, sc.Err()
}

// yamlScalar unquotes a plain or quoted one-line YAML scalar.
func yamlScalar(v string) (string, error) {
	switch {
	case len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'':
		return strings.ReplaceAll(v[1:len(v)-1], "''", "'"), nil
	case len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"':
		if strings.Contains(v, `\`) {
			return "", errors.New("escaped double-quoted value: not written by the original")
		}
		return v[1 : len(v)-1], nil
	case strings.ContainsAny(v, "'\"[]{}&*!|>%@`"):
		return "", fmt.Errorf("value %q is not a plain scalar", v)
	}
	return v, nil
}

// readASPKey reads the original's agent.key: the 32-byte Ed25519 seed
// (cryptography's Raw private format).
func readASPKey(path string) (ed25519.PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key file %s has mode %o: it must be readable by its owner only (chmod 600)", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) != ed25519.SeedSize {
		return nil, fmt.Errorf("%s holds %d bytes; the original's key is the %d raw bytes of an Ed25519 seed", path, len(b), ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(b), nil
}
