//go:build e2e

// Package kubetarget is the end-to-end test of `tpctl install --target
// kubernetes`: the real-node harness (test/cluster Node) plays someone
// else's cluster. tpctl installs only the two charts into it, with the
// operator image the node already has, a pipeline carries bytes from the
// node's address to the sink, and `tpctl uninstall --target kubernetes`
// leaves the cluster's objects as they were found.
package kubetarget

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
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/internal/operatorimage"
	"github.com/tpctl/tpctl/kubetarget"
	tpop "github.com/tpctl/tpctl/operator"
	"github.com/tpctl/tpctl/test/cluster"
	"github.com/tpctl/tpctl/test/e2e/e2etest"
	"github.com/tpctl/tpctl/test/images"
)

// churn are resources whose objects come and go by themselves (events,
// leader leases) or mirror others (endpoints of Services).
var churn = map[string]bool{
	"events": true, "events.events.k8s.io": true, "leases.coordination.k8s.io": true,
	"endpoints": true, "endpointslices.discovery.k8s.io": true,
}

// snapshot lists every object of every listable resource: resource,
// namespace, name and UID, and for namespaces their labels and annotations
// (install labels namespace default; uninstall must take that back).
func snapshot(ctx context.Context, t *testing.T, dc discovery.DiscoveryInterface, dyn dynamic.Interface) map[string]string {
	t.Helper()
	lists, err := dc.ServerPreferredResources()
	require.NoError(t, err)
	out := map[string]string{}
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		require.NoError(t, err)
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !contains(r.Verbs, "list") {
				continue
			}
			key := r.Name
			if gv.Group != "" {
				key += "." + gv.Group
			}
			if churn[key] {
				continue
			}
			items, err := dyn.Resource(gv.WithResource(r.Name)).List(ctx, metav1.ListOptions{})
			require.NoError(t, err, key)
			for _, it := range items.Items {
				id := fmt.Sprintf("%s %s/%s", key, it.GetNamespace(), it.GetName())
				val := string(it.GetUID())
				if key == "namespaces" {
					b, _ := json.Marshal(map[string]any{"labels": it.GetLabels(), "annotations": it.GetAnnotations()})
					val += " " + string(b)
				}
				out[id] = val
			}
		}
	}
	return out
}

// diff says how after differs from before.
func diff(before, after map[string]string) []string {
	var out []string
	for k, v := range before {
		switch w, ok := after[k]; {
		case !ok:
			out = append(out, "gone: "+k)
		case w != v:
			out = append(out, "changed: "+k+": "+v+" → "+w)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			out = append(out, "new: "+k)
		}
	}
	sort.Strings(out)
	return out
}

