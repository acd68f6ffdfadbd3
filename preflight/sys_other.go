//go:build !linux

package preflight

import "errors"

var errNotLinux = errors.New("only supported on Linux")

func clockSynced() (bool, error)                        { return false, errNotLinux }
func listNFTables() ([]string, error)                   { return nil, errNotLinux }
func statfsPath(string) (total, free uint64, err error) { return 0, 0, errNotLinux }
