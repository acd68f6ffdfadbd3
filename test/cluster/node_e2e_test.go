//go:build e2e

package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/tpctl/tpctl/test/images"
)

// TestNodeSmoke brings a node up, checks that pods run and that Services,
// NodePorts, the API from a pod and DNS work, then checks that teardown left
// the host as it was.
func TestNodeSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// Hold the host lock across both snapshots so no other node changes the host.
	lock, err := AcquireHostLock(ctx, DefaultLockPath)
	require.NoError(t, err)
	defer func() { assert.NoError(t, lock.Release()) }()

	before, err := TakeHostSnapshot(ctx)
	require.NoError(t, err)

	var nodeDir string
	t.Run("cluster", func(t *testing.T) {
		imgDir := t.TempDir()
		sinkTar, err := images.Build(ctx, imgDir, images.Sink())
		require.NoError(t, err)
		probeTar, err := images.Build(ctx, imgDir, images.Probe())
		require.NoError(t, err)

		start := time.Now()
		n := StartNode(ctx, t, NodeOptions{HostLock: lock, Images: []string{sinkTar, probeTar}})
		nodeDir = n.Dir()
		tm := n.Timings()
		t.Logf("timings: API ready %s, node Ready %s, harness ready (DNS, images) %s",
			tm.APIReady.Round(time.Millisecond), tm.NodeReady.Round(time.Millisecond), tm.Total.Round(time.Millisecond))

		cs, err := kubernetes.NewForConfig(n.RESTConfig())
		require.NoError(t, err)
		v, err := cs.Discovery().ServerVersion()
		require.NoError(t, err)
		assert.Equal(t, PinnedVersions().Kubernetes, v.GitVersion)

		ns := "default"
		_, err = cs.AppsV1().Deployments(ns).Create(ctx, sinkDeployment(), metav1.CreateOptions{})
		require.NoError(t, err)
		svc, err := cs.CoreV1().Services(ns).Create(ctx, sinkService(), metav1.CreateOptions{})
		require.NoError(t, err)

		pod := waitRunningPod(ctx, t, cs, ns, "app=sink")
		t.Logf("first pod Running %s after start (%s after node Ready)",
			time.Since(start).Round(time.Millisecond), (time.Since(start) - tm.NodeReady).Round(time.Millisecond))
		assert.Equal(t, int32(0), pod.Status.ContainerStatuses[0].RestartCount)

		nodePort := func(name string) int32 {
			for _, p := range svc.Spec.Ports {
				if p.Name == name {
					return p.NodePort
				}
			}
			t.Fatalf("no port %s", name)
			return 0
		}
		httpNP, tcpNP := nodePort("http"), nodePort("tcp")
		clusterIP := svc.Spec.ClusterIP

		t.Run("NodePort and ClusterIP from the host", func(t *testing.T) {
			for _, base := range []string{
				fmt.Sprintf("http://%s:%d", n.NodeIP(), httpNP),
				fmt.Sprintf("http://127.0.0.1:%d", httpNP),
				fmt.Sprintf("http://%s:8080", clusterIP),
			} {
				body := eventuallyGet(ctx, t, base+"/healthz")
				assert.Equal(t, "ok\n", body, base)
			}
			sendTCP(t, fmt.Sprintf("%s:%d", n.NodeIP(), tcpNP), "via-nodeport")
			sendTCP(t, fmt.Sprintf("%s:5170", clusterIP), "via-clusterip")
			rep := eventuallyReceived(ctx, t, fmt.Sprintf("http://%s:%d", n.NodeIP(), httpNP), "via-nodeport", "via-clusterip")
			assert.Equal(t, "http://proxy.test:3128", rep.Env["HTTP_PROXY"])
		})

		t.Run("pod to Service, API server and DNS", func(t *testing.T) {
			_, err := cs.CoreV1().Pods(ns).Create(ctx, probePod(clusterIP), metav1.CreateOptions{})
			require.NoError(t, err)
			var phase corev1.PodPhase
			require.Eventually(t, func() bool {
				p, err := cs.CoreV1().Pods(ns).Get(ctx, "probe", metav1.GetOptions{})
				if err != nil {
					return false
				}
				phase = p.Status.Phase
				return phase == corev1.PodSucceeded || phase == corev1.PodFailed
			}, 2*time.Minute, 200*time.Millisecond)
			// Logs come from the kubelet through the API server (kubectl logs path).
			logs, err := cs.CoreV1().Pods(ns).GetLogs("probe", &corev1.PodLogOptions{}).DoRaw(ctx)
			require.NoError(t, err)
			t.Logf("probe output:\n%s", logs)
			require.Equal(t, corev1.PodSucceeded, phase, "probe pod failed:\n%s", logs)
			out := string(logs)
			assert.Contains(t, out, "ok dns sink.default.svc.cluster.local: "+clusterIP)
			assert.Contains(t, out, "ok dns kubernetes.default: 10.96.0.1")
			assert.Contains(t, out, "ok http http://sink.default.svc:8080/healthz: ok")
			assert.Contains(t, out, "ok api https://kubernetes.default.svc: user=system:serviceaccount:default:default")
			eventuallyReceived(ctx, t, fmt.Sprintf("http://%s:%d", n.NodeIP(), httpNP), "from-pod-tcp", "from-pod-udp")
		})

		// The teardown check can fail: a running node shows up in the diff.
		during, err := TakeHostSnapshot(ctx, n.Dir())
		require.NoError(t, err)
		diff := strings.Join(before.Diff(during), "\n")
		assert.Contains(t, diff, "+ address: lo "+n.NodeIP()+"/32")
		assert.Contains(t, diff, "+ interface: "+BridgeName)
		assert.Contains(t, diff, "chain KUBE-SERVICES")
		assert.Contains(t, diff, "+ process:")
		assert.Contains(t, diff, "+ mount:")
		// containerd 2 pins pod network namespaces under its state
		// directory, in the harness directory, not in /run/netns.
		assert.Contains(t, diff, "+ mount: "+filepath.Join(n.Dir(), "containerd", "state", "io.containerd.grpc.v1.cri", "netns", "cni-"))
		assert.NotContains(t, diff, "/run/netns/")

		total, byName := n.ProcessRSS()
		names := make([]string, 0, len(byName))
		for k := range byName {
			names = append(names, k)
		}
		sort.Strings(names)
		var parts []string
		for _, k := range names {
			parts = append(parts, fmt.Sprintf("%s=%dMiB", k, byName[k]>>20))
		}
		t.Logf("RSS of node processes: %d MiB (%s)", total>>20, strings.Join(parts, " "))
	})

	require.NotEmpty(t, nodeDir)
	after, err := TakeHostSnapshot(ctx, nodeDir)
	require.NoError(t, err)
	assert.Empty(t, before.Diff(after), "host changed by the node")
}

