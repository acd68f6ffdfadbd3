// Command k3slauncher is a K3s-compatible launcher: a test double for the K3s
// release binary, which cannot be fetched in this build environment. It is
// never shipped. See package launcher for what it does and does not do.
//
// Like K3s it is a multi-call binary: `k3s server [flags]`, `k3s agent
// [flags]`, `k3s --version`,
// `k3s kubectl …` and `k3s ctr …`, and the same when called as kubectl or ctr
// (the links tpctl install makes next to it).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/tpctl/tpctl/test/cluster"
	"github.com/tpctl/tpctl/test/k3slauncher/launcher"
)

// componentDir is where the upstream component binaries are found.
const componentDir = launcher.DefaultComponentDir

func main() {
	os.Exit(run(os.Args))
}

func run(argv []string) int {
	name := filepath.Base(argv[0])
	args := argv[1:]
	switch name {
	case "kubectl", "ctr", "crictl":
		args = append([]string{name}, args...)
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: k3s server [flags] | k3s agent [flags] | k3s --version | k3s kubectl … | k3s ctr …")
		return 2
	}
	switch args[0] {
	case "--version", "-v", "version":
		fmt.Println(launcher.VersionString(runtime.Version()))
		return 0
	case "kubectl", "ctr", "crictl":
		err := launcher.ExecTool(componentDir, args[0], args[1:])
		fmt.Fprintln(os.Stderr, err)
		return 1
	case "server":
		return server(args[1:])
	case "agent":
		return agent(args[1:])
	default:
		fmt.Fprintf(os.Stderr, "k3s: command %q is not provided by this launcher (server, agent, kubectl, ctr, --version)\n", args[0])
		return 2
	}
}

func server(args []string) int {
	a, err := launcher.ParseArgs(args)
	if err == nil {
		var cfg launcher.Config
		cfg, err = launcher.Load(a, os.ReadFile, os.ReadDir)
		if err != nil {
			err = &launcher.UsageError{Err: err}
		} else {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			s := &launcher.Server{
				Config: cfg, Components: componentDir, Log: os.Stderr, Kubeconfig: launcher.KubeconfigPath,
				Notify: func(state string) error {
					// The variable stays: children get an environment without it.
					_, err := daemon.SdNotify(false, state)
					return err //nolint:wrapcheck // wrapped by the caller
				},
			}
			fmt.Fprintf(os.Stderr, "launcher: %s (Kubernetes %s), data dir %s\n",
				launcher.VersionString(runtime.Version()), cluster.PinnedVersions().Kubernetes, cfg.DataDir)
			err = s.Run(ctx)
		}
	} else {
		err = &launcher.UsageError{Err: err}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "k3s:", err)
		var usage *launcher.UsageError
		if errors.As(err, &usage) {
			return 2
		}
		return 1
	}
	return 0
}

func notify(state string) error {
	// The variable stays: children get an environment without it.
	_, err := daemon.SdNotify(false, state)
	return err //nolint:wrapcheck // wrapped by the caller
}

func agent(args []string) int {
	a, err := launcher.ParseAgentArgs(args)
	if err == nil {
		var o launcher.AgentOptions
		o, err = launcher.LoadAgent(a, os.ReadFile, os.ReadDir, os.Getenv)
		if err != nil {
			err = &launcher.UsageError{Err: err}
		} else {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			ag := &launcher.Agent{Options: o, Components: componentDir, Log: os.Stderr, Notify: notify}
			fmt.Fprintf(os.Stderr, "launcher: %s (Kubernetes %s) agent of %s, data dir %s\n",
				launcher.VersionString(runtime.Version()), cluster.PinnedVersions().Kubernetes, o.Server.Host, o.DataDir)
			err = ag.Run(ctx)
		}
	} else {
		err = &launcher.UsageError{Err: err}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "k3s:", err)
		var usage *launcher.UsageError
		if errors.As(err, &usage) {
			return 2
		}
		return 1
	}
	return 0
}
