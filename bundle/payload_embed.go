//go:build payload

package bundle

import (
	"embed"
	"io/fs"
)

// payload holds bundle/payload/ as scripts/release filled it for one
// architecture: manifest.json plus the files it lists.
//
//go:embed all:payload
var payloadFiles embed.FS

func payloadFS() fs.FS {
	sub, err := fs.Sub(payloadFiles, "payload")
	if err != nil {
		// fs.Sub fails only on an invalid directory name, a constant here.
		panic(err)
	}
	return sub
}
