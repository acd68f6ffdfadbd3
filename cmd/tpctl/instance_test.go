package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/internal/cli"
)

func TestInstanceListGet(t *testing.T) {
	m := mgmtCluster(t)
	r := mgmtRun(t, newInstanceCmdWith(mgmtDeps(m, false)), "", "list")
	require.NoError(t, r.err)
	assert.Contains(t, r.out, "core  0          tcp/2020")

	r = mgmtRun(t, newInstanceCmdWith(mgmtDeps(m, false)), "", "get", "-o", "json")
	require.NoError(t, r.err)
	var inst v1alpha1.CoreInstance
	require.NoError(t, json.Unmarshal([]byte(r.out), &inst))
	assert.Equal(t, "core", inst.Name, "the only instance when none is named")
	assert.Equal(t, v1alpha1.KindCoreInstance, inst.Kind)

	r = mgmtRun(t, newInstanceCmdWith(mgmtDeps(m, false)), "", "get", "edge")
	assert.EqualError(t, r.err, `core instance "edge" not found in namespace "tp"; existing: core`)

	m.AddInstance(&v1alpha1.CoreInstance{ObjectMeta: metav1.ObjectMeta{Name: "backup"}})
	r = mgmtRun(t, newInstanceCmdWith(mgmtDeps(m, false)), "", "get")
	assert.ErrorContains(t, r.err, "several core instances (backup, core): choose one")
	assert.Equal(t, cli.ExitUsage, cli.ExitCode(r.err))
}

func TestInstanceUpdate(t *testing.T) {
	m := mgmtCluster(t)
	run := func(args ...string) mgmtResult {
		return mgmtRun(t, newInstanceCmdWith(mgmtDeps(m, false)), "", append([]string{"update"}, args...)...)
	}
	r := run("core", "--https-proxy", "http://proxy.test:3128", "--no-proxy", "localhost,.svc", "--health-check-port", "2030")
	require.NoError(t, r.err)
	assert.Contains(t, r.out, `core instance "core" updated`)
	assert.Contains(t, r.out, "tcp/2030")
	inst, err := m.GetInstance(t.Context(), "core")
	require.NoError(t, err)
	assert.Equal(t, "http://proxy.test:3128", inst.Spec.HTTPSProxy)
	assert.Equal(t, "localhost,.svc", inst.Spec.NoProxy)
	assert.Equal(t, int32(2030), inst.Spec.HealthCheckPort())

	require.NoError(t, run("--no-health-check", "--https-proxy", "").err)
	inst, err = m.GetInstance(t.Context(), "core")
	require.NoError(t, err)
	assert.False(t, inst.Spec.HealthCheckEnabled())
	assert.Empty(t, inst.Spec.HTTPSProxy)
	assert.Equal(t, "localhost,.svc", inst.Spec.NoProxy, "not given, not changed")

	r = run("--dry-run", "--http-proxy", "http://p:1")
	require.NoError(t, r.err)
	assert.Contains(t, r.out, "httpProxy: http://p:1")
	inst, err = m.GetInstance(t.Context(), "core")
	require.NoError(t, err)
	assert.Empty(t, inst.Spec.HTTPProxy, "dry run")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "nothing to change"},
		{[]string{"--health-check-port", "2021", "--no-health-check"}, "exclude each other"},
		{[]string{"--http-proxy", "proxy:3128"}, "want http://host:port"},
		{[]string{"--health-check-port", "0"}, "health-check port 0"},
	} {
		r := run(tc.args...)
		require.Error(t, r.err, "%v", tc.args)
		assert.Contains(t, r.err.Error(), tc.want)
		assert.Equal(t, cli.ExitUsage, cli.ExitCode(r.err), "%v", tc.args)
	}
}
