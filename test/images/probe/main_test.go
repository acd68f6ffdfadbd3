package main

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	c, err := parse([]string{"--dns", "a", "--dns", "b", "--http", "http://x/", "--tcp", "h:1=hi", "--udp", "h:2=yo", "--api", "--timeout", "3s"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, listFlag{"a", "b"}, c.dns)
	assert.Equal(t, listFlag{"http://x/"}, c.http)
	assert.Equal(t, listFlag{"h:1=hi"}, c.tcp)
	assert.Equal(t, listFlag{"h:2=yo"}, c.udp)
	assert.True(t, c.api)
	assert.Equal(t, 3*time.Second, c.timeout)
	assert.Equal(t, "https://kubernetes.default.svc", c.apiURL)

	for _, bad := range [][]string{{"--tcp", "nohostport=x"}, {"--udp", "h:1"}, {"--nope"}} {
		_, err := parse(bad, io.Discard)
		assert.Error(t, err, bad)
	}
}
