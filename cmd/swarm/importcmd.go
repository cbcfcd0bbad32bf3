package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/agent-swarm/agent-swarm/node/backup"
	"github.com/spf13/cobra"
)

// addImportCommand declares `swarm import`: it makes a home (like init),
// so it is no operation of a node. `swarm export` is one (node/ops).
func addImportCommand(root *cobra.Command, g *globals, stdout, stderr io.Writer, add func(*cobra.Command, *cobra.Command) *cobra.Command) {
	c := add(root, &cobra.Command{
		Use:   "import FILE | --from-asp DIR",
		Short: "Make this home from a `swarm export` archive (or from the original Python implementation's state)",
		Long: `Make --home, which must be missing or empty, from an archive ` + "`swarm export`" + ` wrote:
the node keeps its key, config, certificate, swarms, inbox and outbox, and
delivers what was queued once it runs. Stop the exported node first
(` + "`swarm stop`" + `): two nodes with one key confuse their peers.

With --from-asp DIR it reads the original implementation's config.yaml and
agent.key instead: the agent keeps its Ed25519 key and its name (agent_id,
or --domain); its swarm.db is not carried over (see docs/cli.md).`,
		Example: `  swarm export ~/agent-a.swarm                          # on the old host
  swarm --home ~/.swarm import ~/agent-a.swarm          # on the new one
  swarm import --from-asp ~/.swarm-asp --listen 127.0.0.1:7443`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.MaximumNArgs(1)(cmd, args); err != nil {
				return usagef("import: %v", err) // exit 2, like every caller's mistake
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return cmdImport(*g, flagsOf(cmd), args, stdout) },
	})
	fl := c.Flags()
	fl.String("from-asp", "", "the original implementation's state directory (config.yaml, agent.key)")
	fl.String("domain", "", "with --from-asp: this agent's name (default its agent_id)")
	fl.String("listen", "", "with --from-asp: a standalone node on this HOST:PORT (default: production behind Angie)")
	fl.String("advertise", "", "with --from-asp: the address peers use")
}

func cmdImport(g globals, f flagMap, args []string, stdout io.Writer) error {
	dir, fromASP := f["from-asp"]
	switch {
	case fromASP && len(args) > 0:
		return usagef("import: give an archive or --from-asp DIR, not both")
	case !fromASP && len(args) == 0:
		return usagef("import: give the archive `swarm export` wrote, or --from-asp DIR")
	case fromASP && dir == "":
		return usagef("import: --from-asp needs the directory holding config.yaml and agent.key")
	}
	for _, k := range []string{"domain", "listen", "advertise"} {
		if _, ok := f[k]; ok && !fromASP {
			return usagef("import: --%s goes with --from-asp (an archive keeps its node's settings)", k)
		}
	}
	var r backup.Report
	var err error
	if fromASP {
		r, err = backup.ImportASP(g.home, dir, backup.ASPOptions{Domain: f["domain"], Listen: f["listen"], Advertise: f["advertise"]})
	} else {
		log, closeLog, lerr := g.logger(io.Discard)
		if lerr != nil {
			return lerr
		}
		defer closeLog()
		r, err = backup.Import(g.home, args[0], log)
	}
	if err != nil {
		return err
	}
	if g.json {
		return json.NewEncoder(stdout).Encode(r)
	}
	if fromASP {
		fmt.Fprintf(stdout, "imported %s (key %s) into %s from the original's state in %s\n", r.Domain, r.Fingerprint, r.Home, dir)
	} else {
		fmt.Fprintf(stdout, "imported %s (key %s) into %s: %d swarm(s), %d inbox message(s), %d queued deliveries\n",
			r.Domain, r.Fingerprint, r.Home, r.Swarms, r.Inbox, r.Outbox)
	}
	for _, n := range r.Notes {
		fmt.Fprintln(stdout, "note: "+n)
	}
	fmt.Fprintf(stdout, "next: swarm serve --home %s\n", r.Home)
	return nil
}
