//go:build e2e

package install

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/test/k3slauncher/launcher"
)

var healthURLRE = regexp.MustCompile(`answers from this host at (http://\S+/api/v1/health)`)

// healthURLAnswersAtOnce: the health-check URL the install's summary
// printed answers the first request made right after install returned
// (no retry: the install itself waited for it).
func (e *e2e) healthURLAnswersAtOnce(t *testing.T, r tpctlRun) string {
	t.Helper()
	if _, charts := r.stepEvent("wait for core instance", installer.EventDone); !charts {
		return ""
	}
	var url string
	for _, ev := range r.events {
		if m := healthURLRE.FindStringSubmatch(ev.Message); ev.Type == installer.EventLog && m != nil {
			url = m[1]
		}
	}
	require.NotEmpty(t, url, "the install summary names the health-check URL it asked: %s", r)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, body, err := httpGet(ctx, url)
	require.NoError(t, err, "the first request to %s right after install returned", url)
	assert.Equal(t, http.StatusOK, code, "%s: %s", url, body)
	t.Logf("the health-check URL %s answered the first request after install returned: %d %q", url, code, strings.TrimSpace(body))
	return url
}

// A pipeline configuration: the sink stand-in runs instead of Fluent Bit
// and ignores it; the ports come from --port (--no-auto-ports).
const pipelineConfig = `pipeline:
  inputs:
    - name: dummy
  outputs:
    - name: stdout
      match: '*'
`

// tpctlText runs tpctl inside the host as a user would and returns its
// standard output.
func (e *e2e) tpctlText(ctx context.Context, args ...string) (string, error) {
	return e.h.Exec(ctx, append([]string{tpctlBin}, args...)...)
}

// createPipeline runs `tpctl pipeline create --wait` (Ready: ports
// assigned, pods ready, the load balancer's address published) and
// returns the pipeline it printed.
func (e *e2e) createPipeline(ctx context.Context, t *testing.T, name string, args ...string) *v1alpha1.Pipeline {
	t.Helper()
	cfg := manifestPath("pipeline.yaml")
	require.NoError(t, os.WriteFile(e.h.Path(cfg), []byte(pipelineConfig), 0o644))
	begin := time.Now()
	out, err := e.tpctlText(ctx, append([]string{"pipeline", "create", "--name", name, "--config-file", cfg, "--no-auto-ports",
		"--wait", "--timeout", "4m", "-o", "json"}, args...)...)
	if err != nil {
		e.logState(ctx, t)
	}
	require.NoError(t, err, out)
	var p v1alpha1.Pipeline
	require.NoError(t, json.Unmarshal([]byte(out), &p), out)
	t.Logf("FIGURE pipeline %s Ready (tpctl pipeline create --wait) after %s; ports %s", name, time.Since(begin).Round(time.Millisecond), p.Status.PortSummary)
	return &p
}

// logNetState logs the host's NAT rules and connection tracking entries
// that mention any of ports: which path (servicelb's hostPort DNAT,
// kube-proxy's load balancer rules) bytes to <node address>:<port> took.
func (e *e2e) logNetState(ctx context.Context, t *testing.T, ports ...string) {
	for _, args := range [][]string{{"iptables-save", "-t", "nat"}, {"conntrack", "-L"}} {
		out, err := e.h.Exec(ctx, args...)
		var keep []string
		for _, l := range strings.Split(out, "\n") {
			for _, p := range ports {
				if strings.Contains(l, p) {
					keep = append(keep, l)
					break
				}
			}
		}
		t.Logf("%v, lines naming %v (err %v):\n%s", args, ports, err, strings.Join(keep, "\n"))
	}
}

// logState logs what a failed look at the pipelines needs.
func (e *e2e) logState(ctx context.Context, t *testing.T) {
	for _, args := range [][]string{
		{"get", "pods", "-A", "-o", "wide"},
		{"get", "services", "-A"},
		{"get", "pipelines.telemetry.tpctl.dev", "-A", "-o", "yaml"},
		{"-n", "kube-system", "logs", "-l", "svccontroller.k3s.cattle.io/svcnamespace=default", "--all-containers", "--prefix", "--tail", "30"},
	} {
		out, err := e.kubectl(ctx, args...)
		t.Logf("kubectl %v (err %v):\n%s", args, err, out)
	}
}

