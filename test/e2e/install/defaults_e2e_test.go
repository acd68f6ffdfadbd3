//go:build e2e

package install

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/test/hosttest"
	"github.com/tpctl/tpctl/test/images"
	"github.com/tpctl/tpctl/test/k3slauncher/launcher"
)

// TestDefaultComponentsOnBootedHost runs the default install (nothing
// disabled: K3s's service load balancer, Traefik, local storage and
// metrics-server on), then checks what tpctl relies on: LoadBalancer
// Services get the node's address as ingress and carry bytes sent to
// <node address>:<port> to their pods; Traefik holds 80 and 443; a second
// LoadBalancer Service on a port already held stays Pending without
// ingress until the port is free; and pipelines made with `tpctl pipeline
// create` carry TCP and UDP through their LoadBalancer Services; a
// StatefulSet pipeline's buffer claim lives on K3s's local-path storage and
// survives a pod restart and the pipeline's deletion.
func TestDefaultComponentsOnBootedHost(t *testing.T) {
	needBootedHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	e := bootedHost(ctx, t, "tpctl-e2e-lb", hosttest.Options{})
	h, a := e.h, e.a

	begin := time.Now()
	r := tpctl(ctx, h, nil, nil, installArgs(a.images)...)
	require.NoError(t, r.err, "%s", r)
	t.Logf("FIGURE install with Traefik, metrics-server and the service load balancer (the default install): %s", r.took.Round(time.Millisecond))
	e.healthURLAnswersAtOnce(t, r)
	e.checkNode(ctx, t)

	ok := t.Run("traefik holds 80 and 443", e.traefik) &&
		t.Run("LoadBalancer Service carries bytes, a clash stays Pending", e.loadBalancers) &&
		t.Run("local-path volume on the node", e.localPath)
	if _, charts := r.stepEvent("wait for core instance", installer.EventDone); charts && ok {
		ok = t.Run("health-check pipeline answers on the node address", e.healthCheckOnNode) &&
			t.Run("pipelines through the service load balancer", e.pipelines) &&
			t.Run("StatefulSet pipeline buffers on local-path", e.pipelineStorage)
	}
	t.Run("uninstall leaves the host as before", e.uninstall)
	t.Logf("FIGURE default-components test: %s", time.Since(begin).Round(time.Millisecond))
}

// service reads a Service with kubectl.
func (e *e2e) service(ctx context.Context, ns, name string) (*corev1.Service, error) {
	out, err := e.kubectl(ctx, "-n", ns, "get", "service", name, "-o", "json")
	if err != nil {
		return nil, err
	}
	var s corev1.Service
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		return nil, fmt.Errorf("decode service: %w", err)
	}
	return &s, nil
}

// svclbPods lists the svclb pods of a Service.
func (e *e2e) svclbPods(ctx context.Context, ns, name string) ([]corev1.Pod, error) {
	out, err := e.kubectl(ctx, "-n", "kube-system", "get", "pods", "-o", "json", "-l",
		"svccontroller.k3s.cattle.io/svcname="+name+",svccontroller.k3s.cattle.io/svcnamespace="+ns)
	if err != nil {
		return nil, err
	}
	var l corev1.PodList
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		return nil, fmt.Errorf("decode pods: %w", err)
	}
	return l.Items, nil
}

func ingressIPs(s *corev1.Service) []string {
	var out []string
	for _, i := range s.Status.LoadBalancer.Ingress {
		out = append(out, i.IP)
	}
	return out
}

// waitIngress waits until the Service's ingress is the node address.
func (e *e2e) waitIngress(ctx context.Context, t *testing.T, ns, name string) *corev1.Service {
	t.Helper()
	var s *corev1.Service
	require.Eventually(t, func() bool {
		var err error
		s, err = e.service(ctx, ns, name)
		return err == nil && len(ingressIPs(s)) == 1 && ingressIPs(s)[0] == nodeIP
	}, 3*time.Minute, time.Second, "Service %s/%s never got the node address %s as ingress: %+v", ns, name, nodeIP, s)
	return s
}

func httpGet(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), err
}

// traefik: the packaged Traefik runs, its LoadBalancer Service lists the
// node address, and port 80 on the node answers as Traefik does.
func (e *e2e) traefik(t *testing.T) {
	ctx := e.ctx(t, 5*time.Minute)
	out, err := e.kubectl(ctx, "-n", "kube-system", "get", "deploy", "traefik", "-o", "jsonpath={.status.availableReplicas}")
	require.NoError(t, err)
	assert.Equal(t, "1", out)
	s := e.waitIngress(ctx, t, "kube-system", "traefik")
	pods, err := e.svclbPods(ctx, "kube-system", "traefik")
	require.NoError(t, err)
	require.Len(t, pods, 1)
	assert.Equal(t, launcher.SvcLBName(s), pods[0].Labels["app"])
	var held []int32
	for _, c := range pods[0].Spec.Containers {
		for _, p := range c.Ports {
			held = append(held, p.HostPort)
		}
	}
	assert.ElementsMatch(t, []int32{80, 443}, held)
	var code int
	var body string
	require.Eventually(t, func() bool {
		code, body, err = httpGet(ctx, "http://"+nodeIP+":80/")
		return err == nil
	}, time.Minute, time.Second, "nothing answers on %s:80: %v", nodeIP, err)
	assert.Equal(t, http.StatusNotFound, code)
	assert.Equal(t, "404 page not found\n", body)
}

