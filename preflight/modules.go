package preflight

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"path"
	"strings"
)

// kernelModule is a module K3s needs, with the kernel option that builds it.
type kernelModule struct {
	Name    string
	Config  string // kernel option without CONFIG_
	Require bool
	Why     string
}

// kernelModules returns the modules to look for. overlay and br_netfilter
// are the two K3s's unit loads before it starts; the backend module depends
// on the chosen flannel backend.
func kernelModules(o Options) []kernelModule {
	list := []kernelModule{
		{"overlay", "OVERLAY_FS", true, "containerd's overlayfs snapshotter"},
		{"br_netfilter", "BRIDGE_NETFILTER", true, "iptables on bridged pod traffic"},
		{"nf_conntrack", "NF_CONNTRACK", true, "connection tracking for Services"},
	}
	if o.cni() == CNIFlannel {
		switch o.flannelBackend() {
		case "vxlan":
			list = append(list, kernelModule{"vxlan", "VXLAN", true, "flannel's VXLAN backend"})
		case "wireguard-native":
			list = append(list, kernelModule{"wireguard", "WIREGUARD", true, "flannel's WireGuard backend"})
		}
	}
	return list
}

// moduleInfo is what the host says about modules. Each set is nil when its
// source could not be read (a kernel without module support has no
// /proc/modules).
type moduleInfo struct {
	release string
	loaded  map[string]bool // /proc/modules
	builtin map[string]bool // /lib/modules/<release>/modules.builtin
	dir     string          // /lib/modules/<release> or /usr/lib/modules/<release>, "" if absent
}

func (h *Host) moduleInfo() (moduleInfo, error) {
	return h.modules.get(func() (moduleInfo, error) {
		rel, err := h.KernelRelease()
		if err != nil {
			return moduleInfo{}, err
		}
		mi := moduleInfo{release: rel}
		if b, err := h.ReadFile("/proc/modules"); err == nil {
			mi.loaded = parseProcModules(b)
		}
		for _, dir := range []string{"/lib/modules/" + rel, "/usr/lib/modules/" + rel} {
			if h.Exists(dir) {
				mi.dir = dir
				break
			}
		}
		if mi.dir != "" {
			if b, err := h.ReadFile(mi.dir + "/modules.builtin"); err == nil {
				mi.builtin = parseModuleList(b)
			}
		}
		return mi, nil
	})
}

// moduleDeps reads modules.dep (the loadable modules) only when a module is
// neither loaded nor built in: the file is large on distribution kernels.
func (h *Host) moduleDeps(dir string) map[string]bool {
	deps, _ := h.modDeps.get(func() (map[string]bool, error) {
		if dir == "" {
			return nil, nil
		}
		b, err := h.ReadFile(dir + "/modules.dep")
		if err != nil {
			return nil, err
		}
		return parseModuleList(b), nil
	})
	return deps
}

// parseProcModules reads the first field of each /proc/modules line.
func parseProcModules(b []byte) map[string]bool {
	set := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 {
			set[normalizeModule(f[0])] = true
		}
	}
	return set
}

// parseModuleList reads module paths (modules.builtin, modules.dep: the path
// before an optional ':') and returns their names.
func parseModuleList(b []byte) map[string]bool {
	set := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		p, _, _ := strings.Cut(sc.Text(), ":")
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		name := path.Base(p)
		for _, ext := range []string{".xz", ".zst", ".gz"} {
			name = strings.TrimSuffix(name, ext)
		}
		name = strings.TrimSuffix(name, ".ko")
		if name == "" || name == "/" || name == "." {
			continue
		}
		set[normalizeModule(name)] = true
	}
	return set
}

// normalizeModule makes "br-netfilter" and "br_netfilter" the same name.
func normalizeModule(s string) string { return strings.ReplaceAll(s, "-", "_") }

// kernelModuleCheck yields "KernelModule-<name>": loaded, built in,
// loadable, or missing.
type kernelModuleCheck struct{ modules []kernelModule }

func (kernelModuleCheck) Name() string { return "KernelModule" }

func (c kernelModuleCheck) Run(_ context.Context, h *Host) []Result {
	mi, err := h.moduleInfo()
	if err != nil {
		return []Result{{Name: c.Name(), Severity: Warn,
			Message: fmt.Sprintf("cannot check kernel modules: %s", err),
			Remedy:  "make /proc readable so kernel modules can be checked"}}
	}
	kc, kcErr := h.kernelConfig()
	out := make([]Result, 0, len(c.modules))
	for _, m := range c.modules {
		out = append(out, checkModule(h, mi, kc, kcErr, m))
	}
	return out
}

func checkModule(h *Host, mi moduleInfo, kc kernelConfig, kcErr error, m kernelModule) Result {
	r := Result{Name: "KernelModule-" + m.Name}
	opt := kc.opts[m.Config]
	switch {
	case mi.loaded[m.Name]:
		return r.pass("loaded, for " + m.Why)
	case mi.builtin[m.Name]:
		return r.pass("built into the kernel, for " + m.Why)
	case opt == "y":
		return r.pass(fmt.Sprintf("built into the kernel (CONFIG_%s=y), for %s", m.Config, m.Why))
	}
	if h.moduleDeps(mi.dir)[m.Name] {
		return r.pass(fmt.Sprintf("loadable, not loaded yet (K3s loads it when it starts), for %s", m.Why))
	}
	modDir := mi.dir
	if modDir == "" {
		modDir = "/lib/modules/" + mi.release
	}
	pkgRemedy := fmt.Sprintf("install the kernel's module package (Debian/Ubuntu: linux-modules-extra-%s; RHEL: kernel-modules-extra), then modprobe %s", mi.release, m.Name)
	if opt == "m" {
		msg := fmt.Sprintf("CONFIG_%s=m but module %s is not loaded and not found under %s (%s)", m.Config, m.Name, modDir, m.Why)
		if m.Require {
			return r.fail(msg, pkgRemedy)
		}
		return r.warn(msg, pkgRemedy)
	}
	if mi.loaded == nil && mi.builtin == nil && mi.dir == "" && kcErr != nil {
		return r.warn(fmt.Sprintf("cannot tell whether %s is available: no /proc/modules, no %s and no kernel config (%s)", m.Name, modDir, m.Why),
			fmt.Sprintf("check by hand with modprobe %s", m.Name))
	}
	msg := fmt.Sprintf("module %s is not loaded, not built in and not found under %s (%s)", m.Name, modDir, m.Why)
	if kcErr == nil {
		msg = fmt.Sprintf("module %s is missing: CONFIG_%s is not set and no module file was found (%s)", m.Name, m.Config, m.Why)
	}
	if m.Require {
		return r.fail(msg, pkgRemedy)
	}
	return r.warn(msg, pkgRemedy)
}
