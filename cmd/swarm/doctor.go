package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/agent-swarm/agent-swarm/doctor"
	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/identity"
	"github.com/spf13/cobra"
)

// addDoctorCommand declares `swarm doctor`.
func addDoctorCommand(root *cobra.Command, g *globals, stdout io.Writer, add func(*cobra.Command, *cobra.Command) *cobra.Command) {
	add(root, &cobra.Command{
		Use:   "doctor",
		Short: "Check this node from its own machine: DNS, TCP and UDP, certificate, clock, disk, daemon, Claude Code's MCP entry",
		Long: `Check, from the node's own machine, what peers and Claude Code need of it, one line
per check, with the fix for each that is not ok:

  config   what the node is (behind Angie or standalone) and where it listens
  dns      its name resolves to this host (skipped for addresses and test names)
  tcp      its agent card, naming its key, over HTTPS on TCP (443 through Angie; standalone: its port)
  udp      the same over HTTP/3 on UDP
  cert     the certificate peers see: its names and expiry (self-signed: the node's own)
  clock    this host's clock against a peer's Date header (skipped without one)
  disk     free space above the store's reserve
  daemon   a daemon answers on HOME/swarm.sock (doctor never starts one)
  mcp      Claude Code has the swarm MCP server: .mcp.json here, else claude mcp get swarm

Exit 0 when no check fails (ok, warn and skip), 1 when one does.`,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmdDoctor(cmd.Context(), *g, stdout) },
	})
}

func cmdDoctor(ctx context.Context, g globals, stdout io.Writer) error {
	n, err := doctorNode(g.home)
	if err != nil {
		return err
	}
	env := doctor.DefaultEnv()
	env.Peers = doctor.DaemonPeers(n.Socket)
	rs := doctor.Run(ctx, n, env, func(ctx context.Context) doctor.Result { return mcpCheck(ctx, n.Home) })
	if g.json {
		if err := json.NewEncoder(stdout).Encode(rs); err != nil {
			return err
		}
	} else {
		doctor.Print(stdout, rs)
	}
	if f := doctor.Failed(rs); f > 0 {
		return fmt.Errorf("doctor: %d of %d checks failed", f, len(rs))
	}
	return nil
}

// doctorNode reads what the checks need from the home, without opening
// the store (a daemon may hold it).
func doctorNode(home string) (doctor.Node, error) {
	cfg, err := node.LoadConfig(home)
	if err != nil {
		return doctor.Node{}, err
	}
	abs, err := filepath.Abs(home)
	if err != nil {
		return doctor.Node{}, err
	}
	id, err := identity.Load(filepath.Join(abs, node.KeyFile), cfg.Domain)
	if err != nil {
		return doctor.Node{}, err
	}
	cert := cfg.CertFile
	if cert != "" && !filepath.IsAbs(cert) {
		cert = filepath.Join(abs, cert)
	}
	return doctor.Node{Home: abs, Domain: cfg.Domain, Advertise: cfg.Advertise, Listen: cfg.Listen,
		BehindProxy: cfg.BehindProxy, NoQUIC: cfg.NoQUIC, SelfSigned: cfg.SelfSigned, Key: id.KeyString(),
		CertFile: cert, DataDir: filepath.Join(abs, node.DataDir), Socket: filepath.Join(abs, node.SocketFile)}, nil
}

// mcpCheck: Claude Code started here has the swarm server, for this home:
// the project's .mcp.json (what `swarm claude setup` writes), else what
// `claude mcp get swarm` says (user or local scope).
func mcpCheck(ctx context.Context, home string) doctor.Result {
	setup := "swarm claude setup" + homeFlag(globals{home: home})
	wd, _ := os.Getwd()
	obj, err := readJSONObject(filepath.Join(wd, ".mcp.json"))
	if err != nil {
		return doctor.Result{Check: "mcp", Status: doctor.Fail, Detail: err.Error(), Fix: "repair the file, or remove it and run " + setup}
	}
	if servers, _ := obj["mcpServers"].(map[string]any); servers != nil && servers["swarm"] != nil {
		return mcpHome(wd, home)
	}
	claude, err := exec.LookPath("claude")
	if err != nil {
		return doctor.Result{Check: "mcp", Status: doctor.Fail, Fix: "run " + setup + " in the project directory",
			Detail: fmt.Sprintf("no swarm server in %s, and claude is not on PATH to ask for its user entries", filepath.Join(wd, ".mcp.json"))}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, claude, "mcp", "get", "swarm").CombinedOutput()
	if err != nil {
		return doctor.Result{Check: "mcp", Status: doctor.Fail, Fix: "run " + setup + " (--scope user for every project)",
			Detail: fmt.Sprintf("claude mcp get swarm: no server named swarm here (%s)", oneLine(string(out)))}
	}
	return doctor.Result{Check: "mcp", Status: doctor.OK, Detail: "claude mcp get swarm: " + oneLine(string(out))}
}

// mcpHome: the project's sessions reach this home. .mcp.json names none;
// a home that is not the default comes from settings.local.json's env.
func mcpHome(wd, home string) doctor.Result {
	file := filepath.Join(wd, ".mcp.json")
	local, _ := readJSONObject(filepath.Join(wd, ".claude", "settings.local.json"))
	env, _ := local["env"].(map[string]any)
	got, _ := env["SWARM_HOME"].(string)
	want := home
	if isDefaultHome(home) {
		want = ""
	}
	if got == want || got != "" && sameDir(got, home) {
		return doctor.Result{Check: "mcp", Status: doctor.OK, Detail: file + " has the swarm server, for this home"}
	}
	which := "the default home (~/.swarm)"
	if got != "" {
		which = got
	}
	return doctor.Result{Check: "mcp", Status: doctor.Fail, Fix: "run swarm claude setup" + homeFlag(globals{home: home}) + " here",
		Detail: fmt.Sprintf("%s has the swarm server, but sessions here use %s, not %s", file, which, home)}
}

func sameDir(a, b string) bool {
	x, e1 := filepath.EvalSymlinks(a)
	y, e2 := filepath.EvalSymlinks(b)
	return e1 == nil && e2 == nil && x == y
}
