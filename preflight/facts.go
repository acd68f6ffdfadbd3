package preflight

// Facts are what preflight learnt about the host that the installer acts on.
// They are part of the JSON report ("facts") and of the Go API; the installer
// reads them instead of probing the host a second time.
type Facts struct {
	OS   string `json:"os"`
	Arch string `json:"arch"`
	// KernelRelease is /proc/sys/kernel/osrelease ("" when unreadable).
	KernelRelease string `json:"kernelRelease,omitempty"`
	// InitSystem is the name of PID 1; Systemd is true when it is systemd.
	InitSystem string `json:"initSystem,omitempty"`
	Systemd    bool   `json:"systemd"`
	// CgroupVersion is 1 or 2, 0 when unknown.
	CgroupVersion int `json:"cgroupVersion"`
	// CapSysResource is true when CAP_SYS_RESOURCE is in the bounding set.
	CapSysResource bool `json:"capSysResource"`
	// RestrictOOMScoreAdj tells the installer to set containerd's
	// restrict_oom_score_adj = true (CAP_SYS_RESOURCE missing or unknown).
	RestrictOOMScoreAdj bool `json:"restrictOOMScoreAdj"`
	// KubeletArgs are kubelet arguments the installer passes to K3s
	// (--kubelet-arg=<value>): "fail-cgroupv1=false" on cgroup v1,
	// "resolv-conf=<file>" when /etc/resolv.conf has only loopback resolvers
	// and an upstream list exists.
	KubeletArgs []string `json:"kubeletArgs,omitempty"`
	// K3s describes a K3s already on the host (nil when none).
	K3s *K3sFact `json:"k3s,omitempty"`
	// HostListeners are the ports other programs serve on the host's
	// addresses, outside K3s's port table and the ephemeral range (found
	// by the port check; empty when it did not run).
	HostListeners []HostListener `json:"hostListeners,omitempty"`
}

// K3sFact is an existing K3s.
type K3sFact struct {
	// Binary is the K3s binary ("" when only directories were found).
	Binary string `json:"binary,omitempty"`
	// InstalledByTpctl is true when K3sUnitPath carries the tpctl marker.
	InstalledByTpctl bool `json:"installedByTpctl"`
}

// GatherFacts reads the facts through the Host (reusing what the checks
// already read).
func GatherFacts(h *Host) Facts {
	f := Facts{OS: h.GOOS, Arch: h.GOARCH, RestrictOOMScoreAdj: true}
	f.KernelRelease, _ = h.KernelRelease()
	f.InitSystem, _ = h.initSystem()
	f.Systemd = f.InitSystem == "systemd"
	if ci, err := h.cgroupInfo(); err == nil {
		f.CgroupVersion = ci.Version
	}
	if bnd, err := h.capBoundingSet(); err == nil {
		f.CapSysResource = bnd&(1<<capSysResource) != 0
		f.RestrictOOMScoreAdj = !f.CapSysResource
	}
	if f.CgroupVersion == 1 {
		f.KubeletArgs = append(f.KubeletArgs, "fail-cgroupv1=false")
	}
	if up := h.upstreamResolvConf(); up != "" {
		f.KubeletArgs = append(f.KubeletArgs, "resolv-conf="+up)
	}
	f.HostListeners = h.listeners
	if ii, err := h.installInfo(); err == nil && (ii.ByTpctl || len(ii.K3s) > 0) {
		f.K3s = &K3sFact{Binary: ii.K3sBinary, InstalledByTpctl: ii.ByTpctl}
	}
	return f
}
