package testclients

// The extensions the swarm binary includes, so these tests see the same
// table of operations as its faces.
import (
	_ "github.com/agent-swarm/agent-swarm/ext/github"
	_ "github.com/agent-swarm/agent-swarm/ext/wake"
)
