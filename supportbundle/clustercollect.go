package supportbundle

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/installer"
)

// Clients are the cluster collectors' API clients.
type Clients struct {
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
	// Logs reads a container's log; nil reads it through Kube.
	Logs func(ctx context.Context, namespace, pod string, opts *corev1.PodLogOptions) ([]byte, error)
}

// ClusterOptions configure the cluster collectors.
type ClusterOptions struct {
	// Connect builds the clients (from the kubeconfig); its error, or the
	// API server not answering, is recorded by every cluster collector.
	Connect func(ctx context.Context) (*Clients, error)
	Limits  Limits
	// SinceSeconds bounds the logs read.
	SinceSeconds int64
}

// ClusterCollectors returns the collectors that read the API server.
func ClusterCollectors(o ClusterOptions) []Collector {
	var (
		once sync.Once
		cl   *Clients
		cerr error
	)
	// connect once; when the API server does not answer, every collector
	// fails at once with the same reason instead of waiting in turn.
	connect := func(ctx context.Context) (*Clients, error) {
		once.Do(func() {
			if o.Connect == nil {
				cerr = fmt.Errorf("no Kubernetes client configured")
				return
			}
			cl, cerr = o.Connect(ctx)
			if cerr != nil {
				return
			}
			if _, err := cl.Kube.CoreV1().Namespaces().Get(ctx, metav1.NamespaceDefault, metav1.GetOptions{}); err != nil {
				cerr = fmt.Errorf("the API server does not answer: %w", err)
			}
		})
		return cl, cerr
	}
	with := func(fn func(ctx context.Context, c *Clients) ([]File, error)) func(ctx context.Context) ([]File, error) {
		return func(ctx context.Context) ([]File, error) {
			c, err := connect(ctx)
			if err != nil {
				return nil, err
			}
			return fn(ctx, c)
		}
	}
	lim := o.Limits
	return []Collector{
		{Name: "nodes", Part: PartCluster, Source: "API: nodes", Collect: with(func(ctx context.Context, c *Clients) ([]File, error) {
			l, err := c.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, err
			}
			for i := range l.Items {
				l.Items[i].ManagedFields = nil
			}
			return []File{yamlFile("cluster/nodes.yaml", "API: nodes", l)}, nil
		})},
		{Name: "pods", Part: PartCluster, Source: "API: pods in every namespace", Collect: with(func(ctx context.Context, c *Clients) ([]File, error) {
			l, err := c.Kube.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, err
			}
			for i := range l.Items {
				l.Items[i].ManagedFields = nil
			}
			return []File{
				{Path: "cluster/pods.txt", Source: "API: pods (summary)", Data: podTable(l.Items)},
				yamlFile("cluster/pods.yaml", "API: pods", l),
			}, nil
		})},
		{Name: "events", Part: PartCluster, Source: "API: events in every namespace", Collect: with(func(ctx context.Context, c *Clients) ([]File, error) {
			l, err := c.Kube.CoreV1().Events(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, err
			}
			sort.SliceStable(l.Items, func(i, j int) bool { return eventTime(l.Items[i]).Time.Before(eventTime(l.Items[j]).Time) })
			var b bytes.Buffer
			tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "LAST SEEN\tTYPE\tREASON\tOBJECT\tCOUNT\tMESSAGE")
			for _, e := range l.Items {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s/%s/%s\t%d\t%s\n", eventTime(e).UTC().Format("2006-01-02T15:04:05Z"), e.Type, e.Reason,
					e.InvolvedObject.Namespace, strings.ToLower(e.InvolvedObject.Kind), e.InvolvedObject.Name, e.Count,
					strings.ReplaceAll(e.Message, "\n", " "))
			}
			_ = tw.Flush()
			return []File{{Path: "cluster/events.txt", Source: "API: events", Data: b.Bytes(), Tail: true}}, nil
		})},
		{Name: "operator-logs", Part: PartCluster, Source: "API: logs of the pods in " + installer.OperatorNamespace, Collect: with(func(ctx context.Context, c *Clients) ([]File, error) {
			l, err := c.Kube.CoreV1().Pods(installer.OperatorNamespace).List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, err
			}
			if len(l.Items) == 0 {
				return nil, fmt.Errorf("no pod in namespace %s", installer.OperatorNamespace)
			}
			return podLogs(ctx, c, "logs/operator", l.Items, 4*lim.LogLines, o.SinceSeconds, lim.MaxFileBytes), nil
		})},
		{Name: "pipeline-logs", Part: PartCluster, Source: "API: last lines of every pipeline pod", Collect: with(func(ctx context.Context, c *Clients) ([]File, error) {
			l, err := c.Kube.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelPipeline})
			if err != nil {
				return nil, err
			}
			if len(l.Items) == 0 {
				return []File{{Path: "logs/pipelines/NONE", Source: "API: pods labelled " + v1alpha1.LabelPipeline, Data: []byte("no pipeline pod\n")}}, nil
			}
			return podLogs(ctx, c, "logs/pipelines", l.Items, lim.LogLines, o.SinceSeconds, lim.MaxFileBytes), nil
		})},
		{Name: "custom-resources", Part: PartCluster, Source: "API: CoreInstances and Pipelines", Collect: with(func(ctx context.Context, c *Clients) ([]File, error) {
			var fs []File
			for _, r := range []string{v1alpha1.ResourceCoreInstance, v1alpha1.ResourcePipeline} {
				gvr := schema.GroupVersionResource{Group: v1alpha1.Group, Version: v1alpha1.Version, Resource: r}
				f := File{Path: "cluster/" + r + ".yaml", Source: "API: " + gvr.Resource + "." + gvr.Group}
				l, err := c.Dynamic.Resource(gvr).Namespace(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
				if err != nil {
					f.Err = err
				} else {
					for i := range l.Items {
						l.Items[i].SetManagedFields(nil)
					}
					f = yamlFile(f.Path, f.Source, l)
				}
				fs = append(fs, f)
			}
			return fs, nil
		})},
		{Name: "helm-releases", Part: PartCluster, Source: "API: Helm release Secrets (owner=helm), metadata only", Collect: with(func(ctx context.Context, c *Clients) ([]File, error) {
			l, err := c.Kube.CoreV1().Secrets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
			if err != nil {
				return nil, err
			}
			rels := make([]HelmRelease, 0, len(l.Items))
			for _, s := range l.Items {
				rels = append(rels, DecodeHelmRelease(s))
			}
			sort.Slice(rels, func(i, j int) bool {
				if rels[i].Namespace+rels[i].Name != rels[j].Namespace+rels[j].Name {
					return rels[i].Namespace+"/"+rels[i].Name < rels[j].Namespace+"/"+rels[j].Name
				}
				return rels[i].Version < rels[j].Version
			})
			b, err := json.MarshalIndent(rels, "", "  ")
			return []File{{Path: "cluster/helm-releases.json", Data: b, Err: err}}, nil
		})},
	}
}

