package main

import (
	"fmt"
	"io"

	"github.com/agent-swarm/agent-swarm/bench"
	"github.com/spf13/cobra"
)

// addNodeCommands declares the commands that are not operations of the
// table: they make, run or connect the node. Each calls its cmdX with the
// flags it was given.
func addNodeCommands(root *cobra.Command, g *globals, stdin io.Reader, stdout, stderr io.Writer) {
	add := func(parent *cobra.Command, c *cobra.Command) *cobra.Command {
		if parent == root {
			c.GroupID = "node"
		}
		if c.Args == nil {
			c.Args = noArgs
		}
		parent.AddCommand(c)
		return c
	}

	c := add(root, &cobra.Command{
		Use:   "init --domain NAME [--listen HOST:PORT]",
		Short: "Make this agent's node: key, config, and the Angie site or a self-signed certificate",
		Long: `Make this agent's node in --home: an Ed25519 key (0600), the config and the data directory.

Without --listen it is a production node behind Angie: the node serves
HTTP/1.1 on a loopback port, peers reach it at https://NAME, the Angie site
(HTTP/3, ACME certificate) is written and the steps left are printed.
With --listen HOST:PORT it is a standalone node (dev, LAN, tests) serving
HTTP/3 and HTTPS itself with a self-signed certificate pinned in the signed
membership log, unless --cert/--key give one.

Invite tokens carry the advertised address (--advertise, else the --listen
address). An unspecified host (0.0.0.0, ::, ":7443") is never advertised:
give --advertise. A loopback address works on this machine only: init says
so unless NAME is a test name (.test, .localhost, ...). ` + "`swarm config set`" + ` changes
listen and advertise later.`,
		Example: `  swarm init --domain my-agent.example.com                       # production, behind Angie
  swarm init --domain agent-a.test --listen 127.0.0.1:7443         # a local swarm
  swarm init --domain a.example.com --listen :7443 --advertise 203.0.113.7:7443`,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmdInit(*g, flagsOf(cmd), stdout, stderr) },
	})
	fl := c.Flags()
	fl.String("domain", "", "this agent's name, a domain (required)")
	fl.String("listen", "", "standalone node: the UDP+TCP address to bind, HOST:PORT (behind Angie: the loopback port, default a free one in 127.0.0.1:7080-7979)")
	fl.String("advertise", "", "the address peers use (default: the --listen address; behind Angie https://NAME)")
	fl.String("cert", "", "standalone: certificate file (PEM; reloaded when it changes) instead of a self-signed one")
	fl.String("key", "", "standalone: the certificate's key file")
	fl.Bool("no-quic", false, "standalone: serve HTTPS over TCP only (UDP blocked)")
	fl.Bool("angie", false, "production behind Angie (the default without --listen; with --listen, that loopback port)")
	fl.String("acme-email", "", "behind Angie: the ACME account's email")
	fl.String("acme-directory", "", "behind Angie: the ACME directory URL (default Let's Encrypt)")
	fl.String("acme-http-port", "", "behind Angie: the port Angie answers the HTTP-01 challenge on (default 80)")
	fl.String("angie-version", "", "behind Angie: the installed Angie version, MAJOR.MINOR, 1.10 or later (default 1.11 or later)")
	fl.String("resolver", "", "behind Angie: the DNS servers Angie's ACME client uses, IP[:PORT] separated by commas (default: the nameservers of /etc/resolv.conf)")
	fl.String("ca-bundle", "", "behind Angie: the CAs Angie trusts for the ACME server, a PEM file (default: the system's bundle)")

	c = add(root, &cobra.Command{
		Use:   "serve",
		Short: "Run the node daemon: the peer API, the local API on HOME/swarm.sock, background delivery",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmdServe(cmd.Context(), *g, flagsOf(cmd), stderr)
		},
	})
	c.Flags().String("mcp-listen", "", "also serve MCP over streamable HTTP on this address (bearer token in HOME/mcp.token)")
	c.Flags().Bool("mcp-allow-remote", false, "allow --mcp-listen on a non-loopback address")
	c.Flags().String("metrics", "", "also serve Prometheus metrics at http://ADDR/metrics (loopback only, e.g. 127.0.0.1:9464)")
	c.Flags().String("ui", "", "also serve the web page on this loopback address (swarm ui prints it with its token)")

	c = add(root, &cobra.Command{
		Use:   "ui",
		Short: "Print the web page's address with its token (--open opens it); serves the page itself unless `swarm serve --ui` does",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmdUI(cmd.Context(), *g, flagsOf(cmd), stdout, stderr)
		},
	})
	c.Flags().String("listen", "", "serve the page here (loopback; default 127.0.0.1 on a free port)")
	c.Flags().Bool("open", false, "open the page in the desktop's browser")

	add(root, &cobra.Command{
		Use:   "stop",
		Short: "Stop the daemon and wait until it has released the store (the first command that needs the node starts it again)",
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmdStop(cmd.Context(), *g, stdout) },
	})

	add(root, &cobra.Command{
		Use:   "demo",
		Short: "Three nodes on loopback through every operation, then exit",
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmdDemo(cmd.Context(), *g, stdout, stderr) },
	})

	c = add(root, &cobra.Command{
		Use:   "mcp",
		Short: "MCP on stdio: every operation as a swarm_* tool (claude mcp add swarm -- swarm mcp)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmdMCP(cmd.Context(), *g, flagsOf(cmd), stdin, stdout, stderr)
		},
	})
	c.Flags().Bool("channel", false, "push new messages to Claude Code as channel notifications")

	c = add(root, &cobra.Command{
		Use:   "bench",
		Short: "Benchmark the node against raw HTTP/3 on this machine (minutes; --quick is shorter)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmdBench(cmd.Context(), *g, flagsOf(cmd), stdout, stderr)
		},
	})
	fl = c.Flags()
	fl.String("n", "", "round trips to time (1..100000, default 1000)")
	fl.Bool("quick", false, "fewer runs")
	fl.Bool("swarm100", false, "also a swarm of 100 nodes")
	fl.Bool("load", false, "three daemons under a paced load instead: RSS over time, nothing lost or duplicated")
	fl.String("rate", "", "with --load: messages per second (default 1000)")
	fl.String("duration", "", "with --load: how long (default 60s)")

	c = add(root, &cobra.Command{
		Use: bench.PeerCommand, Hidden: true, Short: "The raw HTTP/3 server of swarm bench",
		RunE: func(cmd *cobra.Command, _ []string) error { return cmdBenchPeer(cmd.Context(), flagsOf(cmd), stdout) },
	})
	c.Flags().String("dir", "", "the directory holding cert.pem and key.pem")

	addSetupCommands(root, g, stdin, stdout, stderr, add)
	addDoctorCommand(root, g, stdout, add)
	addImportCommand(root, g, stdout, stderr, add)

	add(root, &cobra.Command{
		Use:   "version",
		Short: "Print the version of swarm and of its protocol",
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(stdout, "swarm "+version())
			return err
		},
	})
}