func frontend(t *testing.T, p *v1alpha1.Pipeline, proto v1alpha1.Protocol, backend int32) v1alpha1.PortStatus {
	t.Helper()
	for _, ps := range p.Status.Ports {
		if ps.Protocol == proto && ps.Backend == backend {
			require.NotZero(t, ps.Frontend, "%s/%d of %s has no frontend", proto, backend, p.Name)
			return ps
		}
	}
	t.Fatalf("pipeline %s has no port %s/%d: %+v", p.Name, proto, backend, p.Status.Ports)
	return v1alpha1.PortStatus{}
}

// received reads the sink's report through the pipeline's load balancer.
func received(ctx context.Context, port int32) (map[string][]string, error) {
	code, body, err := httpGet(ctx, "http://"+net.JoinHostPort(nodeIP, strconv.Itoa(int(port)))+"/received")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /received: %d %s", code, body)
	}
	var rep struct {
		Ports []struct {
			Protocol string   `json:"protocol"`
			Port     int      `json:"port"`
			Last     []string `json:"last"`
		} `json:"ports"`
	}
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		return nil, fmt.Errorf("decode /received: %w", err)
	}
	out := map[string][]string{}
	for _, p := range rep.Ports {
		k := strings.ToLower(p.Protocol) + "/" + strconv.Itoa(p.Port)
		out[k] = append(out[k], p.Last...)
	}
	return out, nil
}

// sendUntilReceived sends msg to <node address>:frontend over proto, from
// a new socket each time (a UDP flow sent before the node published the
// port must not pin later ones), until the sink reports it on its backend.
func (e *e2e) sendUntilReceived(ctx context.Context, t *testing.T, proto string, front, backend, report int32, msg string) {
	t.Helper()
	addr := net.JoinHostPort(nodeIP, strconv.Itoa(int(front)))
	key := proto + "/" + strconv.Itoa(int(backend))
	var last string
	ok := assert.Eventually(t, func() bool {
		c, err := (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, proto, addr)
		if err != nil {
			last = err.Error()
			return false
		}
		_, err = c.Write([]byte(msg))
		_ = c.Close()
		if err != nil {
			last = err.Error()
			return false
		}
		got, err := received(ctx, report)
		if err != nil {
			last = err.Error()
			return false
		}
		for _, m := range got[key] {
			if strings.Contains(m, msg) {
				return true
			}
		}
		last = fmt.Sprintf("the sink reports %v", got)
		return false
	}, 2*time.Minute, 2*time.Second, "bytes sent over %s to %s never reached the pipeline's %s", proto, addr, key)
	if !ok {
		t.Logf("last look: %s", last)
		e.logState(ctx, t)
		e.logNetState(ctx, t, strconv.Itoa(int(front)), strconv.Itoa(int(report)))
		t.FailNow()
	}
}

// svclbHostPorts lists, per svclb pod in kube-system, the host ports it
// holds ("tcp/80"), and the pods that are not Running.
func (e *e2e) svclbHostPorts(ctx context.Context, t *testing.T) (map[string][]string, []string) {
	t.Helper()
	out, err := e.kubectl(ctx, "-n", "kube-system", "get", "pods", "-o", "json", "-l", "svccontroller.k3s.cattle.io/svcname")
	require.NoError(t, err)
	var l corev1.PodList
	require.NoError(t, json.Unmarshal([]byte(out), &l))
	held := map[string][]string{}
	var notRunning []string
	for _, p := range l.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		if p.Status.Phase != corev1.PodRunning {
			notRunning = append(notRunning, p.Name+" "+string(p.Status.Phase))
		}
		for _, c := range p.Spec.Containers {
			for _, cp := range c.Ports {
				held[p.Name] = append(held[p.Name], strings.ToLower(string(cp.Protocol))+"/"+strconv.Itoa(int(cp.HostPort)))
			}
		}
	}
	return held, notRunning
}

