package ops

import (
	"context"
	"fmt"
	"strings"

	"github.com/agent-swarm/agent-swarm/node"
)

// Master succession (issue #19): the deputies operation, and the lines
// status and members show about it.

func init() {
	Register(&Op{
		Name: "deputies_set", CLI: "deputies set",
		Summary: "Name a swarm's deputies, in order, and the succession delay (master only): when the master has not been heard for the delay, members support the first deputy they can reach, and one with a majority takes over. No agents clears the list.",
		Params: []Param{pSwarmReq(),
			{Name: "after", Kind: Duration, Help: "succession delay: how long the master may be silent (default 72h; at least 1s, a warning under 1h)"},
			{Name: "agents", Kind: Strings, Positional: true, Help: "the deputies' domains (or key fingerprints), first deputy first"},
		},
		Destructive: true, Network: true,
		Run: func(ctx context.Context, n *node.Node, a Args) (any, error) {
			return n.SetDeputies(a.Str("swarm"), a.Dur("after"), a.Strs("agents"))
		},
		Text: textOf(textDeputies),
	})
}

func textDeputies(d node.DeputiesInfo) string {
	who := "no deputies"
	if len(d.Deputies) > 0 {
		who = "deputies " + strings.Join(d.Deputies, ", ")
	}
	s := fmt.Sprintf("swarm %q: %s; succession after %s of silence from the master", d.Name, who, d.After)
	if d.Warning != "" {
		s += "\nwarning: " + d.Warning
	}
	return s
}

// textSuccession is the status line of one swarm's succession state.
func textSuccession(si node.SuccessionInfo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: master %s", si.Name, si.Master)
	if si.MasterLastHeard != "" {
		fmt.Fprintf(&b, " last heard %s", si.MasterLastHeard)
	}
	if si.Silent {
		b.WriteString(" (SILENT past the delay)")
	}
	fmt.Fprintf(&b, "; delay %s", si.After)
	if len(si.Deputies) > 0 {
		fmt.Fprintf(&b, "; deputies %s", strings.Join(si.Deputies, ", "))
	}
	if len(si.Statements) > 0 {
		var st []string
		for _, s := range si.Statements {
			st = append(st, s.From+" for "+s.Candidate)
		}
		fmt.Fprintf(&b, "; statements %d (need %d): %s", len(si.Statements), si.Quorum, strings.Join(st, ", "))
	}
	if si.Last != nil {
		fmt.Fprintf(&b, "; succession at record %d: %s replaced %s", si.Last.Index, si.Last.Master, si.Last.From)
	}
	return b.String()
}

// memberSuccessionTags are the member list's tags about succession.
func memberSuccessionTags(m node.MemberInfo) string {
	tag := ""
	if m.Deputy > 0 {
		tag += fmt.Sprintf(" [deputy %d]", m.Deputy)
	}
	if m.Supports != "" {
		tag += " [supports " + m.Supports + "]"
	}
	if m.Master && m.LastHeard != "" {
		tag += " (heard " + m.LastHeard + ")"
	}
	return tag
}
