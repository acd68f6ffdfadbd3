//go:build !payload

package bundle

import (
	"embed"
	"io/fs"
)

// payloadFS is empty in a build without the payload tag: Open reports every
// required artifact as missing and install takes --k3s-binary instead.
func payloadFS() fs.FS { return embed.FS{} }
