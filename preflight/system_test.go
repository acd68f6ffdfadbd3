package preflight

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPrivilegedUser(t *testing.T) {
	h := fakeHost(t, "v2", nil)
	assert.Equal(t, Pass, runOne(t, privilegedUserCheck(), h).Severity)

	h.UID = func() int { return 1000 }
	r := runOne(t, privilegedUserCheck(), h)
	assert.Equal(t, Fail, r.Severity)
	assert.Equal(t, "IsPrivilegedUser", r.Name)
	assert.Contains(t, r.Message, "user id 1000")
	assert.Contains(t, r.Remedy, "root")
}

func TestOSAndArch(t *testing.T) {
	h := fakeHost(t, "v2", nil)
	assert.Equal(t, Pass, runOne(t, osCheck(), h).Severity)
	for arch, want := range map[string]Severity{"amd64": Pass, "arm64": Pass, "riscv64": Fail, "386": Fail} {
		h.GOARCH = arch
		assert.Equal(t, want, runOne(t, archCheck(), h).Severity, arch)
	}
	h.GOOS = "darwin"
	r := runOne(t, osCheck(), h)
	assert.Equal(t, Fail, r.Severity)
	assert.Contains(t, r.Message, "darwin")
}

func TestSystemd(t *testing.T) {
	assert.Equal(t, Pass, runOne(t, systemdCheck(), fakeHost(t, "v2", nil)).Severity)

	r := runOne(t, systemdCheck(), fakeHost(t, "v2", map[string]string{"proc/1/comm": "process_api\n"}))
	assert.Equal(t, Fail, r.Severity)
	assert.Contains(t, r.Message, `"process_api"`)
	assert.NotEmpty(t, r.Remedy)

	r = runOne(t, systemdCheck(), fakeHost(t, "v2", map[string]string{"proc/1/comm": del}))
	assert.Equal(t, Warn, r.Severity, "an unreadable fact is a warning, not a hidden error")
}

func TestHostname(t *testing.T) {
	cases := map[string]Severity{
		"node1":              Pass,
		"edge-01.example.io": Pass,
		"Node1":              Fail,
		"my_host":            Fail,
		"-bad":               Fail,
		"a..b":               Fail,
		"localhost":          Warn,
	}
	for name, want := range cases {
		h := fakeHost(t, "v2", map[string]string{"proc/sys/kernel/hostname": name + "\n"})
		r := runOne(t, hostnameCheck(), h)
		assert.Equal(t, want, r.Severity, name)
		if want == Fail {
			assert.Contains(t, r.Remedy, "hostnamectl set-hostname", name)
		}
	}
	r := runOne(t, hostnameCheck(), fakeHost(t, "v2", map[string]string{"proc/sys/kernel/hostname": "My_Host\n"}))
	assert.Contains(t, r.Remedy, "my-host")
}

func TestProxy(t *testing.T) {
	h := fakeHost(t, "v2", nil)
	r := runOne(t, proxyCheck("10.42.0.0/16", "10.43.0.0/16", false), h)
	assert.Equal(t, Pass, r.Severity)
	assert.Equal(t, "no proxy variables set", r.Message)

	env := map[string]string{"HTTPS_PROXY": "http://alice:s3cret@proxy.example:3128", "NO_PROXY": "example.net"}
	h.LookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	r = runOne(t, proxyCheck("10.42.0.0/16", "10.43.0.0/16", false), h)
	assert.Equal(t, Pass, r.Severity)
	assert.Contains(t, r.Message, "HTTPS_PROXY=http://alice:xxxxx@proxy.example:3128")
	assert.Contains(t, r.Message, "NO_PROXY=example.net")
	assert.Contains(t, r.Message, "carried into K3s")
	assert.NotContains(t, r.Message, "s3cret", "proxy passwords are never printed")
}

