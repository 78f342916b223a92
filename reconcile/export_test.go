package reconcile

// ScriptHashes are the SHA1s of the package's scripts, for the cluster test.
var ScriptHashes = map[string]string{
	"renewScript":       renewScript.Hash(),
	"releaseScript":     releaseScript.Hash(),
	"releaseSlugScript": releaseSlugScript.Hash(),
}
