package node

import (
	"encoding/json"
	"fmt"
	"sync"
)

// ExtSection decodes the config.json section of extension name into v,
// for code that has a home's config but no open node (the CLI starting a
// daemon, writing a proxy's site); a missing section leaves v as it is.
func (c *Config) ExtSection(name string, v any) error {
	raw, ok := c.Ext[name]
	if !ok {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: %q: %w", ConfigFile, name, err)
	}
	return nil
}

var publicPaths struct {
	sync.Mutex
	fs []func(cfg *Config) []string
}

// RegisterPublicPaths declares peer API paths an extension serves (its
// PeerRoutes) that a reverse proxy in front of the node must pass on, as
// f says for a home's config (none when the extension's endpoint is off
// there). Call it from init.
func RegisterPublicPaths(f func(cfg *Config) []string) {
	publicPaths.Lock()
	defer publicPaths.Unlock()
	publicPaths.fs = append(publicPaths.fs, f)
}

// PublicPaths are the extensions' peer API paths a proxy passes on for
// cfg, beside the core's own.
func PublicPaths(cfg *Config) []string {
	publicPaths.Lock()
	fs := append([]func(*Config) []string(nil), publicPaths.fs...)
	publicPaths.Unlock()
	var out []string
	for _, f := range fs {
		out = append(out, f(cfg)...)
	}
	return out
}
