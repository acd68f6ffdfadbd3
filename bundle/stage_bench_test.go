package bundle

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// Staging throughput against the pipeline it replaces: `cp SRC DST` followed
// by `sha256sum DST` (and, for a like-for-like durability, `sync DST`, since
// Stage fsyncs before it renames). Run:
//
//	go test -run '^$' -bench Staging -benchtime 5x ./embed/
//
// TPCTL_BENCH_MB sets the file size (default 256) and TPCTL_BENCH_DIR the
// directory (default: the test's temporary directory; /dev/shm is a tmpfs).
func BenchmarkStaging(b *testing.B) {
	size := 256
	if v := os.Getenv("TPCTL_BENCH_MB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("TPCTL_BENCH_MB: %v", err)
		}
		size = n
	}
	dir := b.TempDir()
	if d := os.Getenv("TPCTL_BENCH_DIR"); d != "" {
		var err error
		if dir, err = os.MkdirTemp(d, "tpctl-bench-"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	src := filepath.Join(dir, "src")
	data := randomBytes(b, size<<20)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		b.Fatal(err)
	}
	want := Expect{SHA256: sum(data), Size: int64(len(data))}
	data = nil
	dst := filepath.Join(dir, "dst")

	b.Run("stage", func(b *testing.B) {
		b.SetBytes(want.Size)
		for b.Loop() {
			f, err := os.Open(src)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := Stage(context.Background(), f, dst, 0o644, want, nil); err != nil {
				b.Fatal(err)
			}
			f.Close()
			b.StopTimer()
			os.Remove(dst)
			b.StartTimer()
		}
	})
	for _, tc := range []struct {
		name string
		sync bool
	}{{"cp+sha256sum", false}, {"cp+sync+sha256sum", true}} {
		b.Run(tc.name, func(b *testing.B) {
			for _, tool := range []string{"cp", "sha256sum", "sync"} {
				if _, err := exec.LookPath(tool); err != nil {
					b.Skipf("needs %s: %v", tool, err)
				}
			}
			b.SetBytes(want.Size)
			for b.Loop() {
				if out, err := exec.Command("cp", src, dst).CombinedOutput(); err != nil {
					b.Fatalf("cp: %v: %s", err, out)
				}
				if tc.sync {
					if out, err := exec.Command("sync", dst).CombinedOutput(); err != nil {
						b.Fatalf("sync: %v: %s", err, out)
					}
				}
				if out, err := exec.Command("sha256sum", dst).CombinedOutput(); err != nil {
					b.Fatalf("sha256sum: %v: %s", err, out)
				}
				b.StopTimer()
				os.Remove(dst)
				b.StartTimer()
			}
		})
	}
}
