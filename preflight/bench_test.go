package preflight

import (
	"context"
	"testing"
)

// BenchmarkPreflight runs every default check on this host ("/"), with a
// fresh Host per iteration so nothing read in one run is reused in the next.
func BenchmarkPreflight(b *testing.B) {
	checks, err := DefaultChecks(Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		rep := Run(ctx, checks, NewHost("/"), nil)
		if len(rep.Results) == 0 {
			b.Fatal("no results")
		}
	}
}

// BenchmarkDefaultChecks measures building the checks (parsing the embedded
// catalog and selecting rows), which every run pays once.
func BenchmarkDefaultChecks(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DefaultChecks(Options{CNI: CNICilium}); err != nil {
			b.Fatal(err)
		}
	}
}
