package preflight

import (
	"bytes"
	"compress/gzip"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKernelVersion(t *testing.T) {
	cases := []struct {
		release string
		cilium  bool
		want    Severity
	}{
		{"6.1.0-18-amd64", false, Pass},
		{"4.19.0", false, Pass},
		{"4.14.336-1", false, Warn},
		{"3.10.0-1160.el7.x86_64", false, Warn},
		{"3.2.0", false, Fail},
		{"5.4.0-150-generic", true, Warn},
		{"4.19.0", true, Fail},
		{"6.8.0", true, Pass},
		{"garbage", false, Warn},
	}
	for _, c := range cases {
		h := fakeHost(t, "v2", map[string]string{"proc/sys/kernel/osrelease": c.release + "\n"})
		r := runOne(t, kernelVersionCheck{cilium: c.cilium}, h)
		assert.Equal(t, c.want, r.Severity, "%s cilium=%v: %s", c.release, c.cilium, r.Message)
		if c.want != Pass {
			assert.NotEmpty(t, r.Remedy, c.release)
		}
	}
	r := runOne(t, kernelVersionCheck{}, fakeHost(t, "v2", map[string]string{"proc/sys/kernel/osrelease": del}))
	assert.Equal(t, Warn, r.Severity)
}

func TestKernelConfigFromBoot(t *testing.T) {
	h := fakeHost(t, "v2", nil)
	rs := kernelConfigCheck{options: kernelOptions(Options{})}.Run(context.Background(), h)
	m := byName(t, rs)
	require.Contains(t, m, "KernelConfig-CONFIG_VXLAN")
	require.Contains(t, m, "KernelConfig-CONFIG_NETFILTER_XT_MATCH_COMMENT")
	assert.NotContains(t, m, "KernelConfig-CONFIG_WIREGUARD", "WireGuard is only needed with its backend")
	assert.NotContains(t, m, "KernelConfig-CONFIG_BPF", "eBPF options are only needed with Cilium")
	for _, r := range rs {
		assert.Equal(t, Pass, r.Severity, "%s: %s", r.Name, r.Message)
	}
	assert.Contains(t, m["KernelConfig-CONFIG_OVERLAY_FS"].Message, "module")
	assert.Contains(t, m["KernelConfig-CONFIG_NAMESPACES"].Message, "built in")
}

func TestKernelConfigMissingOptions(t *testing.T) {
	cfg := "CONFIG_NAMESPACES=y\n# CONFIG_VXLAN is not set\nCONFIG_USER_NS=n\n"
	h := fakeHost(t, "v2", map[string]string{"boot/config-6.1.0-18-amd64": cfg})
	m := byName(t, kernelConfigCheck{options: kernelOptions(Options{})}.Run(context.Background(), h))
	assert.Equal(t, Pass, m["KernelConfig-CONFIG_NAMESPACES"].Severity)
	assert.Equal(t, Fail, m["KernelConfig-CONFIG_VXLAN"].Severity, "required option")
	assert.Contains(t, m["KernelConfig-CONFIG_VXLAN"].Message, "/boot/config-6.1.0-18-amd64")
	assert.Equal(t, Warn, m["KernelConfig-CONFIG_USER_NS"].Severity, "optional option")
	assert.NotEmpty(t, m["KernelConfig-CONFIG_VXLAN"].Remedy)
}

func TestKernelConfigPrefersProcConfigGz(t *testing.T) {
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	_, err := w.Write([]byte("CONFIG_VXLAN=y\n"))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	h := fakeHost(t, "v2", map[string]string{"proc/config.gz": gz.String()})
	rs := kernelConfigCheck{options: []kernelOption{{"VXLAN", true, "x"}, {"OVERLAY_FS", true, "y"}}}.Run(context.Background(), h)
	m := byName(t, rs)
	assert.Equal(t, Pass, m["KernelConfig-CONFIG_VXLAN"].Severity)
	assert.Equal(t, Fail, m["KernelConfig-CONFIG_OVERLAY_FS"].Severity, "only /proc/config.gz was read")
	assert.Contains(t, m["KernelConfig-CONFIG_OVERLAY_FS"].Message, "/proc/config.gz")

	h = fakeHost(t, "v2", map[string]string{"proc/config.gz": "not gzip"})
	r := runOne(t, kernelConfigCheck{options: kernelOptions(Options{})}, h)
	assert.Equal(t, Warn, r.Severity)
	assert.Contains(t, r.Message, "decompress /proc/config.gz")
}

func TestKernelConfigAbsentIsOneWarning(t *testing.T) {
	h := fakeHost(t, "v2", map[string]string{"boot": del})
	r := runOne(t, kernelConfigCheck{options: kernelOptions(Options{})}, h)
	assert.Equal(t, "KernelConfig", r.Name)
	assert.Equal(t, Warn, r.Severity)
	assert.Contains(t, r.Message, "/boot/config-6.1.0-18-amd64")
	assert.Contains(t, r.Remedy, "/boot/config-$(uname -r)")
}

func TestKernelOptionsFollowNetworking(t *testing.T) {
	names := func(o Options) string {
		var s []string
		for _, k := range kernelOptions(o) {
			s = append(s, k.Name)
		}
		return " " + strings.Join(s, " ") + " "
	}
	assert.Contains(t, names(Options{FlannelBackend: "wireguard-native"}), " WIREGUARD ")
	assert.NotContains(t, names(Options{FlannelBackend: "wireguard-native"}), " VXLAN ")
	assert.NotContains(t, names(Options{FlannelBackend: "host-gw"}), " VXLAN ")
	cilium := names(Options{CNI: CNICilium})
	assert.Contains(t, cilium, " BPF_SYSCALL ")
	assert.Contains(t, cilium, " NET_SCH_INGRESS ")
}

func TestKernelModules(t *testing.T) {
	ctx := context.Background()
	all := []kernelModule{
		{"overlay", "OVERLAY_FS", true, "a"},
		{"br_netfilter", "BRIDGE_NETFILTER", true, "b"},
		{"vxlan", "VXLAN", true, "c"},
		{"ext4", "EXT4_FS", true, "d"},
		{"wireguard", "WIREGUARD", false, "e"},
	}

	// Loaded, loadable (modules.dep), built in (modules.builtin).
	m := byName(t, kernelModuleCheck{modules: all}.Run(ctx, fakeHost(t, "v2", nil)))
	assert.Contains(t, m["KernelModule-overlay"].Message, "loaded")
	assert.Contains(t, m["KernelModule-vxlan"].Message, "loadable")
	assert.Contains(t, m["KernelModule-ext4"].Message, "built into the kernel")
	for _, r := range m {
		assert.Equal(t, Pass, r.Severity, r.Name)
	}

	// CONFIG_VXLAN=m but no module file: the modules package is missing.
	h := fakeHost(t, "v2", map[string]string{
		"lib/modules/6.1.0-18-amd64/modules.dep": "kernel/fs/overlayfs/overlay.ko.xz:\n",
		"proc/modules":                           "overlay 151552 0 - Live 0x0\n",
	})
	m = byName(t, kernelModuleCheck{modules: all}.Run(ctx, h))
	assert.Equal(t, Fail, m["KernelModule-vxlan"].Severity)
	assert.Contains(t, m["KernelModule-vxlan"].Message, "CONFIG_VXLAN=m")
	assert.Contains(t, m["KernelModule-vxlan"].Remedy, "linux-modules-extra-6.1.0-18-amd64")
	assert.Equal(t, Fail, m["KernelModule-br_netfilter"].Severity)
	assert.Equal(t, Warn, m["KernelModule-wireguard"].Severity, "optional module")

	// A kernel without module support (no /proc/modules, no /lib/modules):
	// built-in options count, absent ones are missing.
	h = fakeHost(t, "v2", map[string]string{
		"proc/modules": del, "lib/modules": del,
		"boot/config-6.1.0-18-amd64": "CONFIG_OVERLAY_FS=y\nCONFIG_BRIDGE_NETFILTER=y\n",
	})
	m = byName(t, kernelModuleCheck{modules: all[:3]}.Run(ctx, h))
	assert.Equal(t, Pass, m["KernelModule-overlay"].Severity)
	assert.Contains(t, m["KernelModule-overlay"].Message, "CONFIG_OVERLAY_FS=y")
	assert.Equal(t, Fail, m["KernelModule-vxlan"].Severity)
	assert.Contains(t, m["KernelModule-vxlan"].Message, "CONFIG_VXLAN is not set")

	// Nothing readable at all: cannot tell, so warn.
	h = fakeHost(t, "v2", map[string]string{"proc/modules": del, "lib/modules": del, "boot": del})
	m = byName(t, kernelModuleCheck{modules: all[:1]}.Run(ctx, h))
	assert.Equal(t, Warn, m["KernelModule-overlay"].Severity)
	assert.Contains(t, m["KernelModule-overlay"].Message, "cannot tell")
}

func TestParseModuleNames(t *testing.T) {
	got := parseModuleList([]byte("kernel/net/bridge/br_netfilter.ko.zst: kernel/net/bridge/bridge.ko.zst\nkernel/drivers/net/ip-vlan.ko\n\n"))
	assert.Equal(t, map[string]bool{"br_netfilter": true, "ip_vlan": true}, got)
	assert.Equal(t, map[string]bool{"br_netfilter": true, "nf_conntrack": true},
		parseProcModules([]byte("br_netfilter 32768 0 - Live 0x0\nnf-conntrack 1 0 - Live 0x0\n")))
}
