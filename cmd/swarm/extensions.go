package main

// The extensions in the binary: one blank import each (node.Register runs
// in its init). Leaving a line out leaves that feature out.
import (
	_ "github.com/agent-swarm/agent-swarm/ext/github"
)
