package preflight

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// seed adds the files of both fake trees at rel as corpus entries.
func seed(f *testing.F, rel string) {
	for _, tree := range []string{"v1", "v2"} {
		if b, err := os.ReadFile(filepath.Join("testdata", "hosts", tree, rel)); err == nil {
			f.Add(b)
		}
	}
}

func FuzzParseKernelConfig(f *testing.F) {
	seed(f, "boot/config-6.1.0-18-amd64")
	f.Add([]byte("CONFIG_A=y\n  CONFIG_B=m\r\nCONFIG_C=n\n# CONFIG_D is not set\nCONFIG_E=\"y\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		opts, err := parseKernelConfig(bytes.NewReader(b))
		if err != nil {
			return // only over-long lines
		}
		for k, v := range opts {
			assert.True(t, v == "y" || v == "m", "%s=%s", k, v)
			assert.Contains(t, string(b), "CONFIG_"+k+"=")
		}
	})
}

func FuzzParseCgroupFiles(f *testing.F) {
	seed(f, "proc/cgroups")
	seed(f, "proc/self/cgroup")
	f.Add([]byte("0::/\n1:cpu,cpuacct:/a\n::\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for name := range parseProcCgroups(b) {
			assert.NotEmpty(t, name)
		}
		for c, p := range parseSelfCgroup(b) {
			assert.NotContains(t, c, ",")
			assert.NotContains(t, p, "\n")
		}
	})
}

func FuzzParseMeminfoAndSwaps(f *testing.F) {
	seed(f, "proc/meminfo")
	f.Add([]byte("Filename Type Size Used Priority\n/dev/sda2 partition 8388604 0 -2\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for k := range parseMeminfo(b) {
			assert.NotContains(t, k, ":")
		}
		for _, d := range parseSwaps(b) {
			assert.NotEmpty(t, d.Name)
		}
	})
}

func FuzzParseRoutes(f *testing.F) {
	seed(f, "proc/net/route")
	seed(f, "proc/net/ipv6_route")
	f.Fuzz(func(t *testing.T, b []byte) {
		if rs, err := parseIPv4Routes(b); err == nil {
			for _, r := range rs {
				assert.True(t, r.Prefix.IsValid() && r.Prefix.Addr().Is4())
				assert.Equal(t, r.Prefix, r.Prefix.Masked())
			}
		}
		if rs, err := parseIPv6Routes(b); err == nil {
			for _, r := range rs {
				assert.True(t, r.Prefix.IsValid() && r.Prefix.Addr().Is6())
			}
		}
	})
}

func FuzzResolvConf(f *testing.F) {
	seed(f, "etc/resolv.conf")
	f.Add([]byte("nameserver 127.0.0.53\nnameserver ::1\nnameserver fe80::1%eth0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ns := resolvNameservers(b)
		if onlyLoopback(ns) {
			for _, n := range ns {
				a, err := netip.ParseAddr(strings.SplitN(n, "%", 2)[0])
				require.NoError(t, err)
				assert.True(t, a.IsLoopback())
			}
		}
	})
}

func FuzzParseCapBnd(f *testing.F) {
	seed(f, "proc/self/status")
	f.Add([]byte("CapBnd:\tzz\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := parseCapBnd(b); err == nil {
			assert.Contains(t, string(b), "CapBnd:")
		}
	})
}

func FuzzParseTpctlUnit(f *testing.F) {
	f.Add([]byte(tpctlUnit))
	f.Add([]byte("[Unit]\nX-Tpctl-Managed = true\n[Service]\nExecStart=\\\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		marked, bin := parseTpctlUnit(b)
		if marked {
			assert.Contains(t, string(b), TpctlUnitMarker)
		}
		assert.NotContains(t, bin, " ")
	})
}

func FuzzParseNFTableDump(f *testing.F) {
	f.Add(append(nlmsg(10<<8, nftTable(1, "filter")), nlmsg(nlmsgDone, make([]byte, 4))...))
	f.Add(nlmsg(nlmsgError, []byte{0xff, 0xff, 0xff, 0xff}))
	f.Fuzz(func(t *testing.T, b []byte) {
		tables, _, err := parseNFTableDump(b)
		if err == nil {
			for _, tb := range tables {
				assert.Contains(t, tb, " ")
			}
		}
	})
}

func FuzzModuleLists(f *testing.F) {
	seed(f, "lib/modules/6.1.0-18-amd64/modules.dep")
	seed(f, "proc/modules")
	f.Fuzz(func(t *testing.T, b []byte) {
		for n := range parseModuleList(b) {
			assert.NotContains(t, n, "-")
			assert.NotContains(t, n, "/")
		}
		for n := range parseProcModules(b) {
			assert.NotContains(t, n, "-")
		}
	})
}

func FuzzHostname(f *testing.F) {
	for _, s := range []string{"node1", "Node1", "a.b-c", "-x", "", strings.Repeat("a", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ok, why := validHostname(s)
		if ok {
			assert.Empty(t, why)
			assert.Equal(t, strings.ToLower(s), s)
			assert.LessOrEqual(t, len(s), 253)
		} else {
			assert.NotEmpty(t, why)
		}
		if utf8.ValidString(s) {
			sug := suggestHostname(s)
			good, _ := validHostname(sug)
			if len(sug) <= 63 && !strings.Contains(sug, "..") && !strings.Contains(sug, ".-") && !strings.Contains(sug, "-.") {
				assert.True(t, good, "suggestion %q for %q", sug, s)
			}
		}
	})
}

func FuzzKernelReleaseAndCIDRs(f *testing.F) {
	f.Add("6.1.0-18-amd64", "10.42.0.0/16,fd00::/56")
	f.Add("3.10", "10.0.0.1/8")
	f.Fuzz(func(t *testing.T, rel, cidrs string) {
		if v, err := parseKernelRelease(rel); err == nil {
			assert.GreaterOrEqual(t, v.minor, 0)
		}
		if ps, err := parseCIDRs(cidrs); err == nil {
			for _, p := range ps {
				assert.Equal(t, p, p.Masked())
			}
		}
	})
}

func FuzzWrap(f *testing.F) {
	f.Add("a b c d e", 3)
	f.Add("→ remedy with unicode ünïcödé words", 10)
	f.Fuzz(func(t *testing.T, s string, width int) {
		if width > 1000 || width < -1000 {
			return
		}
		lines := wrap(s, width)
		require.NotEmpty(t, lines)
		if width > 0 {
			assert.Equal(t, strings.Join(strings.Fields(s), " "), strings.Join(strings.Fields(strings.Join(lines, " ")), " "))
		}
	})
}
