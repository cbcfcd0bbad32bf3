package node

import (
	"regexp"
	"sort"
	"strings"

	"github.com/agent-swarm/agent-swarm/node/wire"
	"github.com/agent-swarm/agent-swarm/store"
)

// Message IDs by prefix. A user may name a message by the start of its
// ID, as `swarm inbox` shows it: at least minPrefix hex digits, and
// enough to match one message. Where an ID is looked up decides what it
// may match: the inbox (i/<id>/…) and the messages this node sent (m/<id>).

// minPrefix is the fewest hex digits a prefix may have. A UUIDv7 starts
// with its time in milliseconds, so prefixes of messages sent in the same
// minute share their first 8 digits: the inbox shows as many more as it
// takes (ShortID).
const minPrefix = 8

var prefixRE = regexp.MustCompile(`^[0-9a-f][0-9a-f-]{0,35}$`)

// Where message IDs are looked up.
var (
	inInbox = []string{"i"}
	inSent  = []string{"m"}
	inAny   = []string{"i", "m"}
)

// resolveID turns a message ID, or an unambiguous prefix of one, into the
// whole ID, found under the given key prefixes. what names the argument
// in errors ("" for none); where says where it was looked for. A whole ID
// is returned as it is: the caller says whether it is there.
func (n *Node) resolveID(what, ref, where string, in []string) (string, error) {
	label := ""
	if what != "" {
		label = what + ": "
	}
	ref = strings.ToLower(strings.TrimSpace(ref))
	if wire.ValidID(ref) == nil {
		return ref, nil
	}
	if !prefixRE.MatchString(ref) || hexDigits(ref) < minPrefix {
		return "", Userf("%sinvalid id %q: want a message ID (a UUID) or at least its first %d hex digits", label, clipID(ref), minPrefix)
	}
	var ids []string
	err := n.st.View(func(tx *store.Tx) (err error) { ids, err = idsWithPrefix(tx, ref, in, 6); return err })
	if err != nil {
		return "", err
	}
	switch len(ids) {
	case 0:
		return "", Userf("%sno message %s %s", label, ref, where)
	case 1:
		return ids[0], nil
	}
	more := ""
	if len(ids) > 5 {
		ids, more = ids[:5], ", …"
	}
	return "", Userf("%smessage id prefix %s is ambiguous: it starts %s%s; give more of the id", label, ref, strings.Join(ids, ", "), more)
}

// idsWithPrefix lists up to max distinct message IDs starting with p.
func idsWithPrefix(tx *store.Tx, p string, in []string, max int) ([]string, error) {
	seen := map[string]bool{}
	for _, kind := range in {
		base := len(kind) + 1
		err := tx.Scan([]byte(kind+"/"+p), nil, func(k []byte, _ func(any) error) (bool, error) {
			if len(k) >= base+36 {
				seen[string(k[base:base+36])] = true
			}
			return len(seen) < max, nil
		})
		if err != nil || len(seen) >= max {
			break
		}
	}
	out := make([]string, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	sort.Strings(out)
	return out, nil
}

// shortID is the shortest prefix of id, at least minPrefix hex digits,
// that names no other message in the inbox or among those sent: what
// `swarm inbox` shows, and what read, delivery and --reply-to accept.
func shortID(tx *store.Tx, id string) (string, error) {
	unique := func(h int) (bool, error) {
		ids, err := idsWithPrefix(tx, cutHex(id, h), inAny, 2)
		return len(ids) <= 1, err
	}
	lo, hi := minPrefix, 32 // the shortest unique length is in [lo, hi]
	for lo < hi {
		mid := (lo + hi) / 2
		ok, err := unique(mid)
		if err != nil {
			return id, err
		}
		if ok {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return cutHex(id, lo), nil
}

// cutHex is the start of id holding h hex digits.
func cutHex(id string, h int) string {
	for i := 0; i < len(id); i++ {
		if h == 0 {
			return id[:i]
		}
		if id[i] != '-' {
			h--
		}
	}
	return id
}

func hexDigits(s string) int { return len(s) - strings.Count(s, "-") }

func clipID(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
