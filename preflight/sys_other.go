//go:build !linux

package preflight

import (
	"errors"
	"os"
)

var errNotLinux = errors.New("only supported on Linux")

func clockSynced() (bool, error)                        { return false, errNotLinux }
func listNFTables() ([]string, error)                   { return nil, errNotLinux }
func statfsPath(string) (total, free uint64, err error) { return 0, 0, errNotLinux }

func readSmall(path string, buf []byte) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.Read(buf)
}