func TestOOMScoreAdj(t *testing.T) {
	h := fakeHost(t, "v2", nil)
	assert.Equal(t, Pass, runOne(t, oomScoreAdjCheck(), h).Severity)
	f := GatherFacts(h)
	assert.True(t, f.CapSysResource)
	assert.False(t, f.RestrictOOMScoreAdj)

	// This project's VMs: CapBnd 000001fffeffffff lacks bit 24.
	h = fakeHost(t, "v2", map[string]string{"proc/self/status": "Name:\ttpctl\nCapBnd:\t000001fffeffffff\n"})
	r := runOne(t, oomScoreAdjCheck(), h)
	assert.Equal(t, Warn, r.Severity)
	assert.Contains(t, r.Message, "restrict_oom_score_adj = true")
	f = GatherFacts(h)
	assert.False(t, f.CapSysResource)
	assert.True(t, f.RestrictOOMScoreAdj)

	h = fakeHost(t, "v2", map[string]string{"proc/self/status": "Name:\ttpctl\n"})
	assert.Equal(t, Warn, runOne(t, oomScoreAdjCheck(), h).Severity)
	assert.True(t, GatherFacts(h).RestrictOOMScoreAdj, "unknown capability: choose the setting that always works")
}

func TestSELinux(t *testing.T) {
	assert.Equal(t, "SELinux is not enabled", runOne(t, seLinuxCheck(), fakeHost(t, "v2", nil)).Message)

	r := runOne(t, seLinuxCheck(), fakeHost(t, "v2", map[string]string{"sys/fs/selinux/enforce": "1"}))
	assert.Equal(t, Warn, r.Severity)
	assert.Contains(t, r.Message, "enforcing")
	assert.Contains(t, r.Remedy, "k3s-selinux")

	r = runOne(t, seLinuxCheck(), fakeHost(t, "v2", map[string]string{"sys/fs/selinux/enforce": "0"}))
	assert.Equal(t, Pass, r.Severity)
	assert.Contains(t, r.Message, "permissive")
}

func TestAppArmor(t *testing.T) {
	assert.Equal(t, "AppArmor is not enabled", runOne(t, appArmorCheck(), fakeHost(t, "v2", nil)).Message)

	enabled := map[string]string{"sys/module/apparmor/parameters/enabled": "Y\n"}
	r := runOne(t, appArmorCheck(), fakeHost(t, "v2", enabled))
	assert.Equal(t, Warn, r.Severity)
	assert.Contains(t, r.Remedy, "apparmor_parser")

	enabled["usr/sbin/apparmor_parser"] = "#!/bin/true\n"
	r = runOne(t, appArmorCheck(), fakeHost(t, "v2", enabled))
	assert.Equal(t, Pass, r.Severity)
	assert.Contains(t, r.Message, "/usr/sbin/apparmor_parser")

	r = runOne(t, appArmorCheck(), fakeHost(t, "v2", map[string]string{"sys/module/apparmor/parameters/enabled": "N\n"}))
	assert.Equal(t, "AppArmor is not enabled", r.Message)
}

func TestTimeSync(t *testing.T) {
	h := fakeHost(t, "v2", map[string]string{"proc/77/comm": "chronyd\n"})
	r := runOne(t, timeSyncCheck(), h)
	assert.Equal(t, Pass, r.Severity)
	assert.Contains(t, r.Message, "chronyd (pid 77)")

	h = fakeHost(t, "v2", map[string]string{"proc/77/comm": "chronyd\n"})
	h.ClockSynced = func() (bool, error) { return false, nil }
	r = runOne(t, timeSyncCheck(), h)
	assert.Equal(t, Warn, r.Severity)
	assert.Contains(t, r.Message, "not synchronised yet although chronyd (pid 77) is running")

	h = fakeHost(t, "v2", nil)
	h.ClockSynced = func() (bool, error) { return false, nil }
	r = runOne(t, timeSyncCheck(), h)
	assert.Equal(t, Warn, r.Severity)
	assert.Contains(t, r.Message, "no time daemon")
	assert.Contains(t, r.Remedy, "timedatectl set-ntp true")

	h = fakeHost(t, "v2", map[string]string{"run/systemd/timesync/synchronized": ""})
	h.ClockSynced = func() (bool, error) { return false, errBoom }
	assert.Equal(t, Pass, runOne(t, timeSyncCheck(), h).Severity)

	h = fakeHost(t, "v2", nil)
	h.ClockSynced = func() (bool, error) { return false, errBoom }
	r = runOne(t, timeSyncCheck(), h)
	assert.Equal(t, Warn, r.Severity)
	assert.Contains(t, r.Message, "boom")
}