func sinkDeployment() *appsv1.Deployment {
	labels := map[string]string{"app": "sink"}
	one := int32(1)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "sink", Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:            "sink",
					Image:           images.SinkRef,
					ImagePullPolicy: corev1.PullNever,
					Args:            []string{"--tcp", "5170", "--udp", "5140", "--http", ":8080"},
					Env:             []corev1.EnvVar{{Name: "HTTP_PROXY", Value: "http://proxy.test:3128"}},
					Ports: []corev1.ContainerPort{
						{Name: "http", ContainerPort: 8080}, {Name: "tcp", ContainerPort: 5170},
						{Name: "udp", ContainerPort: 5140, Protocol: corev1.ProtocolUDP},
					},
					ReadinessProbe: &corev1.Probe{
						ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}},
						PeriodSeconds: 1,
					},
				}}},
			},
		},
	}
}

func sinkService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "sink"},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeNodePort,
			Selector: map[string]string{"app": "sink"},
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 8080, TargetPort: intstr.FromInt32(8080)},
				{Name: "tcp", Port: 5170, TargetPort: intstr.FromInt32(5170)},
				{Name: "udp", Port: 5140, TargetPort: intstr.FromInt32(5140), Protocol: corev1.ProtocolUDP},
			},
		},
	}
}

func probePod(sinkIP string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "probe"},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "probe", Image: images.ProbeRef, ImagePullPolicy: corev1.PullNever,
				Args: []string{
					"--dns", "sink.default.svc.cluster.local",
					"--dns", "kubernetes.default",
					"--http", "http://sink.default.svc:8080/healthz",
					"--tcp", "sink.default.svc:5170=from-pod-tcp",
					"--udp", sinkIP + ":5140=from-pod-udp",
					"--api",
				},
			}},
		},
	}
}

func waitRunningPod(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, selector string) corev1.Pod {
	t.Helper()
	var pod corev1.Pod
	require.Eventually(t, func() bool {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil || len(pods.Items) == 0 {
			return false
		}
		pod = pods.Items[0]
		if pod.Status.Phase != corev1.PodRunning {
			return false
		}
		for _, c := range pod.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return true
			}
		}
		return false
	}, 2*time.Minute, 100*time.Millisecond, "pod %s Running and Ready", selector)
	return pod
}

func eventuallyGet(ctx context.Context, t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	var body string
	require.Eventually(t, func() bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false
		}
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 100*time.Millisecond, "GET %s", url)
	return body
}

func sendTCP(t *testing.T, addr, payload string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	_, err = c.Write([]byte(payload))
	require.NoError(t, err)
	require.NoError(t, c.Close())
}

type sinkReport struct {
	Ports []struct {
		Protocol string   `json:"protocol"`
		Port     int      `json:"port"`
		Last     []string `json:"last"`
	} `json:"ports"`
	Env map[string]string `json:"env"`
}

func eventuallyReceived(ctx context.Context, t *testing.T, base string, payloads ...string) sinkReport {
	t.Helper()
	var rep sinkReport
	require.Eventually(t, func() bool {
		body := eventuallyGet(ctx, t, base+"/received")
		if err := json.Unmarshal([]byte(body), &rep); err != nil {
			return false
		}
		got := map[string]bool{}
		for _, p := range rep.Ports {
			for _, l := range p.Last {
				got[l] = true
			}
		}
		for _, want := range payloads {
			if !got[want] {
				return false
			}
		}
		return true
	}, 30*time.Second, 200*time.Millisecond, "sink received %v", payloads)
	return rep
}
