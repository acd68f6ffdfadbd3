package version

import (
	"testing"
)

func TestParse(t *testing.T) {
	for _, s := range []string{
		"v0.4.0",
		"0.2.0", // a chart version
		"v1.2.3-rc.1",
		"v0.4.0-3-gabcdef1-dirty", // `git describe --tags --dirty` past a tag
		" v0.5.0\n",
	} {
		if _, err := Parse(s); err != nil {
			t.Errorf("Parse(%q): %v", s, err)
		}
	}
	for _, s := range []string{
		"",
		"dev",     // internal/buildinfo's version of an unstamped build
		"(devel)", // the Go toolchain's
		"abcdef1", // `git describe --always` without a tag
		"v1.36",
		"v1.x.3",
		"v01.2.3",
		"garbage",
	} {
		if v, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) = %v, accepted", s, v)
		}
	}
}

func TestReleaseCompare(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"v0.4.0", "v0.5.0", -1},
		{"v0.5.0", "v0.4.0", 1},
		{"v0.5.0", "v0.5.0", 0},
		{"v0.3.0", "0.3.0", 0},
		{"v1.0.0", "v0.9.9", 1},
		{"v0.10.0", "v0.9.0", 1},
		{"v0.5.0", "v0.5.0-rc.1", 1}, // a pre-release before its release
		{"v0.5.0-rc.1", "v0.5.0-rc.2", -1},
		{"v0.5.0-rc.2", "v0.5.0-rc.10", -1}, // numeric identifiers numerically
		{"v0.5.0-alpha", "v0.5.0-beta", -1},
		{"v0.5.0+abc", "v0.5.0+def", 0}, // build metadata ignored
		{"v0.4.0-3-gabcdef1", "v0.4.0", -1},
	} {
		a, err := Parse(c.a)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Parse(c.b)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.Compare(b); got != c.want {
			t.Errorf("Compare(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

// TestReleaseOrder checks semantic versioning's own precedence example.
func TestReleaseOrder(t *testing.T) {
	order := []string{"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0"}
	for i := 1; i < len(order); i++ {
		a, _ := Parse(order[i-1])
		b, err := Parse(order[i])
		if err != nil {
			t.Fatal(err)
		}
		if a.Compare(b) != -1 || b.Compare(a) != 1 {
			t.Errorf("%s does not sort before %s", order[i-1], order[i])
		}
	}
}

func TestParseK3s(t *testing.T) {
	for _, c := range []struct {
		in                  string
		major, minor, patch uint64
		pre                 string
		release             int
		str                 string
	}{
		{"v1.36.3+k3s1", 1, 36, 3, "", 1, "v1.36.3+k3s1"},
		{"k3s version v1.36.3+k3s1 (abcdef)", 1, 36, 3, "", 1, "v1.36.3+k3s1"},
		{"k3s version v1.35.2+k3s2 (abcdef12)\ngo version go1.25", 1, 35, 2, "", 2, "v1.35.2+k3s2"},
		{"v1.36.0-rc1+k3s1", 1, 36, 0, "rc1", 1, "v1.36.0-rc1+k3s1"},
		{"v1.33.4+k3s10", 1, 33, 4, "", 10, "v1.33.4+k3s10"},
		{"v1.36.3", 1, 36, 3, "", 0, "v1.36.3"},
		{"1.36.3+k3s1\n", 1, 36, 3, "", 1, "v1.36.3+k3s1"},
	} {
		v, err := ParseK3s(c.in)
		if err != nil {
			t.Errorf("ParseK3s(%q): %v", c.in, err)
			continue
		}
		if v.Major() != c.major || v.Minor() != c.minor || v.Patch() != c.patch || v.Prerelease() != c.pre || v.Release != c.release || v.String() != c.str {
			t.Errorf("ParseK3s(%q) = %d.%d.%d pre %q k3s%d %q; want %d.%d.%d pre %q k3s%d %q", c.in,
				v.Major(), v.Minor(), v.Patch(), v.Prerelease(), v.Release, v.String(), c.major, c.minor, c.patch, c.pre, c.release, c.str)
		}
	}
	for _, bad := range []string{"", "dev", "garbage", "v1.36", "v1.x.3", "k3s version dev (abc)", "k3s version"} {
		if v, err := ParseK3s(bad); err == nil {
			t.Errorf("ParseK3s(%q) = %v, accepted", bad, v)
		}
	}
}

func TestK3sCompare(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"v1.33.4+k3s1", "v1.33.4+k3s1", 0},
		{"v1.33.3+k3s1", "v1.33.4+k3s1", -1},
		{"v1.33.4+k3s1", "v1.33.4+k3s2", -1}, // K3s's release counter orders
		{"v1.33.4+k3s2", "v1.33.4+k3s1", 1},
		{"v1.33.4+k3s9", "v1.33.4+k3s10", -1}, // numerically
		{"v1.33.3+k3s2", "v1.33.4+k3s1", -1},  // after the Kubernetes version
		{"v1.32.9+k3s1", "v1.33.4+k3s1", -1},
		{"v1.36.3+k3s1", "v1.35.9+k3s1", 1},
		{"v2.0.0+k3s1", "v1.36.1+k3s1", 1},
		{"v1.36.3", "v1.36.3+k3s1", -1},
		{"v1.36.0-rc1+k3s1", "v1.36.0+k3s1", -1}, // a pre-release before its release
		{"v1.36.0-rc1+k3s2", "v1.36.0+k3s1", -1},
		{"v1.36.0-rc1+k3s1", "v1.36.0-rc2+k3s1", -1},
		{"k3s version v1.35.2+k3s1 (abc)", "v1.35.2+k3s1", 0},
		{"k3s version v1.36.3+k3s2 (abc)", "v1.36.3+k3s1", 1},
	} {
		a, err := ParseK3s(c.a)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ParseK3s(c.b)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.Compare(b); got != c.want {
			t.Errorf("Compare(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := b.Compare(a); got != -c.want {
			t.Errorf("Compare(%s, %s) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}

func TestMinors(t *testing.T) {
	for _, c := range []struct {
		from, to   string
		same, skip bool
	}{
		{"v1.36.3+k3s1", "v1.36.3+k3s2", true, false},
		{"v1.33.3+k3s1", "v1.33.4+k3s1", true, false},
		{"v1.35.2+k3s1", "v1.36.3+k3s1", false, false},
		{"v1.34.1+k3s1", "v1.36.3+k3s1", false, true},
		{"v1.36.1+k3s1", "v2.0.0+k3s1", false, true}, // a major change
		{"v1.36.3+k3s1", "v1.35.9+k3s1", false, false},
		{"v1.32.9+k3s1", "v1.33.4+k3s1", false, false},
	} {
		from, err := ParseK3s(c.from)
		if err != nil {
			t.Fatal(err)
		}
		to, err := ParseK3s(c.to)
		if err != nil {
			t.Fatal(err)
		}
		if got := from.SameMinor(to); got != c.same {
			t.Errorf("SameMinor(%s, %s) = %v", c.from, c.to, got)
		}
		if got := SkipsMinor(from, to); got != c.skip {
			t.Errorf("SkipsMinor(%s, %s) = %v", c.from, c.to, got)
		}
	}
}
