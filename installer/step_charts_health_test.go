package installer

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Without servicelb the health-check pipeline is a NodePort Service and
// 2020 is outside the node port range: the summary prints the node port
// URL that answered, never <node>:2020, which nothing serves.
func TestSummaryHealthCheckUnderNodePort(t *testing.T) {
	ci := newChartInstall(t, Config{NodeIP: "192.0.2.10", Disable: []string{"servicelb"}}, "1.2.3")
	rec, err := ci.run(t)
	require.NoError(t, err)
	logs := strings.Join(rec.messages("", EventLog), "\n")
	assert.Contains(t, logs, "its health check (TCP 2020) answers from this host at http://192.0.2.10:31234/api/v1/health")
	assert.NotContains(t, logs, ":2020/api/v1/health")
	assert.Equal(t, []string{"http://192.0.2.10:31234/api/v1/health"}, ci.cluster.probed)

	// Before the URL is known (a plan that did not get that far), the
	// line still names a node port, not 2020.
	r := &chartsRun{Charts: ci.charts, env: newEnv(ci.opts), src: map[string]*chartSource{}}
	line := r.healthCheckLine()
	assert.Contains(t, line, "http://192.0.2.10:<node port>/api/v1/health")
	assert.NotContains(t, line, ":2020/")
}

// The install does not end while the printed URL refuses: it asks again,
// says so, and ends once it answers.
func TestInstallWaitsUntilTheHealthCheckAnswers(t *testing.T) {
	ci := newChartInstall(t, Config{NodeIP: "192.0.2.10"}, "1.2.3")
	ci.cluster.refuse = 2
	plan, env, err := NewInstallPlan(context.Background(), ci.opts)
	require.NoError(t, err)
	rec := &recorder{}
	require.NoError(t, Run(context.Background(), plan, rec))
	url := "http://198.51.100.7:2020/api/v1/health"
	assert.Equal(t, []string{url, url, url}, ci.cluster.probed, "asked until it answered, then no more")
	assert.Contains(t, rec.messages("wait for core instance", EventProgress),
		"waiting for the health check "+url+" to answer from this host (connection refused)")
	assert.Equal(t, url, HealthCheckURLOf(env))
	assert.Equal(t, []string{"CoreInstance default/core is Ready; its health check answers at " + url}, rec.messages("wait for core instance", EventDone))
}

func TestHealthCheckURL(t *testing.T) {
	svc := func(typ corev1.ServiceType, nodePort int32, ingress ...string) *corev1.Service {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "core-health"},
			Spec: corev1.ServiceSpec{Type: typ, ClusterIP: "10.43.0.20", Ports: []corev1.ServicePort{
				{Name: "other", Port: 9, NodePort: 30009}, {Name: "health", Port: 2020, NodePort: nodePort}}}}
		for _, ip := range ingress {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
		}
		return s
	}
	for _, c := range []struct {
		name          string
		svc           *corev1.Service
		node          string
		url, awaiting string
	}{
		{"load balancer: the node's own ingress address", svc(corev1.ServiceTypeLoadBalancer, 31000, "10.0.0.9", "10.0.0.5"), "10.0.0.5", "http://10.0.0.5:2020/api/v1/health", ""},
		{"load balancer: another address", svc(corev1.ServiceTypeLoadBalancer, 31000, "10.0.0.9"), "10.0.0.5", "http://10.0.0.9:2020/api/v1/health", ""},
		{"load balancer pending", svc(corev1.ServiceTypeLoadBalancer, 31000), "10.0.0.5", "", "a load balancer address for Service default/core-health"},
		{"node port", svc(corev1.ServiceTypeNodePort, 31000), "10.0.0.5", "http://10.0.0.5:31000/api/v1/health", ""},
		{"node port, IPv6 node", svc(corev1.ServiceTypeNodePort, 31000), "fd00::5", "http://[fd00::5]:31000/api/v1/health", ""},
		{"node port not allocated", svc(corev1.ServiceTypeNodePort, 0), "10.0.0.5", "", "a node port for Service default/core-health"},
		{"node address unknown", svc(corev1.ServiceTypeNodePort, 31000), "", "", "the node's address"},
		{"cluster IP", svc(corev1.ServiceTypeClusterIP, 0), "10.0.0.5", "http://10.43.0.20:2020/api/v1/health", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			url, missing := HealthCheckURL(c.svc, c.node)
			assert.Equal(t, c.url, url)
			if c.awaiting == "" {
				assert.Empty(t, missing)
			} else {
				assert.Contains(t, missing, c.awaiting)
			}
		})
	}
}
