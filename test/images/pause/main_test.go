package main

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain lets the test binary act as the pause program when asked to.
func TestMain(m *testing.M) {
	if os.Getenv("PAUSE_TEST_RUN_MAIN") == "1" {
		main()
		os.Exit(3) // main returns only for -v
	}
	os.Exit(m.Run())
}

func TestExitsOnSIGTERM(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), "PAUSE_TEST_RUN_MAIN=1")
			require.NoError(t, cmd.Start())
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			// Still running after a moment: it pauses.
			select {
			case err := <-done:
				t.Fatalf("pause exited early: %v", err)
			case <-time.After(300 * time.Millisecond):
			}
			require.NoError(t, cmd.Process.Signal(syscall.SIGCHLD))
			require.NoError(t, cmd.Process.Signal(sig))
			select {
			case err := <-done:
				assert.NoError(t, err, "exit status 0 expected")
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatal("pause did not exit")
			}
		})
	}
}
