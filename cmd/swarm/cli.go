package main

import (
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The CLI is a cobra tree: the commands of the operations table are
// generated from it (opcmd.go), the others are declared here and call
// their cmdX function with the flags they were given. Cobra gives every
// command -h/--help and `swarm help X`, `--` as the end of flags, shell
// completion, and suggestions; docs/cli.md says what the CLI promises.

// flagMap holds the flags a hand-written command was given, by name
// ("true" for a boolean): only those set on the command line.
type flagMap = map[string]string

// flagsOf collects the command's own flags that were set.
func flagsOf(cmd *cobra.Command) flagMap {
	f := flagMap{}
	cmd.LocalNonPersistentFlags().VisitAll(func(fl *pflag.Flag) {
		if fl.Changed && fl.Name != "help" {
			f[fl.Name] = fl.Value.String()
		}
	})
	return f
}

// Command groups of `swarm --help`.
var groups = []*cobra.Group{
	{ID: "swarms", Title: "Swarms and members:"},
	{ID: "messages", Title: "Messages and presence:"},
	{ID: "github", Title: "GitHub tasks:"},
	{ID: "wake", Title: "Waking an idle agent:"},
	{ID: "node", Title: "The node and its setup:"},
}

// groupOf places a command (by its first word) in a group; an operation
// added to the table later and not named here lands in "messages".
var groupOf = map[string]string{
	"status": "swarms", "list": "swarms", "create": "swarms", "invite": "swarms", "join": "swarms",
	"leave": "swarms", "kick": "swarms", "transfer": "swarms", "members": "swarms",
	"task": "github", "github": "github", "wake": "wake", "config": "node", "export": "node",
}

// groupHelp is the one-line description of a command that is only a
// group of others (generated from multi-word CLI paths).
var groupHelp = map[string]string{
	"task":     "The GitHub task board of a swarm's linked repository",
	"github":   "Link a GitHub repository to a swarm; show the GitHub side",
	"wake":     "Wake an idle agent (a headless Claude Code session) on matching messages",
	"presence": "This agent's presence as its peers see it",
	"config":   "Read and change the node's settings (config.json)",
	"angie":    "The Angie site of a production node",
	"claude":   "Claude Code integration",
	"hook":     "Claude Code hooks: unread messages as context",
}

func newRoot(g *globals, stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "swarm",
		Short: "Peer-to-peer messaging for AI coding agents",
		Long: `swarm: peer-to-peer messaging for AI coding agents.

Every agent runs a node; agents form swarms and message each other directly
over HTTP/3. Start with:
  swarm init --domain NAME --listen 127.0.0.1:7443   a local or test node
  swarm init --domain NAME                           a production node behind Angie
  swarm serve                                        the node daemon

Exit codes: 0 ok, 1 fault of the node, 2 mistake of the caller, 3 not found,
4 peer unreachable, 5 refused by a peer, the master or GitHub (docs/cli.md).`,
		Version:           version(),
		SilenceErrors:     true,
		SilenceUsage:      true,
		Args:              cobra.ArbitraryArgs,
		RunE:              groupRun,
		PersistentPreRunE: func(*cobra.Command, []string) error { return g.finish() },
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("swarm {{.Version}}\n")
	root.SetFlagErrorFunc(flagError)
	root.SetHelpCommand(helpCommand())
	root.AddGroup(groups...)
	root.SetHelpCommandGroupID("node")
	root.SetCompletionCommandGroupID("node")
	pf := root.PersistentFlags()
	pf.StringVar(&g.home, "home", "", "the node's home directory (default $SWARM_HOME, else ~/.swarm)")
	pf.BoolVar(&g.json, "json", false, "results as JSON on stdout; errors as JSON on stderr")
	pf.StringVar(&g.logLevel, "log-level", "info", "debug, info, warn or error")
	pf.StringVar(&g.logFile, "log-file", "", "append logs to this file instead of stderr")
	addNodeCommands(root, g, stdin, stdout, stderr)
	addOps(root, g, stdin, stdout, stderr)
	return root
}

// finish fills what the flags left to defaults.
func (g *globals) finish() error {
	if g.home != "" {
		return nil
	}
	h, err := defaultHome()
	g.home = h
	return err
}

// version is the module version the binary was built from ("(devel)"
// for a build inside the repository).
func version() string {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	return v + ", protocol swarm/v1"
}

// groupRun is the run of a command that groups others: alone it shows
// its help; with a word it does not know, it says so (exit 2).
func groupRun(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	return unknownCommand(cmd, args[0])
}

// group returns parent's subcommand name, made as a group if missing.
func group(parent *cobra.Command, name string) *cobra.Command {
	for _, c := range parent.Commands() {
		if c.Name() == name {
			return c
		}
	}
	c := &cobra.Command{Use: name, Short: groupHelp[name], Args: cobra.ArbitraryArgs, RunE: groupRun}
	if c.Short == "" {
		c.Short = "Commands under " + name
	}
	if parent == parent.Root() {
		c.GroupID = groupFor(name)
	}
	parent.AddCommand(c)
	return c
}

func groupFor(word string) string {
	if g, ok := groupOf[word]; ok {
		return g
	}
	return "messages"
}

// noArgs refuses positional arguments as a caller's mistake.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments (got %q): `swarm help %s` shows its flags", pathOf(cmd), args[0], pathOf(cmd))
	}
	return nil
}

// pathOf is the command's path after "swarm".
func pathOf(cmd *cobra.Command) string {
	return strings.TrimPrefix(strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()), " ")
}

func unknownCommand(cmd *cobra.Command, word string) error {
	path := strings.TrimSpace(pathOf(cmd) + " " + word)
	msg := fmt.Sprintf("unknown command %q", path)
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // "sned" -> "send"
	}
	if s := cmd.SuggestionsFor(word); len(s) > 0 {
		for i := range s {
			s[i] = fmt.Sprintf("%q", strings.TrimSpace(pathOf(cmd)+" "+s[i]))
		}
		msg += ": did you mean " + strings.Join(s, " or ") + "?"
	}
	return usagef("%s (`%s` lists the commands)", msg, strings.TrimSpace("swarm help "+pathOf(cmd)))
}

// helpCommand is `swarm help [command]`: the command's own help, and an
// unknown command is an error (cobra's own prints the root's help).
func helpCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			cmd, rest, err := c.Root().Find(args)
			if err != nil || len(rest) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []cobra.Completion
			for _, sub := range cmd.Commands() {
				if sub.IsAvailableCommand() && strings.HasPrefix(sub.Name(), toComplete) {
					out = append(out, cobra.CompletionWithDesc(sub.Name(), sub.Short))
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err != nil {
				return usagef("%v", err)
			}
			if len(rest) > 0 {
				return unknownCommand(cmd, rest[0])
			}
			cmd.InitDefaultHelpFlag()
			cmd.InitDefaultVersionFlag()
			return cmd.Help()
		},
	}
}