const lbManifest = `apiVersion: apps/v1
kind: Deployment
metadata: {name: lb-sink, namespace: default}
spec:
  selector: {matchLabels: {app: lb-sink}}
  template:
    metadata: {labels: {app: lb-sink}}
    spec:
      containers:
      - name: sink
        image: ` + images.SinkRef + `
        imagePullPolicy: Never
        args: [--tcp, "5170", --http, ":8080"]
        readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: lb-a, namespace: default}
spec:
  type: LoadBalancer
  selector: {app: lb-sink}
  ports:
  - {name: data, port: 18090, targetPort: 5170}
  - {name: http, port: 18091, targetPort: 8080}
`

const lbClashManifest = `apiVersion: v1
kind: Service
metadata: {name: lb-b, namespace: default}
spec:
  type: LoadBalancer
  selector: {app: lb-sink}
  ports:
  - {name: http, port: 18091, targetPort: 8080}
`

// apply writes a manifest to /tmp in the host (outside the snapshot: the
// test's own files are no uninstall residue) and applies it.
func (e *e2e) apply(ctx context.Context, t *testing.T, name, manifest string) {
	t.Helper()
	p := manifestPath(name)
	require.NoError(t, os.WriteFile(e.h.Path(p), []byte(manifest), 0o644))
	out, err := e.kubectl(ctx, "apply", "-f", p)
	require.NoError(t, err, out)
}

func manifestPath(name string) string { return "/tmp/tpctl-e2e-" + name }

// sinkReceived reads the sink's /received through the LoadBalancer port.
func sinkReceived(ctx context.Context) (map[string]any, error) {
	code, body, err := httpGet(ctx, "http://"+nodeIP+":18091/received")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /received: %d %s", code, body)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		return nil, fmt.Errorf("decode /received: %w", err)
	}
	return out, nil
}

func (e *e2e) loadBalancers(t *testing.T) {
	ctx := e.ctx(t, 8*time.Minute)
	e.apply(ctx, t, "lb-a.yaml", lbManifest)
	begin := time.Now()
	s := e.waitIngress(ctx, t, "default", "lb-a")
	t.Logf("FIGURE LoadBalancer ingress after %s", time.Since(begin).Round(time.Millisecond))
	out, err := e.kubectl(ctx, "-n", "kube-system", "get", "daemonset", launcher.SvcLBName(s), "-o", "jsonpath={.status.numberReady}")
	require.NoError(t, err)
	assert.Equal(t, "1", out)

	// Bytes sent to <node address>:18090 reach the sink's TCP 5170.
	msg := "through the service load balancer\n"
	var last string // what the last look saw: which half (sending, reading the report) fails
	ok := assert.Eventually(t, func() bool {
		c, err := (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, "tcp", nodeIP+":18090")
		if err != nil {
			last = "dial 18090: " + err.Error()
			return false
		}
		_, err = c.Write([]byte(msg))
		_ = c.Close()
		if err != nil {
			last = "write 18090: " + err.Error()
			return false
		}
		rcv, err := sinkReceived(ctx)
		if err != nil {
			last = "report on 18091: " + err.Error()
			return false
		}
		last = fmt.Sprintf("report on 18091: %v", rcv)
		return strings.Contains(fmt.Sprint(rcv), strings.TrimSpace(msg))
	}, 2*time.Minute, 2*time.Second, "the bytes sent to %s:18090 never reached the pod", nodeIP)
	if !ok {
		t.Logf("last look: %s", last)
		e.logNetState(ctx, t, "18090", "18091")
		// What the next look needs: where the pods are, what the svclb
		// forwarder said, and the Service's ports.
		for _, args := range [][]string{
			{"get", "pods", "-A", "-o", "wide"},
			{"-n", "kube-system", "logs", "-l", "svccontroller.k3s.cattle.io/svcname=lb-a", "--all-containers", "--tail", "50"},
			{"-n", "default", "get", "service", "lb-a", "-o", "yaml"},
		} {
			out, err := e.kubectl(ctx, args...)
			t.Logf("kubectl %v (err %v):\n%s", args, err, out)
		}
		t.FailNow()
	}

	// A second LoadBalancer Service on 18091: its svclb pod cannot hold
	// the port, stays Pending, and the Service gets no ingress.
	e.apply(ctx, t, "lb-b.yaml", lbClashManifest)
	var pods []corev1.Pod
	require.Eventually(t, func() bool {
		pods, err = e.svclbPods(ctx, "default", "lb-b")
		if err != nil || len(pods) != 1 {
			return false
		}
		for _, c := range pods[0].Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
				return true
			}
		}
		return false
	}, 2*time.Minute, time.Second, "the clashing svclb pod was not left unschedulable: %+v", pods)
	assert.Equal(t, corev1.PodPending, pods[0].Status.Phase)
	time.Sleep(10 * time.Second) // give the controller every chance to (wrongly) publish an address
	b, err := e.service(ctx, "default", "lb-b")
	require.NoError(t, err)
	assert.Empty(t, ingressIPs(b), "a Service whose port is held elsewhere must get no ingress")

	// Once the port is free, the Pending pod runs and the Service gets
	// the address: it was the port, nothing else.
	_, err = e.kubectl(ctx, "-n", "default", "delete", "service", "lb-a", "--wait=true", "--timeout=2m")
	require.NoError(t, err)
	_, err = e.kubectl(ctx, "-n", "kube-system", "get", "daemonset", launcher.SvcLBName(s))
	assert.Error(t, err, "the svclb DaemonSet of a deleted Service is deleted")
	e.waitIngress(ctx, t, "default", "lb-b")
	_, err = e.kubectl(ctx, "delete", "-f", manifestPath("lb-b.yaml"), "-f", manifestPath("lb-a.yaml"), "--ignore-not-found", "--wait=true", "--timeout=2m")
	require.NoError(t, err)
}

