package node

import (
	"strings"
	"sync"
)

// A notification may relay words that are not its sender's (a node that
// relays activity of another service). The extension that sends such
// relays registers the prefix their bodies start with and the note Frame
// adds, so the model reading it knows whose words they are.

var relays struct {
	sync.Mutex
	notes map[string]string // body prefix -> note
}

// RegisterRelay makes Frame add note to every notification whose body
// starts with prefix. Call it from init.
func RegisterRelay(prefix, note string) {
	relays.Lock()
	defer relays.Unlock()
	if prefix == "" {
		panic("node.RegisterRelay: an empty prefix")
	}
	if relays.notes == nil {
		relays.notes = map[string]string{}
	}
	relays.notes[prefix] = note
}

// relayNote is the note for a notification's body, or "".
func relayNote(body string) string {
	relays.Lock()
	defer relays.Unlock()
	for prefix, note := range relays.notes {
		if strings.HasPrefix(body, prefix) {
			return note
		}
	}
	return ""
}
