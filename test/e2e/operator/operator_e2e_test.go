//go:build e2e

package operator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/charts"
	"github.com/tpctl/tpctl/installer"
	"github.com/tpctl/tpctl/internal/operatorimage"
	tpop "github.com/tpctl/tpctl/operator"
	"github.com/tpctl/tpctl/test/cluster"
	"github.com/tpctl/tpctl/test/images"
)

const (
	ns      = "tpctl-system"
	version = "e2e" // chart version and image tag 0.0.0-e2e
)

// sinkReport mirrors the sink's GET /received.
type sinkReport struct {
	Ports []struct {
		Protocol string   `json:"protocol"`
		Port     int      `json:"port"`
		Bytes    int64    `json:"bytes"`
		Last     []string `json:"last"`
	} `json:"ports"`
	Env map[string]string `json:"env"`
}

func TestOperatorOnNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	root, err := filepath.Abs("../../..")
	require.NoError(t, err)

	imgDir := t.TempDir()
	sinkTar, err := images.Build(ctx, imgDir, images.Sink())
	require.NoError(t, err)
	start := time.Now()
	opTar, opRef, err := operatorimage.Build(ctx, root, version, "e2e", imgDir)
	require.NoError(t, err)
	t.Logf("operator image %s built in %s", opRef, time.Since(start).Round(time.Second))

	n := cluster.StartNode(ctx, t, cluster.NodeOptions{Images: []string{sinkTar, opTar}, Logf: t.Logf})
	scheme, err := tpop.NewScheme()
	require.NoError(t, err)
	c, err := client.New(n.RESTConfig(), client.Options{Scheme: scheme})
	require.NoError(t, err)

	// The operator chart, waited for: the operator pod must become Ready.
	var progress []string
	opArchive, err := charts.Archive(charts.Operator, charts.SemVer(version))
	require.NoError(t, err)
	op := &installer.HelmRelease{Kubeconfig: n.Kubeconfig(), Namespace: ns, Name: "tp-operator", Chart: opArchive,
		// The chart watches only `default` unless told: this test's
		// instance lives in the operator's own namespace.
		Values:  map[string]any{"defaultPipelineImage": images.SinkRef, "watchNamespaces": []any{ns}},
		Timeout: 3 * time.Minute, Progress: func(s string) { progress = append(progress, s); t.Log("helm:", s) }}
	res, err := op.Apply(ctx)
	require.NoError(t, err, "operator chart:\n%s", n.Logs(40))
	assert.Equal(t, "installed", res.Action)

	var opPod corev1.Pod
	t.Run("operator runs as a pod from the chart", func(t *testing.T) {
		var pods corev1.PodList
		require.NoError(t, c.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"app.kubernetes.io/name": "tp-operator"}))
		require.Len(t, pods.Items, 1)
		opPod = pods.Items[0]
		require.Equal(t, corev1.PodRunning, opPod.Status.Phase)
		assert.Equal(t, opRef, opPod.Spec.Containers[0].Image)
		assert.Equal(t, corev1.PullIfNotPresent, opPod.Spec.Containers[0].ImagePullPolicy)
		assert.True(t, podReady(&opPod), "readiness probe /readyz passes")
	})

	// The instance chart: proxies, the health check, sink as the default image.
	ciArchive, err := charts.Archive(charts.CoreInstance, charts.SemVer(version))
	require.NoError(t, err)
	ci := &installer.HelmRelease{Kubeconfig: n.Kubeconfig(), Namespace: ns, Name: "tp-core-instance", Chart: ciArchive,
		Timeout: 3 * time.Minute, Progress: func(s string) { t.Log("helm:", s) },
		Values: map[string]any{
			"name":  "core",
			"proxy": map[string]any{"httpProxy": "http://proxy.test:3128", "httpsProxy": "http://proxy.test:3129", "noProxy": "localhost,.svc"},
			// Pipelines run the sink: its HTTP endpoint on 2020 is also the
			// health check's answer.
			"pipelineDefaults": map[string]any{"serviceType": "ClusterIP", "image": images.SinkRef, "args": []any{"--http", ":2020"}},
		}}
	_, err = ci.Apply(ctx)
	require.NoError(t, err)

	pipelines := []*v1alpha1.Pipeline{
		sinkPipeline("alpha", "", tcp(2200), udp(5140)),
		sinkPipeline("beta", "", tcp(2200)),
		sinkPipeline("gamma", v1alpha1.ServiceTypeNodePort, tcp(30600)),
	}
	pipelines[2].Spec.Workload = v1alpha1.WorkloadSpec{Kind: v1alpha1.WorkloadStatefulSet}
	require.NoError(t, c.Create(ctx, pipelines[0]))
	waitReady(ctx, t, c, "alpha") // alpha is older than beta
	require.NoError(t, c.Create(ctx, pipelines[1]))
	require.NoError(t, c.Create(ctx, pipelines[2]))
	for _, name := range []string{"beta", "gamma", "core-health"} {
		waitReady(ctx, t, c, name)
	}

	t.Run("bytes reach the backends through the frontends", func(t *testing.T) {
		beta := get[v1alpha1.Pipeline](ctx, t, c, "beta")
		assert.Equal(t, "tcp/2201->2200", beta.Status.PortSummary, "beta's frontend was reassigned")

		alphaIP := get[corev1.Service](ctx, t, c, "alpha").Spec.ClusterIP
		betaIP := get[corev1.Service](ctx, t, c, "beta").Spec.ClusterIP
		sendTCP(t, net.JoinHostPort(alphaIP, "2200"), "to-alpha-2200")
		sendUDP(t, net.JoinHostPort(alphaIP, "5140"), "to-alpha-udp")
		sendTCP(t, net.JoinHostPort(betaIP, "2201"), "to-beta-frontend-2201")
		gammaSvc := get[corev1.Service](ctx, t, c, "gamma")
		require.Equal(t, int32(30600), gammaSvc.Spec.Ports[0].NodePort, "the frontend is the node port")
		sendTCP(t, net.JoinHostPort(n.NodeIP(), "30600"), "to-gamma-nodeport")

		rep := received(ctx, t, c, "alpha", "tcp/2200", "to-alpha-2200")
		received(ctx, t, c, "alpha", "udp/5140", "to-alpha-udp")
		assert.Equal(t, "http://proxy.test:3128", rep.Env["HTTP_PROXY"], "instance proxies reach the pods")
		assert.Equal(t, "http://proxy.test:3129", rep.Env["HTTPS_PROXY"])
		assert.Equal(t, "localhost,.svc", rep.Env["NO_PROXY"])
		received(ctx, t, c, "beta", "tcp/2200", "to-beta-frontend-2201")
		received(ctx, t, c, "gamma", "tcp/30600", "to-gamma-nodeport")
	})

	t.Run("health check answers on 2020", func(t *testing.T) {
		svc := get[corev1.Service](ctx, t, c, "core-health")
		require.Equal(t, int32(2020), svc.Spec.Ports[0].Port)
		body := httpGet(ctx, t, fmt.Sprintf("http://%s/healthz", net.JoinHostPort(svc.Spec.ClusterIP, "2020")))
		assert.Equal(t, "ok\n", body)
		require.Eventually(t, func() bool {
			inst := &v1alpha1.CoreInstance{}
			return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "core"}, inst) == nil &&
				meta.IsStatusConditionTrue(inst.Status.Conditions, v1alpha1.ConditionReady) && inst.Status.PipelineCount == 4
		}, time.Minute, 200*time.Millisecond, "instance Ready with 4 pipelines")
	})

	t.Run("deleting a pipeline and the instance cleans up", func(t *testing.T) {
		require.NoError(t, c.Delete(ctx, &v1alpha1.Pipeline{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "alpha"}}))
		gone(ctx, t, c, &appsv1.Deployment{}, "alpha")
		gone(ctx, t, c, &corev1.Service{}, "alpha")
		gone(ctx, t, c, &corev1.ConfigMap{}, "alpha-config")
		// Uninstalling the instance chart keeps the CoreInstance (it
		// carries helm.sh/resource-policy: keep, so its pipelines are never
		// lost with the release); deleting it, as a full `tpctl uninstall`
		// does, lets the garbage collector take its pipelines and their
		// objects.
		require.NoError(t, ci.Uninstall(ctx, false))
		time.Sleep(2 * time.Second)
		kept := get[v1alpha1.CoreInstance](ctx, t, c, "core")
		require.Nil(t, kept.DeletionTimestamp, "the release's uninstall must not delete the CoreInstance")
		get[v1alpha1.Pipeline](ctx, t, c, "beta")
		require.NoError(t, c.Delete(ctx, &v1alpha1.CoreInstance{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "core"}}))
		for _, name := range []string{"beta", "gamma", "core-health"} {
			gone(ctx, t, c, &v1alpha1.Pipeline{}, name)
		}
		gone(ctx, t, c, &appsv1.StatefulSet{}, "gamma")
		gone(ctx, t, c, &corev1.Service{}, "core-health")
	})

	t.Run("operator pod never restarted", func(t *testing.T) {
		p := get[corev1.Pod](ctx, t, c, opPod.Name)
		assert.Zero(t, p.Status.ContainerStatuses[0].RestartCount)
	})
	require.NoError(t, op.Uninstall(ctx, true))
	gone(ctx, t, c, &appsv1.Deployment{}, "tp-operator")
}

