package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// exitCode is one row of the exit code table. docs/cli.md and the README
// show this table; TestExitCodesDocumented keeps them the same.
type exitCode struct {
	Code  int
	Name  string // the "code" of a JSON error
	Means string
}

var exitCodes = []exitCode{
	{0, "ok", "success"},
	{1, "fault", "a fault of the node (disk, store, an unexpected reply); the message says what"},
	{2, "invalid", "a mistake of the caller: unknown command or flag, a bad value, something the node refuses to do (not the master, already a member)"},
	{3, "not_found", "what the command names does not exist: swarm, message, member, invite, or no node in --home"},
	{4, "unreachable", "a peer or the swarm's master did not answer"},
	{5, "refused", "a peer, the master or GitHub refused this node (authentication or authorisation)"},
}

// classify finds err's row of the table.
func classify(err error) exitCode {
	name := "fault"
	switch k := node.KindOf(err); {
	case errors.Is(err, errUsage):
		name = "invalid"
	case k != "":
		name = string(k)
	}
	for _, c := range exitCodes {
		if c.Name == name {
			return c
		}
	}
	return exitCodes[1]
}

// fail prints the error as one line on stderr ("swarm: ..."), or under
// --json as one JSON object with its code, and returns the exit code.
func fail(stderr io.Writer, err error, asJSON bool) int {
	c := classify(err)
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	if asJSON {
		_ = json.NewEncoder(stderr).Encode(map[string]any{"error": msg, "code": c.Name, "exit": c.Code})
	} else {
		fmt.Fprintln(stderr, "swarm: "+msg)
	}
	return c.Code
}

// jsonAsked: --json is on the command line (before "--"), for the errors
// that come before the flags are parsed.
func jsonAsked(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "--json", "--json=true", "--json=1":
			return true
		}
	}
	return false
}

// flagError turns pflag's errors into the CLI's own: prefixed with the
// command, with a suggestion for a mistyped flag, and exit 2.
func flagError(cmd *cobra.Command, err error) error {
	path := pathOf(cmd)
	if path != "" {
		path += ": "
	}
	var ne *pflag.NotExistError
	var vr *pflag.ValueRequiredError
	var iv *pflag.InvalidValueError
	switch {
	case errors.As(err, &ne) && ne.GetSpecifiedShortnames() != "":
		in := ""
		if sh := ne.GetSpecifiedShortnames(); len(sh) > 1 {
			in = " in -" + sh
		}
		return usagef("%sunknown flag -%s%s%s", path, ne.GetSpecifiedName()[:1], in, hintFlags(cmd, ""))
	case errors.As(err, &ne):
		return usagef("%sunknown flag --%s%s", path, ne.GetSpecifiedName(), hintFlags(cmd, ne.GetSpecifiedName()))
	case errors.As(err, &vr):
		return usagef("%s--%s needs a value", path, vr.GetFlag().Name)
	case errors.As(err, &iv) && errors.Is(err, errTwice):
		return usagef("%s--%s given twice", path, iv.GetFlag().Name)
	case errors.As(err, &iv):
		if iv.GetFlag().Value.Type() == "bool" {
			return usagef("%s--%s: want true or false, got %q", path, iv.GetFlag().Name, iv.GetValue())
		}
		return usagef("%s--%s: %v", path, iv.GetFlag().Name, errors.Unwrap(err))
	}
	return usagef("%s%v", path, err)
}

// hintFlags suggests the flags near a mistyped name, or says where the
// list is.
func hintFlags(cmd *cobra.Command, typed string) string {
	var near []string
	if typed != "" {
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			if !f.Hidden && (levenshtein(typed, f.Name) <= 2 || len(typed) > 1 && strings.HasPrefix(f.Name, typed)) {
				near = append(near, "--"+f.Name)
			}
		})
	}
	sort.Strings(near)
	if len(near) > 0 {
		return ": did you mean " + strings.Join(near, " or ") + "?"
	}
	return fmt.Sprintf(" (`%s` lists the flags)", strings.TrimSpace("swarm help "+pathOf(cmd)))
}

// levenshtein is the edit distance between two short names.
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
