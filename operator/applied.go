package operator

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// appliedMemo remembers, per object, the apply configuration last applied
// and the resourceVersion the API server answered with. When the cached
// object still has that resourceVersion and the new configuration is the
// same, applying again would change nothing, so the call is skipped. Any
// change by someone else (a new resourceVersion) or to the configuration
// leads to a real apply. The zero value is ready to use.
type appliedMemo struct {
	mu sync.Mutex
	m  map[string]appliedState
}

// appliedState is one object's entry: the configuration's SHA-256 (as an
// array: a memo entry per object of thousands of pipelines) and the
// resourceVersion of the answer.
type appliedState struct {
	hash            [sha256.Size]byte
	resourceVersion string
}

func (a *appliedMemo) get(key string) (appliedState, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.m[key]
	return s, ok
}

func (a *appliedMemo) put(key string, s appliedState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string]appliedState{}
	}
	a.m[key] = s
}

// forget drops what is remembered about the objects of a pipeline.
func (a *appliedMemo) forget(namespace, pipeline string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, name := range []string{pipeline, ConfigMapName(pipeline), HeadlessServiceName(pipeline)} {
		for _, kind := range []string{"ConfigMap", "Service", "Deployment", "DaemonSet", "StatefulSet"} {
			delete(a.m, kind+"/"+namespace+"/"+name)
		}
	}
}

// applyOnce applies ac unless existing (the object as the cache or the API
// server showed it, nil when it does not exist) shows that the same
// configuration was applied and nothing changed since. The caller has
// checked that an existing object is controlled by the pipeline (see claim).
func (r *PipelineReconciler) applyOnce(ctx context.Context, ac runtime.ApplyConfiguration, existing client.Object, kind, namespace, name string) error {
	what := kind + " " + name
	data, err := json.Marshal(ac)
	if err != nil {
		return fmt.Errorf("encode %s: %w", what, err)
	}
	hash := sha256.Sum256(data)
	key := kind + "/" + namespace + "/" + name
	exists := existing != nil
	if exists {
		if s, ok := r.applied.get(key); ok && s.hash == hash && s.resourceVersion == existing.GetResourceVersion() {
			return nil
		}
	}
	if err := r.apply(ctx, ac, what, exists); err != nil {
		return err
	}
	// The client decoded the API server's answer into ac.
	var answered struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	if data, err := json.Marshal(ac); err == nil && json.Unmarshal(data, &answered) == nil && answered.Metadata.ResourceVersion != "" {
		r.applied.put(key, appliedState{hash: hash, resourceVersion: answered.Metadata.ResourceVersion})
	}
	return nil
}
