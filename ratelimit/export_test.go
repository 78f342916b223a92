package ratelimit

// GCRAScriptHash is the SHA1 of the package's script, for the cluster test.
var GCRAScriptHash = gcraScript.Hash()