func tcp(n int32) v1alpha1.PipelinePort {
	return v1alpha1.PipelinePort{Protocol: v1alpha1.ProtocolTCP, Port: n}
}
func udp(n int32) v1alpha1.PipelinePort {
	return v1alpha1.PipelinePort{Protocol: v1alpha1.ProtocolUDP, Port: n}
}

// sinkPipeline runs the sink on the pipeline's ports (image and args come
// from the instance defaults).
func sinkPipeline(name string, svc v1alpha1.ServiceType, ports ...v1alpha1.PipelinePort) *v1alpha1.Pipeline {
	var tcps, udps []string
	for _, p := range ports {
		if p.Protocol == v1alpha1.ProtocolUDP {
			udps = append(udps, fmt.Sprint(p.Port))
		} else {
			tcps = append(tcps, fmt.Sprint(p.Port))
		}
	}
	return &v1alpha1.Pipeline{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.PipelineSpec{Instance: "core", Ports: ports, ServiceType: svc, AutoDetectPorts: ptr.To(false),
			Env: []corev1.EnvVar{{Name: "SINK_TCP", Value: strings.Join(tcps, ",")}, {Name: "SINK_UDP", Value: strings.Join(udps, ",")}}},
	}
}

func get[T any, PT interface {
	*T
	client.Object
}](ctx context.Context, t *testing.T, c client.Client, name string) PT {
	t.Helper()
	obj := PT(new(T))
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj))
	return obj
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func waitReady(ctx context.Context, t *testing.T, c client.Client, name string) {
	t.Helper()
	var last string
	ok := assert.Eventually(t, func() bool {
		p := &v1alpha1.Pipeline{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, p); err != nil {
			last = err.Error()
			return false
		}
		cond := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady)
		if cond != nil {
			last = cond.Reason + ": " + cond.Message
		}
		return cond != nil && cond.Status == metav1.ConditionTrue && cond.ObservedGeneration == p.Generation
	}, 2*time.Minute, 250*time.Millisecond)
	require.True(t, ok, "pipeline %s not Ready: %s", name, last)
}

