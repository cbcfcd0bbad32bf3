package testclients

// The extensions in the swarm binary the clients run: the tools they must
// find include these extensions' operations.
import (
	_ "github.com/agent-swarm/agent-swarm/ext/github"
)
