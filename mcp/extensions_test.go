package mcp_test

// The extensions whose tools the snapshot (testdata/tools.json) holds.
import (
	_ "github.com/agent-swarm/agent-swarm/ext/github"
)