// yamlFile encodes v as YAML with values under secret-naming keys masked.
func yamlFile(p, source string, v any) File {
	raw, err := yaml.Marshal(v)
	if err != nil {
		return File{Path: p, Source: source, Err: err}
	}
	out, ok := NewRedactor().Structured(raw, false)
	if !ok {
		return File{Path: p, Source: source, Err: fmt.Errorf("could not redact; not copied")}
	}
	return File{Path: p, Source: source, Data: out}
}

func eventTime(e corev1.Event) metav1.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp
	case !e.EventTime.IsZero():
		return metav1.Time{Time: e.EventTime.Time}
	}
	return e.CreationTimestamp
}

func podTable(pods []corev1.Pod) []byte {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tNAME\tPHASE\tREADY\tRESTARTS\tNODE\tREASON")
	for _, p := range pods {
		ready, restarts, reason := 0, int32(0), p.Status.Reason
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Ready {
				ready++
			}
			restarts += cs.RestartCount
			if cs.State.Waiting != nil && reason == "" {
				reason = cs.State.Waiting.Reason
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%d\t%s\t%s\n", p.Namespace, p.Name, p.Status.Phase, ready, len(p.Spec.Containers), restarts, p.Spec.NodeName, reason)
	}
	_ = tw.Flush()
	return b.Bytes()
}

// podLogs reads the last lines of every container of pods (and of the
// previous instance of a restarted container).
func podLogs(ctx context.Context, c *Clients, dir string, pods []corev1.Pod, lines, sinceSeconds, maxBytes int64) []File {
	read := c.Logs
	if read == nil {
		read = func(ctx context.Context, ns, pod string, opts *corev1.PodLogOptions) ([]byte, error) {
			rc, err := c.Kube.CoreV1().Pods(ns).GetLogs(pod, opts).Stream(ctx)
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			return io.ReadAll(io.LimitReader(rc, maxBytes+1))
		}
	}
	var fs []File
	for _, p := range pods {
		restarted := map[string]bool{}
		for _, cs := range p.Status.ContainerStatuses {
			restarted[cs.Name] = cs.RestartCount > 0
		}
		for _, ctr := range p.Spec.Containers {
			for _, prev := range []bool{false, true} {
				if prev && !restarted[ctr.Name] {
					continue
				}
				opts := &corev1.PodLogOptions{Container: ctr.Name, Previous: prev, TailLines: &lines, LimitBytes: &maxBytes, Timestamps: true}
				if sinceSeconds > 0 && !prev {
					opts.SinceSeconds = &sinceSeconds
				}
				name := fmt.Sprintf("%s/%s/%s_%s.log", dir, p.Namespace, p.Name, ctr.Name)
				if prev {
					name = strings.TrimSuffix(name, ".log") + ".previous.log"
				}
				b, err := read(ctx, p.Namespace, p.Name, opts)
				fs = append(fs, File{Path: name, Source: fmt.Sprintf("API: logs %s/%s -c %s (last %d lines)", p.Namespace, p.Name, ctr.Name, lines),
					Data: b, Err: err, Tail: true, Truncated: int64(len(b)) > maxBytes})
			}
		}
	}
	return fs
}

// HelmRelease is the metadata of one Helm release revision; the values,
// manifest and notes are never decoded into the bundle.
type HelmRelease struct {
	Name         string `json:"name"`
	Namespace    string `json:"namespace"`
	Version      int    `json:"revision"`
	Status       string `json:"status"`
	Chart        string `json:"chart,omitempty"`
	ChartVersion string `json:"chartVersion,omitempty"`
	AppVersion   string `json:"appVersion,omitempty"`
	FirstDeploy  string `json:"firstDeployed,omitempty"`
	LastDeploy   string `json:"lastDeployed,omitempty"`
	Description  string `json:"description,omitempty"`
	Object       string `json:"object"` // the Secret it is stored in
	Error        string `json:"error,omitempty"`
}

// helmRecord is the part of Helm's stored release read here.
type helmRecord struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Version   int    `json:"version"`
	Info      struct {
		FirstDeployed string `json:"first_deployed"`
		LastDeployed  string `json:"last_deployed"`
		Description   string `json:"description"`
		Status        string `json:"status"`
	} `json:"info"`
	Chart struct {
		Metadata struct {
			Name       string `json:"name"`
			Version    string `json:"version"`
			AppVersion string `json:"appVersion"`
		} `json:"metadata"`
	} `json:"chart"`
}

