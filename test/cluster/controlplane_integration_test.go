//go:build integration

package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

func widgetCRD() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": "widgets.test.tpctl.io"},
		"spec": map[string]any{
			"group": "test.tpctl.io",
			"scope": "Namespaced",
			"names": map[string]any{"plural": "widgets", "singular": "widget", "kind": "Widget"},
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{
					"type": "object",
					"properties": map[string]any{"spec": map[string]any{
						"type":     "object",
						"required": []any{"port"},
						"properties": map[string]any{"port": map[string]any{
							"type": "integer", "minimum": 1, "maximum": 65535,
							"x-kubernetes-validations": []any{map[string]any{
								"rule": "self != 6443", "message": "port 6443 is reserved",
							}},
						}},
					}},
				}},
			}},
		},
	}}
}

func widget(name string, port int64) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "test.tpctl.io/v1", "kind": "Widget",
		"metadata": map[string]any{"name": name, "namespace": "default"},
		"spec":     map[string]any{"port": port},
	}}
}

func TestControlPlaneCRDAndWatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cp := StartControlPlane(ctx, t)

	// The kubeconfig file works as well as the in-memory config.
	fromFile, err := clientcmd.BuildConfigFromFlags("", cp.Kubeconfig())
	require.NoError(t, err)
	cs, err := kubernetes.NewForConfig(fromFile)
	require.NoError(t, err)
	v, err := cs.Discovery().ServerVersion()
	require.NoError(t, err)
	assert.Equal(t, PinnedVersions().Kubernetes, v.GitVersion)

	dyn, err := dynamic.NewForConfig(cp.RESTConfig())
	require.NoError(t, err)
	_, err = dyn.Resource(crdGVR).Create(ctx, widgetCRD(), metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		crd, err := dyn.Resource(crdGVR).Get(ctx, "widgets.test.tpctl.io", metav1.GetOptions{})
		if err != nil {
			return false
		}
		conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				return true
			}
		}
		return false
	}, 30*time.Second, 100*time.Millisecond, "CRD established")

	widgets := dyn.Resource(schema.GroupVersionResource{Group: "test.tpctl.io", Version: "v1", Resource: "widgets"}).Namespace("default")
	// Discovery of a new CRD can lag a moment behind Established.
	var w watch.Interface
	require.Eventually(t, func() bool {
		w, err = widgets.Watch(ctx, metav1.ListOptions{})
		return err == nil
	}, 30*time.Second, 100*time.Millisecond)
	defer w.Stop()

	_, err = widgets.Create(ctx, widget("a", 2020), metav1.CreateOptions{})
	require.NoError(t, err)

	// CEL validation runs in the real API server.
	_, err = widgets.Create(ctx, widget("reserved", 6443), metav1.CreateOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "port 6443 is reserved")
	_, err = widgets.Create(ctx, widget("range", 70000), metav1.CreateOptions{})
	require.Error(t, err)

	select {
	case ev := <-w.ResultChan():
		require.Equal(t, watch.Added, ev.Type)
		obj := ev.Object.(*unstructured.Unstructured)
		assert.Equal(t, "a", obj.GetName())
		port, _, _ := unstructured.NestedInt64(obj.Object, "spec", "port")
		assert.Equal(t, int64(2020), port)
	case <-ctx.Done():
		t.Fatal("no watch event")
	}

	require.NoError(t, widgets.Delete(ctx, "a", metav1.DeleteOptions{}))
	select {
	case ev := <-w.ResultChan():
		assert.Equal(t, watch.Deleted, ev.Type)
	case <-ctx.Done():
		t.Fatal("no delete event")
	}
}

// Two control planes run side by side without clashing.
func TestControlPlanesSideBySide(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := StartControlPlane(ctx, t)
	b := StartControlPlane(ctx, t)
	assert.NotEqual(t, a.URL(), b.URL())
	for _, cp := range []*ControlPlane{a, b} {
		cs, err := kubernetes.NewForConfig(cp.RESTConfig())
		require.NoError(t, err)
		_, err = cs.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
		require.NoError(t, err)
	}
}