// received asks the sink in the pipeline's pod (over the pod network, on
// its HTTP port 2020) until port has received payload.
func received(ctx context.Context, t *testing.T, c client.Client, pipeline, port, payload string) sinkReport {
	t.Helper()
	var pods corev1.PodList
	require.NoError(t, c.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{tpop.LabelPipeline: pipeline}))
	require.NotEmpty(t, pods.Items)
	var rep sinkReport
	var body string
	require.Eventually(t, func() bool {
		for _, pod := range pods.Items {
			body = httpGet(ctx, t, fmt.Sprintf("http://%s/received", net.JoinHostPort(pod.Status.PodIP, "2020")))
			if err := json.Unmarshal([]byte(body), &rep); err != nil {
				continue
			}
			for _, p := range rep.Ports {
				if fmt.Sprintf("%s/%d", p.Protocol, p.Port) == port && contains(p.Last, payload) {
					return true
				}
			}
		}
		return false
	}, 30*time.Second, 200*time.Millisecond, "%s %s never received %q; last report %s", pipeline, port, payload, body)
	return rep
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func httpGet(ctx context.Context, t *testing.T, url string) string {
	t.Helper()
	var body string
	require.Eventually(t, func() bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false
		}
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		body = string(data)
		return err == nil && resp.StatusCode == http.StatusOK
	}, 30*time.Second, 200*time.Millisecond, "GET %s", url)
	return body
}

func sendTCP(t *testing.T, addr, payload string) {
	t.Helper()
	require.Eventually(t, func() bool {
		conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return false
		}
		defer conn.Close()
		_, err = conn.Write([]byte(payload))
		return err == nil
	}, 30*time.Second, 200*time.Millisecond, "send to %s", addr)
}

func sendUDP(t *testing.T, addr, payload string) {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	require.NoError(t, err)
	defer conn.Close()
	// Datagrams may be lost while the first conntrack entry is set up: send a few.
	for range 5 {
		_, err = conn.Write([]byte(payload))
		require.NoError(t, err)
		time.Sleep(100 * time.Millisecond)
	}
}

func gone(ctx context.Context, t *testing.T, c client.Client, obj client.Object, name string) {
	t.Helper()
	require.Eventually(t, func() bool {
		return apierrors.IsNotFound(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj))
	}, 2*time.Minute, 250*time.Millisecond, "%T %s still exists", obj, name)
}
