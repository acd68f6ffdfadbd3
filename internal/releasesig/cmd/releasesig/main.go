// Command releasesig is scripts/release's check of a release's signature
// with the Go verifier tpctl uses (the release also checks it with openssl,
// as install.sh does, so both implementations agree on every release):
//
//	releasesig keys KEYFILE                 print the keys KEYFILE lists, comma-separated (for -X)
//	releasesig verify KEYFILE SUMS SIG      check SIG is a signature of SUMS by a key KEYFILE lists
//	releasesig verify-file SUMS FILE NAME   check FILE has the sha256 SUMS lists for NAME
//
// Exit 0 on success, 1 with the reason on stderr otherwise, 2 on bad usage.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/tpctl/tpctl/internal/releasesig"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "releasesig:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage: releasesig keys KEYFILE | verify KEYFILE SUMS SIG | verify-file SUMS FILE NAME")

func readKeys(path string) ([]releasesig.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	keys, err := releasesig.ParseKeys(string(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: %w", path, releasesig.ErrNoKeys)
	}
	return keys, nil
}

func run(args []string) error {
	switch {
	case len(args) == 2 && args[0] == "keys":
		keys, err := readKeys(args[1])
		if err != nil {
			return err
		}
		var out []string
		for _, k := range keys {
			out = append(out, k.Fingerprint())
		}
		fmt.Println(strings.Join(out, ","))
		return nil
	case len(args) == 4 && args[0] == "verify":
		keys, err := readKeys(args[1])
		if err != nil {
			return err
		}
		sums, err := os.ReadFile(args[2])
		if err != nil {
			return err
		}
		sig, err := os.ReadFile(args[3])
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		k, err := releasesig.NewVerifier(keys).VerifySums(sums, sig)
		if err != nil {
			return err
		}
		fmt.Printf("%s: signed by %s (%s)\n", args[2], k.Fingerprint(), k.Label)
		return nil
	case len(args) == 4 && args[0] == "verify-file":
		sums, err := os.ReadFile(args[1])
		if err != nil {
			return err
		}
		return releasesig.VerifyFile(args[2], args[3], sums)
	}
	return errUsage
}
