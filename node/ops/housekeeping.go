package ops

import (
	"context"
	"fmt"
	"strings"

	"github.com/agent-swarm/agent-swarm/node"
	"github.com/agent-swarm/agent-swarm/node/backup"
)

// housekeepingOps manage what piles up and what the node holds for
// itself (issue #16): archive and count the inbox, list sent messages,
// invites and mutes, export the node.
var housekeepingOps = []*Op{
	archiveOp("inbox_archive", "inbox archive", false,
		"Archive inbox messages: by ID, or all (of one swarm; with read, only those already read). Archived messages are read, hidden from the inbox (status archived or all shows them) and kept until deleted."),
	archiveOp("inbox_unarchive", "inbox unarchive", true,
		"Bring archived messages back to the inbox: by ID, or all (of one swarm). They stay read."),
	{
		Name: "inbox_count", CLI: "inbox count", Summary: "Count inbox messages by status: unread, read, archived, and those hidden by mutes.",
		Params:   []Param{pSwarm, {Name: "include_muted", Kind: Bool, Help: "also count messages from muted swarms and agents under their status"}},
		ReadOnly: true, Idempotent: true,
		Run: func(ctx context.Context, n *node.Node, a Args) (any, error) {
			return n.Count(a.Str("swarm"), a.Bool("include_muted"))
		},
		Text: textOf(func(c node.InboxCount) string {
			return fmt.Sprintf("unread %d\nread %d\narchived %d\ntotal %d\nmuted %d (hidden)", c.Unread, c.Read, c.Archived, c.Total, c.Muted)
		}),
	},
	{
		Name: "sent", CLI: "sent", Summary: "List messages this node sent, oldest first, with each recipient's delivery state (pending, delivered, failed).",
		Params: []Param{pSwarm,
			{Name: "pending", Kind: Bool, Help: "only messages some recipient has not acked yet"},
			{Name: "limit", Kind: Int, Min: 1, Max: 1000, Help: "at most this many, 1-1000 (newest kept; default 50)"},
		},
		ReadOnly: true, Idempotent: true,
		Run: func(ctx context.Context, n *node.Node, a Args) (any, error) {
			return n.Sent(node.SentArgs{Swarm: a.Str("swarm"), Pending: a.Bool("pending"), Limit: a.Int("limit")})
		},
		// No ModelText: the MCP face then escapes this text as peer text
		// (recipient names are peers' claims); a ModelText is a framed
		// rendering, trusted to escape what it holds.
		Text: textOf(textSent),
	},
	{
		Name: "invite_list", CLI: "invite list", Summary: "List the invites this node issued as master: ID, uses left, expiry, invitee. Never the tokens, which are shown once when issued.",
		Params:   []Param{pSwarm, {Name: "all", Kind: Bool, Help: "also expired, used-up and revoked invites"}},
		ReadOnly: true, Idempotent: true,
		Run: func(ctx context.Context, n *node.Node, a Args) (any, error) {
			return n.InviteList(a.Str("swarm"), a.Bool("all"))
		},
		Text: textOf(textInvites),
	},
	{
		Name: "mute_list", CLI: "mute list", Summary: "List the mutes in force: swarms and agents, and until when.",
		ReadOnly: true, Idempotent: true,
		Run:  func(ctx context.Context, n *node.Node, a Args) (any, error) { return n.MuteList() },
		Text: textOf(textMutes),
	},
	{
		Name: "export", CLI: "export", Summary: "Write this node's whole state (key, config, certificate, swarms, inbox, outbox) to a new file (0600) that `swarm import` restores on another home or host. The file holds the private key: keep it as secret as key.pem.",
		Params: []Param{{Name: "file", Kind: Path, Required: true, Positional: true, Help: "the archive to write (must not exist)"}},
		// The user's: the file holds the private key, which no model
		// should be able to copy out.
		Local: true,
		Run: func(ctx context.Context, n *node.Node, a Args) (any, error) {
			return backup.Export(n, a.Str("file"))
		},
		Text: textOf(textExport),
	},
}

func init() { Register(housekeepingOps...) }

func archiveOp(name, cli string, undo bool, summary string) *Op {
	verb := "archived"
	params := []Param{{Name: "ids", Kind: Strings, Positional: true, Help: "message IDs (or their starts, as the inbox shows them)"},
		{Name: "all", Kind: Bool, Help: "every message"}, pSwarm}
	if undo {
		verb = "unarchived"
	} else {
		params = append(params, Param{Name: "read", Kind: Bool, Help: "only messages already read"})
	}
	return &Op{
		Name: name, CLI: cli, Summary: summary, Params: params, Idempotent: true,
		Run: func(ctx context.Context, n *node.Node, a Args) (any, error) {
			c, err := n.Archive(node.ArchiveArgs{IDs: a.Strs("ids"), All: a.Bool("all"), Swarm: a.Str("swarm"), ReadOnly: a.Bool("read"), Undo: undo})
			return map[string]int{verb: c}, err
		},
		Text: textOf(func(v map[string]int) string { return fmt.Sprintf("%s %d", verb, v[verb]) }),
	}
}

func textSent(ms []node.SentMessage) string {
	if len(ms) == 0 {
		return "no sent messages"
	}
	var b strings.Builder
	for _, m := range ms {
		to := "all"
		if m.To != "*" {
			to = m.To
		}
		kind := ""
		switch {
		case m.Type == "system" && m.Event != "":
			kind = " system/" + m.Event
		case m.Type != "message":
			kind = " " + m.Type
		}
		fmt.Fprintf(&b, "%s %s [%s] to %s%s: %q  (%d delivered, %d pending, %d failed)\n",
			m.ShortID, textTime(m.Created), m.Swarm, to, kind, m.Body, m.Delivered, m.Pending, m.Failed)
		for _, d := range m.Deliveries {
			fmt.Fprintf(&b, "    %-30s %s %-9s %s\n", d.Peer, d.Fingerprint, d.Status, d.Reason)
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

func textInvites(es []node.InviteEntry) string {
	if len(es) == 0 {
		return "no active invites (--all shows expired, used-up and revoked ones)"
	}
	var b strings.Builder
	for _, e := range es {
		who := "anyone"
		if e.Invitee != "" {
			who = e.Invitee
		}
		fmt.Fprintf(&b, "%s  %-16s %-8s %d of %d uses left  expires %s  for %s\n", e.ID, e.Swarm, e.State, e.UsesLeft, e.Uses, textTime(e.Expires), who)
	}
	return strings.TrimRight(b.String(), "\n")
}

func textMutes(ms []node.MuteInfo) string {
	if len(ms) == 0 {
		return "no mutes"
	}
	var b strings.Builder
	for _, m := range ms {
		b.WriteString(textMute(m) + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

func textExport(r backup.Report) string {
	s := fmt.Sprintf("exported %s (key %s) to %s: %d swarm(s), %d inbox message(s), %d queued deliveries, %d bytes",
		r.Domain, r.Fingerprint, r.File, r.Swarms, r.Inbox, r.Outbox, r.Size)
	for _, note := range r.Notes {
		s += "\nnote: " + note
	}
	return s
}