// addSetupCommands: angie, claude and hook, each a group.
func addSetupCommands(root *cobra.Command, g *globals, stdin io.Reader, stdout, stderr io.Writer, add func(*cobra.Command, *cobra.Command) *cobra.Command) {
	ang := group(root, "angie")
	ang.GroupID = "node"
	c := add(ang, &cobra.Command{
		Use:   "config",
		Short: "Print the Angie site generated from the config (--shared: the part an Angie holds once; --write rewrites both files)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmdAngie(cmd.Context(), *g, "config", flagsOf(cmd), stdout)
		},
	})
	c.Flags().Bool("write", false, "rewrite HOME/angie/DOMAIN.conf and HOME/angie/00-swarm-shared.conf (and make HOME/angie/quic_host_key if missing)")
	c.Flags().Bool("shared", false, "print the shared part instead of the site")
	c = add(ang, &cobra.Command{
		Use:   "check",
		Short: "Check the Angie files in the home with angie -t, in a throwaway prefix (writes nothing, needs no root)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmdAngie(cmd.Context(), *g, "check", flagsOf(cmd), stdout)
		},
	})
	c.Flags().String("angie", "", "the angie binary (default angie on PATH)")

	cl := group(root, "claude")
	cl.GroupID = "node"
	c = add(cl, &cobra.Command{
		Use:   "setup",
		Short: "Set up Claude Code: the MCP server entry, the hooks, a swarm subagent (idempotent, never overwrites)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmdClaudeSetup(cmd.Context(), *g, flagsOf(cmd), stdout)
		},
	})
	c.Flags().String("project", "", "the project directory (default .)")
	c.Flags().String("scope", "", "project (default) or user")
	c.Flags().String("swarm-bin", "", "the command the entries run (default swarm, found on PATH)")
	_ = c.RegisterFlagCompletionFunc("scope", cobra.FixedCompletions([]cobra.Completion{"project", "user"}, cobra.ShellCompDirectiveNoFileComp))

	hk := group(root, "hook")
	hk.GroupID = "node"
	for _, ev := range []struct{ name, short string }{
		{"session-start", "The SessionStart hook: unread messages as additional context, marked read"},
		{"user-prompt-submit", "The UserPromptSubmit hook: messages that arrived since, as additional context"},
	} {
		add(hk, &cobra.Command{
			Use: ev.name, Short: ev.short,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return cmdHook(cmd.Context(), *g, []string{ev.name}, stdin, stdout, stderr)
			},
		})
	}
}
