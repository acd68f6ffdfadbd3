//go:build !payload

package bundle

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultBuildHasNoPayload(t *testing.T) {
	d, err := Describe()
	require.NoError(t, err)
	// The unit tests run without -tags payload.
	assert.False(t, d.Complete)
	assert.Empty(t, d.Artifacts)
	assert.NotEmpty(t, d.Missing)
}
