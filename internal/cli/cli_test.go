package cli

import (
	"errors"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIsTerminalRejectsDevNull(t *testing.T) {
	f, err := os.Open(os.DevNull)
	require.NoError(t, err)
	defer f.Close()
	fi, err := f.Stat()
	require.NoError(t, err)
	require.NotZero(t, fi.Mode()&os.ModeCharDevice, "/dev/null is a character device")
	assert.False(t, IsTerminal(f), "but it is not a terminal")
	assert.False(t, IsTerminal(nil))
}

func TestExitCode(t *testing.T) {
	assert.Equal(t, ExitOK, ExitCode(nil))
	assert.Equal(t, ExitError, ExitCode(errors.New("boom")))
	assert.Equal(t, ExitUsage, ExitCode(Usagef("bad flag %q", "x")))
	assert.Equal(t, ExitPreflight, ExitCode(&CodeError{Code: ExitPreflight, Err: errors.New("failed")}))
	wrapped := errors.Join(errors.New("context"), Usagef("bad"))
	assert.Equal(t, ExitUsage, ExitCode(wrapped))
}

func TestParseFormat(t *testing.T) {
	f, err := ParseFormat("", Table, JSON)
	require.NoError(t, err)
	assert.Equal(t, Table, f)
	f, err = ParseFormat("JSON", Table, JSON)
	require.NoError(t, err)
	assert.Equal(t, JSON, f)
	_, err = ParseFormat("yaml", Table, JSON)
	assert.EqualError(t, err, `unknown output format "yaml" (want one of: table, json)`)
	assert.Equal(t, ExitUsage, ExitCode(err))
}