func TestInstallIntoAnExistingCluster(t *testing.T) {
	e2etest.NeedRoot(t)
	// The bound includes the wait for the host lock other node tests hold.
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	root, err := filepath.Abs("../../..")
	require.NoError(t, err)
	bin := e2etest.BuildTpctl(t)
	imgDir := t.TempDir()
	sinkTar, err := images.Build(ctx, imgDir, images.Sink())
	require.NoError(t, err)
	opTar, opRef, err := operatorimage.Build(ctx, root, "e2e", "e2e", imgDir)
	require.NoError(t, err)

	// Someone else's cluster; its nodes already have the operator image
	// (as they would pull it from a registry).
	n := cluster.StartNode(ctx, t, cluster.NodeOptions{Images: []string{sinkTar, opTar}, Logf: t.Logf})
	dyn, err := dynamic.NewForConfig(n.RESTConfig())
	require.NoError(t, err)
	dc, err := discovery.NewDiscoveryClientForConfig(n.RESTConfig())
	require.NoError(t, err)
	before := snapshot(ctx, t, dc, dyn)
	t.Logf("the cluster holds %d objects before the install", len(before))

	kc := []string{"--target", "kubernetes", "--kubeconfig", n.Kubeconfig()}
	start := time.Now()
	stdout, stderr, err := e2etest.Run(bin, append([]string{"install", "--operator-image", opRef,
		"--pipeline-image", images.SinkRef, "--pipeline-arg=--http", "--pipeline-arg=:2020", "-o", "json", "--timeout", "8m"}, kc...)...)
	require.NoError(t, err, "install:\n%s\n%s\n%s", stdout, stderr, n.Logs(40))
	t.Logf("install --target kubernetes took %s", time.Since(start).Round(time.Second))
	var res kubetarget.Result
	require.NoError(t, json.Unmarshal([]byte(stdout), &res), stdout)
	assert.True(t, res.Ready)
	assert.Equal(t, opRef, res.Image)
	assert.False(t, res.Preflight.Failed())
	// The harness runs no load balancer: the install says so and switches.
	assert.Equal(t, v1alpha1.ServiceTypeNodePort, res.Service)
	require.NotEmpty(t, res.Preflight.Notes)
	assert.Contains(t, res.Preflight.Notes[0], "NodePort")
	assert.Contains(t, res.Record, "sh.helm.release.v1.tp-operator")

	scheme, err := tpop.NewScheme()
	require.NoError(t, err)
	c, err := client.New(n.RESTConfig(), client.Options{Scheme: scheme})
	require.NoError(t, err)
	var opPod corev1.PodList
	require.NoError(t, c.List(ctx, &opPod, client.InNamespace(kubetarget.OperatorNamespace), client.MatchingLabels{"app.kubernetes.io/name": "tp-operator"}))
	require.Len(t, opPod.Items, 1)
	assert.Equal(t, opRef, opPod.Items[0].Spec.Containers[0].Image)

	t.Run("a pipeline carries bytes from its frontend to the sink", func(t *testing.T) {
		p := &v1alpha1.Pipeline{
			ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: "default"},
			Spec: v1alpha1.PipelineSpec{Instance: "core", AutoDetectPorts: ptr.To(false),
				Ports: []v1alpha1.PipelinePort{{Protocol: v1alpha1.ProtocolTCP, Port: 30710}},
				Env:   []corev1.EnvVar{{Name: "SINK_TCP", Value: "30710"}, {Name: "SINK_UDP", Value: ""}}},
		}
		require.NoError(t, c.Create(ctx, p))
		require.Eventually(t, func() bool {
			got := &v1alpha1.Pipeline{}
			if c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "edge"}, got) != nil {
				return false
			}
			cond := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady)
			return cond != nil && cond.Status == metav1.ConditionTrue && cond.ObservedGeneration == got.Generation
		}, 3*time.Minute, 250*time.Millisecond, "pipeline edge not Ready")
		svc := &corev1.Service{}
		require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "edge"}, svc))
		assert.Equal(t, corev1.ServiceTypeNodePort, svc.Spec.Type, "the instance's default type")
		require.Equal(t, int32(30710), svc.Spec.Ports[0].NodePort, "the frontend is the node port")
		sendTCP(t, net.JoinHostPort(n.NodeIP(), "30710"), "to-edge-frontend")
		received(ctx, t, c, "edge", "tcp/30710", "to-edge-frontend")
	})

	t.Run("uninstall leaves the cluster as it was found", func(t *testing.T) {
		stdout, stderr, err := e2etest.Run(bin, append([]string{"uninstall", "--dry-run"}, kc...)...)
		require.NoError(t, err, "%s\n%s", stdout, stderr)
		assert.Contains(t, stdout, "delete CoreInstance default/core and its 2 Pipeline(s)")
		assert.Contains(t, stdout, "delete namespace tpctl-system (tpctl created it)")
		start := time.Now()
		stdout, stderr, err = e2etest.Run(bin, append([]string{"uninstall", "--yes"}, kc...)...)
		require.NoError(t, err, "uninstall:\n%s\n%s", stdout, stderr)
		t.Logf("uninstall --target kubernetes took %s:\n%s", time.Since(start).Round(time.Second), stdout)
		var last []string
		ok := assert.Eventually(t, func() bool {
			last = diff(before, snapshot(ctx, t, dc, dyn))
			return len(last) == 0
		}, 3*time.Minute, time.Second)
		require.True(t, ok, "the cluster differs from before the install:\n%s", strings.Join(last, "\n"))

		stdout, _, err = e2etest.Run(bin, append([]string{"uninstall", "--yes"}, kc...)...)
		require.NoError(t, err)
		assert.Contains(t, stdout, "Nothing to uninstall")
	})
}

type sinkReport struct {
	Ports []struct {
		Protocol string   `json:"protocol"`
		Port     int      `json:"port"`
		Last     []string `json:"last"`
	} `json:"ports"`
}

// received asks the sink in the pipeline's pod (its HTTP port 2020) until
// port has received payload.
func received(ctx context.Context, t *testing.T, c client.Client, pipeline, port, payload string) {
	t.Helper()
	var pods corev1.PodList
	require.NoError(t, c.List(ctx, &pods, client.InNamespace("default"), client.MatchingLabels{tpop.LabelPipeline: pipeline}))
	require.NotEmpty(t, pods.Items)
	var body string
	require.Eventually(t, func() bool {
		for _, pod := range pods.Items {
			body = httpGet(ctx, fmt.Sprintf("http://%s/received", net.JoinHostPort(pod.Status.PodIP, "2020")))
			var rep sinkReport
			if json.Unmarshal([]byte(body), &rep) != nil {
				continue
			}
			for _, p := range rep.Ports {
				if fmt.Sprintf("%s/%d", p.Protocol, p.Port) == port && contains(p.Last, payload) {
					return true
				}
			}
		}
		return false
	}, time.Minute, 250*time.Millisecond, "%s %s never received %q; last report %s", pipeline, port, payload, body)
}

func httpGet(ctx context.Context, url string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return ""
	}
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return string(data)
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
	}, time.Minute, 250*time.Millisecond, "send to %s", addr)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
