package launcher

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTokenAndBootstrapAreK3ss(t *testing.T) {
	ctx := context.Background()
	l := Layout{Data: t.TempDir()}
	pass, err := ensureToken(l, []byte("CA"))
	require.NoError(t, err)
	b, err := os.ReadFile(l.TokenFile())
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(b), "K10"), "secure token format")
	assert.True(t, strings.HasSuffix(strings.TrimSpace(string(b)), "::server:"+pass))
	fi, err := os.Stat(l.TokenFile())
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	again, err := ensureToken(l, []byte("other CA"))
	require.NoError(t, err)
	assert.Equal(t, pass, again, "an existing token is kept")

	require.NoError(t, checkBootstrap(ctx, l.DBFile(), pass), "first start records the token")
	require.NoError(t, checkBootstrap(ctx, l.DBFile(), pass), "a restart with the same token")
	err = checkBootstrap(ctx, l.DBFile(), "another")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bootstrap data already found and encrypted with different token")

	// A datastore moved to another data dir keeps its bootstrap record.
	l2 := Layout{Data: t.TempDir()}
	require.NoError(t, os.MkdirAll(filepath.Dir(l2.DBFile()), 0o700))
	data, err := os.ReadFile(l.DBFile())
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(l2.DBFile(), data, 0o600))
	assert.Error(t, checkBootstrap(ctx, l2.DBFile(), "another"))
	assert.Equal(t, "abc", tokenPassphrase("K10ff::server:abc"))
	assert.Equal(t, "abc", tokenPassphrase("abc"))
}
