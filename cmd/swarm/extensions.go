package main

// The extensions this binary includes: each registers itself (its node
// extension and its operations) when imported. Leaving a line out leaves
// the feature out; the core builds and runs without it.
import (
	_ "github.com/agent-swarm/agent-swarm/ext/github"
	_ "github.com/agent-swarm/agent-swarm/ext/wake"
)