// maxRelease bounds a decompressed release record.
const maxRelease = 32 << 20

// DecodeHelmRelease reads the metadata of a release stored by Helm's
// Secret driver (data "release": base64 of gzip of JSON); the labels are
// the fallback when the payload cannot be read.
func DecodeHelmRelease(s corev1.Secret) HelmRelease {
	r := HelmRelease{Name: s.Labels["name"], Namespace: s.Namespace, Status: s.Labels["status"], Object: "Secret/" + s.Name}
	fmt.Sscan(s.Labels["version"], &r.Version) //nolint:errcheck // the label is a fallback
	rec, err := decodeRelease(s.Data["release"])
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Name, r.Version, r.Status = rec.Name, rec.Version, rec.Info.Status
	if rec.Namespace != "" {
		r.Namespace = rec.Namespace
	}
	r.Chart, r.ChartVersion, r.AppVersion = rec.Chart.Metadata.Name, rec.Chart.Metadata.Version, rec.Chart.Metadata.AppVersion
	r.FirstDeploy, r.LastDeploy, r.Description = rec.Info.FirstDeployed, rec.Info.LastDeployed, rec.Info.Description
	return r
}

func decodeRelease(data []byte) (*helmRecord, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("no release data")
	}
	b, err := base64.StdEncoding.DecodeString(string(data))
	if err != nil {
		return nil, fmt.Errorf("release data is not base64: %w", err)
	}
	if len(b) > 3 && bytes.Equal(b[:3], []byte{0x1f, 0x8b, 0x08}) {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("release data: %w", err)
		}
		b, err = io.ReadAll(io.LimitReader(zr, maxRelease+1))
		if err != nil {
			return nil, fmt.Errorf("release data: %w", err)
		}
		if len(b) > maxRelease {
			return nil, fmt.Errorf("release data is over %d bytes", maxRelease)
		}
	}
	var rec helmRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("release data is not JSON: %w", err)
	}
	return &rec, nil
}
