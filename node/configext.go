package node

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
)

// An extension keeps its settings in its own section of config.json, a
// top-level key named after it ("wake", "github"). The core does not know
// their shapes: Config keeps every key it does not know as raw JSON in
// Ext, and writes them back as they were.

// configFieldKeys are the JSON keys of Config's own fields.
var configFieldKeys = func() map[string]bool {
	keys := map[string]bool{}
	t := reflect.TypeOf(Config{})
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			keys[name] = true
		}
	}
	return keys
}()

// configFields is Config without its methods, for the default codec.
type configFields Config

func (c *Config) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, (*configFields)(c)); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	c.Ext = nil
	for k, v := range all {
		if !configFieldKeys[k] {
			if c.Ext == nil {
				c.Ext = map[string]json.RawMessage{}
			}
			c.Ext[k] = v
		}
	}
	return nil
}

func (c Config) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(configFields(c))
	if err != nil || len(c.Ext) == 0 {
		return b, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	for k, v := range c.Ext {
		if !configFieldKeys[k] {
			all[k] = v
		}
	}
	return json.Marshal(all)
}

// ExtConfig decodes the config.json section of extension name into v; a
// missing section leaves v as it is.
func (n *Node) ExtConfig(name string, v any) error {
	n.mu.Lock()
	raw, ok := n.cfg.Ext[name]
	n.mu.Unlock()
	if !ok {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: %q: %w", filepath.Join(n.home, ConfigFile), name, err)
	}
	return nil
}

// SetExtConfig saves v as the config.json section of extension name.
func (n *Node) SetExtConfig(name string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	cfg := n.cfg
	cfg.Ext = map[string]json.RawMessage{}
	for k, v := range n.cfg.Ext {
		cfg.Ext[k] = v
	}
	cfg.Ext[name] = raw
	if err := SaveConfig(n.home, &cfg); err != nil {
		return err
	}
	n.cfg = cfg
	return nil
}
