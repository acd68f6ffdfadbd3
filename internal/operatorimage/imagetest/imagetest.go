// Package imagetest helps tests of the operator image: a tiny static Go
// program that stands in for a static tpctl binary.
package imagetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// StaticBinary builds a tiny static Go program (CGO_ENABLED=0) in a
// directory of the test and returns its path; it skips the test without
// the go tool.
func StaticBinary(t testing.TB) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs the go tool to build a static test binary")
	}
	dir := t.TempDir()
	for name, text := range map[string]string{
		"go.mod":  "module example.test/static\n\ngo 1.22\n",
		"main.go": "package main\n\nfunc main() { println(\"operator\") }\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "tpctl")
	cmd := exec.Command(goTool, "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build a static test binary: %v\n%s", err, out)
	}
	return bin
}