// healthCheckOnNode: the core instance's health-check pipeline, a
// LoadBalancer Service by default, answers on <node address>:2020.
func (e *e2e) healthCheckOnNode(t *testing.T) {
	ctx := e.ctx(t, 5*time.Minute)
	out, err := e.kubectl(ctx, "get", "services", "-A", "-o",
		`jsonpath={range .items[?(@.spec.ports[0].port==2020)]}{.metadata.namespace}/{.metadata.name} {.spec.type}{"\n"}{end}`)
	require.NoError(t, err)
	f := strings.Fields(out)
	require.Len(t, f, 2, "one Service on port 2020 (the health-check pipeline): %q", out)
	// servicelb is on here, so pipelines (the health check too) default to
	// LoadBalancer: anything else is a regression, not a reason to skip.
	require.Equal(t, string(corev1.ServiceTypeLoadBalancer), f[1], "type of the health-check Service %s", f[0])
	ns, name, _ := strings.Cut(f[0], "/")
	e.waitIngress(ctx, t, ns, name)
	require.Eventually(t, func() bool {
		code, body, err := httpGet(ctx, "http://"+nodeIP+":2020/healthz")
		return err == nil && code == http.StatusOK && strings.TrimSpace(body) == "ok"
	}, 2*time.Minute, 2*time.Second, "the health-check pipeline does not answer on %s:2020", nodeIP)
}

const pvcManifest = `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: default}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 64Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: uses-data, namespace: default}
spec:
  containers:
  - name: sink
    image: ` + images.SinkRef + `
    imagePullPolicy: Never
    args: [--http, ":8080"]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - {name: data, persistentVolumeClaim: {claimName: data}}
`

// localPath: a claim without a class gets K3s's default local-path class,
// waits for its pod, and is bound to a hostPath volume in
// <data-dir>/storage/pvc-<uid>_<namespace>_<claim>; deleting the claim
// removes the directory.
func (e *e2e) localPath(t *testing.T) {
	ctx := e.ctx(t, 5*time.Minute)
	out, err := e.kubectl(ctx, "get", "storageclass", "local-path", "-o",
		`jsonpath={.provisioner} {.volumeBindingMode} {.metadata.annotations.storageclass\.kubernetes\.io/is-default-class}`)
	require.NoError(t, err)
	assert.Equal(t, "rancher.io/local-path WaitForFirstConsumer true", out)
	e.apply(ctx, t, "pvc.yaml", pvcManifest)
	var uid string
	require.Eventually(t, func() bool {
		out, err = e.kubectl(ctx, "-n", "default", "get", "pvc", "data", "-o", "jsonpath={.status.phase} {.metadata.uid}")
		f := strings.Fields(out)
		if err != nil || len(f) != 2 || f[0] != "Bound" {
			return false
		}
		uid = f[1]
		return true
	}, 3*time.Minute, time.Second, "the claim was never bound: %q %v", out, err)
	dir := installer.DefaultDataDir + "/storage/pvc-" + uid + "_default_data"
	require.Eventually(t, func() bool {
		out, err = e.kubectl(ctx, "-n", "default", "get", "pod", "uses-data", "-o", "jsonpath={.status.phase}")
		return err == nil && out == "Running"
	}, 2*time.Minute, time.Second, "the pod using the claim does not run: %q %v", out, err)
	st, err := os.Stat(e.h.Path(dir))
	require.NoError(t, err, "the volume directory on the node")
	assert.True(t, st.IsDir())
	_, err = e.kubectl(ctx, "delete", "-f", manifestPath("pvc.yaml"), "--wait=true", "--timeout=2m")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := os.Stat(e.h.Path(dir))
		return os.IsNotExist(err)
	}, 2*time.Minute, time.Second, "the released volume's directory %s was not removed", dir)
}
