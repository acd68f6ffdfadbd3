package multihost

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNewRefusesBeforeTakingTheLock(t *testing.T) {
	// A lock path in a directory that does not exist: reaching the lock
	// would fail differently.
	opts := Options{LockPath: "/nonexistent/lock"}
	for _, n := range []int{0, MaxHosts + 1} {
		opts.Hosts = n
		_, err := New(context.Background(), opts)
		assert.ErrorContains(t, err, "a group has 1 to 3 hosts", "%d hosts", n)
	}
	opts.Hosts, opts.Prefix = 2, "much-too-long"
	_, err := New(context.Background(), opts)
	assert.ErrorContains(t, err, "at most 10 characters")
}
