package redisx

import "github.com/redis/go-redis/v9"

// TestNow is the fixed time of the package's tests.
var TestNow = testNow

// LayoutKey is one shard key family as the prelude sees it.
type LayoutKey struct {
	Lua    string
	Params []string
}

// ShardLayout lists the shard key families for the external tests.
func ShardLayout() []LayoutKey {
	out := make([]LayoutKey, len(shardLayout))
	for i, k := range shardLayout {
		out[i] = LayoutKey{Lua: k.lua, Params: k.params}
	}
	return out
}

// OnShardSource is the prelude of shard scripts.
func OnShardSource() string { return OnShard.source() }

// ScriptOf wraps a raw script without registering it.
func ScriptOf(name string, s *redis.Script) *Script { return &Script{name: name, lua: s} }
