//go:build !linux

package operator

// DropBinaryPages does nothing off Linux (see the Linux version).
func DropBinaryPages() int64 { return 0 }
