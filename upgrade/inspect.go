package upgrade

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tpctl/tpctl/installer"
)

// Cluster is what the upgrade reads from the node's API server.
type Cluster interface {
	Node(ctx context.Context, name string) (*corev1.Node, error)
	// Release returns the newest revision of a Helm release (nil, nil when
	// it is not installed).
	Release(ctx context.Context, namespace, name string) (*Release, error)
	// Image returns the first container image of a Deployment ("" when
	// absent).
	Image(ctx context.Context, namespace, name string) (string, error)
}

// kubeCluster is Cluster over client-go. Helm releases are read from
// Helm's storage (Secrets sh.helm.release.v1.NAME.vREV), which stays the
// same across Helm SDK versions.
type kubeCluster struct{ cs kubernetes.Interface }

// NewCluster opens the API through a kubeconfig file.
func NewCluster(kubeconfig string) (Cluster, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", kubeconfig, err)
	}
	cfg.Timeout = 15 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &kubeCluster{cs: cs}, nil
}

func (k *kubeCluster) Node(ctx context.Context, name string) (*corev1.Node, error) {
	return k.cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
}

func (k *kubeCluster) Image(ctx context.Context, namespace, name string) (string, error) {
	d, err := k.cs.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if cs := d.Spec.Template.Spec.Containers; len(cs) > 0 {
		return cs[0].Image, nil
	}
	return "", nil
}

func (k *kubeCluster) Release(ctx context.Context, namespace, name string) (*Release, error) {
	list, err := k.cs.CoreV1().Secrets(namespace).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=" + name})
	if err != nil {
		return nil, err
	}
	var rels []*Release
	for _, s := range list.Items {
		r, err := decodeRelease(s.Data["release"])
		if err != nil {
			return nil, fmt.Errorf("Helm release secret %s/%s: %w", namespace, s.Name, err)
		}
		rels = append(rels, r)
	}
	return newest(rels), nil
}

// newest is the release of highest revision (nil for none).
func newest(rels []*Release) *Release {
	if len(rels) == 0 {
		return nil
	}
	sort.Slice(rels, func(i, j int) bool { return rels[i].Revision > rels[j].Revision })
	return rels[0]
}

// maxRelease bounds a decompressed release record.
const maxRelease = 32 << 20

// decodeRelease reads Helm's storage encoding: base64 of gzip of JSON.
func decodeRelease(data []byte) (*Release, error) {
	raw, err := base64.StdEncoding.DecodeString(string(data))
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if bytes.HasPrefix(raw, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("gunzip: %w", err)
		}
		raw, err = io.ReadAll(io.LimitReader(zr, maxRelease))
		if err != nil {
			return nil, fmt.Errorf("gunzip: %w", err)
		}
	}
	var rel struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
		Version   int    `json:"version"`
		Info      struct {
			Status string `json:"status"`
		} `json:"info"`
		Chart struct {
			Metadata struct {
				Version    string `json:"version"`
				AppVersion string `json:"appVersion"`
			} `json:"metadata"`
		} `json:"chart"`
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal(raw, &rel); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return &Release{Namespace: rel.Namespace, Name: rel.Name, Revision: rel.Version, Status: rel.Info.Status,
		Chart: rel.Chart.Metadata.Version, AppVersion: rel.Chart.Metadata.AppVersion, Values: rel.Config}, nil
}

// Inspect reads what the host runs: the install state below root and,
// through cluster (nil: not reachable), the node, the releases and the
// operator image. It changes nothing.
func Inspect(ctx context.Context, root string, cluster func(kubeconfig string) (Cluster, error), now func() time.Time) Installed {
	var in Installed
	path := filepath.Join(root, installer.StatePath)
	raw, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return in
	case err != nil:
		in.StateFound, in.StateErr = true, err
		return in
	}
	in.StateFound = true
	var head struct {
		Version int `json:"version"`
	}
	if json.Unmarshal(raw, &head) == nil {
		in.StateVersion = head.Version
	}
	st, err := installer.LoadState(path, now)
	if err != nil {
		in.StateErr = err
		return in
	}
	in.State = st.Get()
	if u := in.State.Upgrade; u != nil {
		in.Present = map[string]bool{}
		for _, k := range u.Kept {
			_, err := os.Lstat(filepath.Join(root, k.Path))
			in.Present[k.Path] = err == nil
		}
	}
	if cluster == nil {
		in.NodeErr = errors.New("no API client")
		return in
	}
	cl, err := cluster(filepath.Join(root, installer.KubeconfigPath))
	if err != nil {
		in.NodeErr = err
		return in
	}
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	n, err := cl.Node(rctx, in.State.Config.NodeName)
	if err != nil {
		in.NodeErr = err
	} else {
		in.NodeReady, in.NodeReason = installer.NodeReady(n)
	}
	in.Releases = map[string]Release{}
	for _, r := range []struct{ ns, name string }{{installer.OperatorNamespace, installer.OperatorRelease}, {installer.InstanceNamespace, installer.InstanceRelease}} {
		rel, err := cl.Release(rctx, r.ns, r.name)
		if err != nil {
			if in.NodeErr == nil {
				in.NodeErr = fmt.Errorf("read Helm release %s/%s: %w", r.ns, r.name, err)
			}
			continue
		}
		if rel != nil {
			in.Releases[r.name] = *rel
		}
	}
	if img, err := cl.Image(rctx, installer.OperatorNamespace, installer.OperatorRelease); err == nil {
		in.OperatorImage = img
	}
	return in
}