// pipelines: pipelines made with `tpctl pipeline create` and the default
// Service type (LoadBalancer) carry bytes from <node address>:<frontend> to
// their pods over TCP and UDP; one asking for 80 (Traefik's) is moved to a
// free frontend and says why; two asking for the same port get different
// frontends and never share a host port; deleting a pipeline removes its
// svclb DaemonSet and pods.
func (e *e2e) pipelines(t *testing.T) {
	ctx := e.ctx(t, 15*time.Minute)

	// TCP and UDP through the default Service type.
	a := e.createPipeline(ctx, t, "lb-data", "--port", "data=tcp/15170", "--port", "syslog=udp/15140", "--port", "report=tcp/18080",
		"--arg=--tcp=15170", "--arg=--udp=15140", "--arg=--http=:18080")
	assert.Equal(t, v1alpha1.ServiceTypeLoadBalancer, a.Status.ServiceType, "the default Service type with servicelb on")
	svcA := e.waitIngress(ctx, t, "default", "lb-data")
	tcpA, udpA, rep := frontend(t, a, v1alpha1.ProtocolTCP, 15170), frontend(t, a, v1alpha1.ProtocolUDP, 15140), frontend(t, a, v1alpha1.ProtocolTCP, 18080)
	eps, err := e.tpctlText(ctx, "pipeline", "endpoints", "lb-data")
	require.NoError(t, err)
	assert.Contains(t, eps, net.JoinHostPort(nodeIP, strconv.Itoa(int(tcpA.Frontend))), "tpctl pipeline endpoints shows the node address and frontend")
	begin := time.Now()
	e.sendUntilReceived(ctx, t, "tcp", tcpA.Frontend, 15170, rep.Frontend, "tcp through the pipeline's load balancer")
	e.sendUntilReceived(ctx, t, "udp", udpA.Frontend, 15140, rep.Frontend, "udp through the pipeline's load balancer")
	t.Logf("FIGURE TCP and UDP through a pipeline's load balancer: delivered within %s", time.Since(begin).Round(time.Millisecond))

	// 80 is Traefik's: the pipeline gets another frontend and says why.
	b := e.createPipeline(ctx, t, "lb-web", "--port", "web=tcp/80", "--port", "report=tcp/18081", "--arg=--tcp=80", "--arg=--http=:18081")
	web := frontend(t, b, v1alpha1.ProtocolTCP, 80)
	assert.NotEqual(t, int32(80), web.Frontend, "80 is held by Traefik's LoadBalancer Service")
	assert.True(t, web.Reassigned)
	c := meta.FindStatusCondition(b.Status.Conditions, v1alpha1.ConditionPortsAssigned)
	require.NotNil(t, c)
	assert.Contains(t, c.Message, "Traefik", "the reason names the holder")
	got, err := e.tpctlText(ctx, "pipeline", "get", "lb-web")
	require.NoError(t, err)
	assert.Contains(t, got, "Traefik", "tpctl pipeline get shows why the frontend moved:\n%s", got)
	e.waitIngress(ctx, t, "default", "lb-web")
	e.sendUntilReceived(ctx, t, "tcp", web.Frontend, 80, frontend(t, b, v1alpha1.ProtocolTCP, 18081).Frontend, "moved off Traefik's port")

	// Two pipelines asking for the same port: different frontends, each
	// published (no svclb pod left Pending), no host port held twice.
	c1 := e.createPipeline(ctx, t, "lb-same-1", "--port", "tcp/15171", "--arg=--tcp=15171", "--arg=--http=:18082")
	c2 := e.createPipeline(ctx, t, "lb-same-2", "--port", "tcp/15171", "--arg=--tcp=15171", "--arg=--http=:18083")
	f1, f2 := frontend(t, c1, v1alpha1.ProtocolTCP, 15171), frontend(t, c2, v1alpha1.ProtocolTCP, 15171)
	assert.NotEqual(t, f1.Frontend, f2.Frontend)
	e.waitIngress(ctx, t, "default", "lb-same-1")
	e.waitIngress(ctx, t, "default", "lb-same-2")
	held, notRunning := e.svclbHostPorts(ctx, t)
	assert.Empty(t, notRunning, "every svclb pod runs: no LoadBalancer pipeline was given a port another holds")
	owner := map[string]string{}
	for pod, ports := range held {
		for _, hp := range ports {
			assert.Empty(t, owner[hp], "host port %s held by %s and %s", hp, owner[hp], pod)
			owner[hp] = pod
		}
	}
	t.Logf("svclb host ports: %v", held)

	// Deleting a pipeline frees its svclb pods: the DaemonSet goes with
	// the Service.
	ds := launcher.SvcLBName(svcA)
	_, err = e.tpctlText(ctx, "pipeline", "delete", "lb-data", "--yes")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := e.kubectl(ctx, "-n", "kube-system", "get", "daemonset", ds)
		pods, perr := e.svclbPods(ctx, "default", "lb-data")
		return err != nil && strings.Contains(err.Error(), "NotFound") && perr == nil && len(pods) == 0
	}, 2*time.Minute, time.Second, "the svclb DaemonSet %s and its pods outlived the deleted pipeline", ds)
	for _, n := range []string{"lb-web", "lb-same-1", "lb-same-2"} {
		_, err = e.tpctlText(ctx, "pipeline", "delete", n, "--yes")
		assert.NoError(t, err)
	}
}
