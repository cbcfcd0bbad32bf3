package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/agent-swarm/agent-swarm/node/ops"
	"github.com/spf13/cobra"
)

// shorthands are the one-letter flags of the common parameters, the same
// letter for the same parameter on every command (docs/cli.md).
var shorthands = map[string]string{"swarm": "s", "to": "t", "priority": "p"}

// addOps makes one command per operation of the table, with group
// commands for the words of multi-word paths (`swarm task`, `swarm wake`).
func addOps(root *cobra.Command, g *globals, stdin io.Reader, stdout, stderr io.Writer) {
	for _, op := range ops.All() {
		words := strings.Fields(op.CLI)
		parent := root
		for _, w := range words[:len(words)-1] {
			parent = group(parent, w)
		}
		// A group made for a longer path (or an operation that is also a
		// group, like `invite` and `invite revoke`) is the same command.
		c := group(parent, words[len(words)-1])
		setupOp(c, op, g, stdin, stdout, stderr)
	}
}

func setupOp(c *cobra.Command, op *ops.Op, g *globals, stdin io.Reader, stdout, stderr io.Writer) {
	c.Use = strings.TrimSpace(c.Name() + " " + positionalUsage(op))
	c.Short = firstSentence(op.Summary)
	c.Long = op.Summary + argumentsHelp(op)
	if c.Parent() == c.Root() {
		c.GroupID = groupFor(c.Name())
	}
	c.Args = cobra.ArbitraryArgs // opArgs maps them, and refuses extras
	c.ValidArgsFunction = completePositional(op)
	c.RunE = func(cmd *cobra.Command, args []string) error {
		raw, err := opArgs(cmd, op, args, stdin)
		if err != nil {
			return err
		}
		return cmdOp(cmd.Context(), *g, op, raw, stdout, stderr)
	}
	for _, p := range op.Params {
		name := flagName(p)
		help := p.Help
		if len(p.Enum) > 0 && !strings.Contains(help, p.Enum[0]) {
			help += " (" + strings.Join(p.Enum, ", ") + ")"
		}
		if p.Required && !p.Positional {
			help += " (required)"
		}
		if p.Kind == ops.Bool {
			c.Flags().BoolP(name, shorthands[p.Name], false, help)
		} else {
			c.Flags().VarP(&textValue{typ: p.Kind}, name, shorthands[p.Name], help)
		}
		if p.Positional {
			// Still accepted as a flag (scripts written before), shown
			// as an argument.
			_ = c.Flags().MarkHidden(name)
		}
		if len(p.Enum) > 0 {
			_ = c.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(p.Enum, cobra.ShellCompDirectiveNoFileComp))
		}
	}
}

func flagName(p ops.Param) string { return strings.ReplaceAll(p.Name, "_", "-") }

// textValue is a flag's text as given: the operation checks it
// (ops.Validate), so a bad value gets the same message on every face.
// Given twice, it is refused rather than the first silently dropped.
type textValue struct {
	s   string
	set bool
	typ string
}

var errTwice = errors.New("given twice")

func (v *textValue) String() string { return v.s }
func (v *textValue) Type() string   { return v.typ }
func (v *textValue) Set(s string) error {
	if v.set {
		return errTwice
	}
	v.s, v.set = s, true
	return nil
}

// opArgs maps the flags that were set and the positional arguments onto
// the operation's raw arguments, as the local API and MCP carry them.
func opArgs(cmd *cobra.Command, op *ops.Op, args []string, stdin io.Reader) (map[string]any, error) {
	raw := map[string]any{}
	var positional []ops.Param
	for _, p := range op.Params {
		if p.Positional {
			positional = append(positional, p)
		}
		fl := cmd.Flags().Lookup(flagName(p))
		if fl == nil || !fl.Changed {
			continue
		}
		if p.Kind == ops.Strings {
			raw[p.Name] = strings.Split(fl.Value.String(), ",")
		} else if p.Kind == ops.Path && fl.Value.String() != "" {
			abs, err := filepath.Abs(fl.Value.String())
			if err != nil {
				return nil, err
			}
			raw[p.Name] = abs
		} else {
			raw[p.Name] = fl.Value.String()
		}
	}
	for i, v := range args {
		if i >= len(positional) {
			return nil, extraArgument(cmd, v)
		}
		p := positional[i]
		if _, dup := raw[p.Name]; dup {
			return nil, usagef("%s: %s given twice", pathOf(cmd), p.Name)
		}
		if p.Kind == ops.Strings {
			raw[p.Name] = args[i:]
			break
		}
		if p.Kind == ops.Path && v != "" {
			// The node may be a daemon started in another directory.
			if abs, err := filepath.Abs(v); err == nil {
				v = abs
			}
		}
		if v == "-" && p.Name == "body" {
			b, err := io.ReadAll(io.LimitReader(stdin, 1<<20))
			if err != nil {
				return nil, err
			}
			v = strings.TrimRight(string(b), "\n")
		}
		raw[p.Name] = v
	}
	return raw, nil
}

func extraArgument(cmd *cobra.Command, v string) error {
	if cmd.HasAvailableSubCommands() {
		if s := cmd.SuggestionsFor(v); len(s) > 0 {
			return unknownCommand(cmd, v)
		}
	}
	return usagef("%s: unexpected argument %q (quote a text that holds spaces; `swarm help %s` shows the arguments)", pathOf(cmd), v, pathOf(cmd))
}

// positionalUsage is the argument part of the usage line: BODY, [STATUS],
// [IDS...].
func positionalUsage(op *ops.Op) string {
	var parts []string
	for _, p := range op.Params {
		if !p.Positional {
			continue
		}
		s := strings.ToUpper(p.Name)
		if p.Kind == ops.Strings {
			s += "..."
		}
		if !p.Required {
			s = "[" + s + "]"
		}
		parts = append(parts, s)
	}
	if hasFlags(op) {
		parts = append(parts, "[flags]")
	}
	return strings.Join(parts, " ")
}

func hasFlags(op *ops.Op) bool {
	for _, p := range op.Params {
		if !p.Positional {
			return true
		}
	}
	return false
}

func argumentsHelp(op *ops.Op) string {
	var b strings.Builder
	for _, p := range op.Params {
		if !p.Positional {
			continue
		}
		help := p.Help
		if len(p.Enum) > 0 && !strings.Contains(help, p.Enum[0]) {
			help += ": " + strings.Join(p.Enum, ", ")
		}
		if p.Name == "body" {
			help += `; "-" reads it from stdin; after "--" a text may start with "-"`
		}
		if p.Required {
			help += " (required)"
		}
		fmt.Fprintf(&b, "\n  %-10s %s", strings.ToUpper(p.Name), help)
	}
	if b.Len() == 0 {
		return ""
	}
	return "\n\nArguments:" + b.String()
}

// firstSentence is the summary's first sentence, for command lists.
func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i > 0 {
		s = s[:i]
	}
	return strings.TrimSuffix(s, ".")
}

// completePositional offers an enumerated argument's values.
func completePositional(op *ops.Op) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		i := 0
		for _, p := range op.Params {
			if !p.Positional {
				continue
			}
			if i == len(args) || p.Kind == ops.Strings {
				var out []cobra.Completion
				for _, e := range p.Enum {
					if strings.HasPrefix(e, toComplete) {
						out = append(out, e)
					}
				}
				return out, cobra.ShellCompDirectiveNoFileComp
			}
			i++
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}
