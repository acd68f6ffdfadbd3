package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The role flags refuse what cannot work before anything is read or
// changed.
func TestRoleFlagsRefuseUnsafeUse(t *testing.T) {
	_, err := runCmd(t, newTokenCmd(), "create", "--role", "server", "--ttl", "1h")
	assert.ErrorContains(t, err, "the server token does not expire")
	_, err = runCmd(t, newTokenCmd(), "create", "--role", "etcd")
	assert.ErrorContains(t, err, `--role "etcd": agent or server`)

	for token, want := range map[string]string{
		"K10abc::abcdef.0123456789abcdef": "bootstrap token joins agents only",
		"K10abc::node:secret":             `the "node" token joins agents only`,
	} {
		_, err = runCmd(t, newJoinCmd(), "--role", "server", "--server", "https://10.0.0.10:6443", "--token", token)
		assert.ErrorContains(t, err, want)
	}
	_, err = runCmd(t, newJoinCmd(), "--role", "witness", "--server", "https://10.0.0.10:6443", "--token", "K10abc::node:secret")
	assert.ErrorContains(t, err, `--role "witness": agent or server`)
}
