package installer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	release "helm.sh/helm/v4/pkg/release/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tpctl/tpctl/api/v1alpha1"
	bundle "github.com/tpctl/tpctl/bundle"
	"github.com/tpctl/tpctl/charts"
	"github.com/tpctl/tpctl/internal/operatorimage"
)

// Where the charts go. The operator has a namespace of its own; the core
// instance lives in "default", the namespace `tpctl pipeline` and the
// terminal UI work in unless told otherwise, because a pipeline belongs to
// an instance of its own namespace.
const (
	OperatorNamespace   = "tpctl-system"
	OperatorRelease     = charts.Operator
	InstanceNamespace   = "default"
	InstanceRelease     = "core"
	DefaultInstanceName = "core"
	// HealthCheckPort is the core instance's health-check pipeline port.
	HealthCheckPort = 2020
	// DefaultReadyTimeout bounds the wait for the CoreInstance to be Ready.
	DefaultReadyTimeout = 5 * time.Minute
)

// maxInstanceName keeps "<name>-health", the health-check pipeline, within
// the 54 characters of a pipeline name.
const maxInstanceName = 47

var instanceNameRE = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)

// HelmClient is what the chart steps need of a Helm release; *HelmRelease
// implements it.
type HelmClient interface {
	Done(ctx context.Context) (bool, error)
	Current(ctx context.Context) (*release.Release, error)
	Apply(ctx context.Context) (HelmResult, error)
	Uninstall(ctx context.Context, deleteCRDs bool) error
}

// Charts configures the steps that follow a Ready node: stage and import
// the operator image, install the operator chart, install the core-instance
// chart, wait for the CoreInstance to be Ready. It is the plan's
// Options.Charts.
type Charts struct {
	// Version is tpctl's build version: the charts built into tpctl and the
	// operator image built from the running binary take charts.SemVer of it.
	Version string
	// InstanceName names the CoreInstance (DefaultInstanceName when empty).
	InstanceName string
	// PipelineImage and PipelineArgs are the instance's pipeline defaults
	// (empty: the operator's Fluent Bit image and its arguments).
	PipelineImage string
	PipelineArgs  []string
	// Timeout bounds each Helm operation (DefaultHelmTimeout when 0);
	// ReadyTimeout the wait for the CoreInstance (DefaultReadyTimeout).
	Timeout      time.Duration
	ReadyTimeout time.Duration
	// NoWait skips Helm's wait for the releases' resources (clusters that
	// run no pods).
	NoWait bool
	// Executable is the tpctl binary the operator image is built from when
	// the payload carries none (os.Executable when nil).
	Executable func() (string, error)
	// Ctr runs `k3s ctr ARGS…` with the K3s binary at k3s (exec when nil).
	Ctr func(ctx context.Context, k3s string, args ...string) ([]byte, error)
	// Helm wraps a release (the release itself when nil).
	Helm func(*HelmRelease) HelmClient
	// HealthProbe asks the health-check URL from this host
	// (HTTPHealthProbe when nil).
	HealthProbe HealthProbe
}

// Validate checks the chart settings; errors name the flag.
func (c Charts) Validate() error {
	var errs []error
	if n := c.InstanceName; n != "" && (len(n) > maxInstanceName || !instanceNameRE.MatchString(n)) {
		errs = append(errs, fmt.Errorf("--instance-name %q: want lower-case letters, digits and '-', starting with a letter, at most %d characters", n, maxInstanceName))
	}
	if strings.ContainsAny(c.PipelineImage, " \t\n\"'") {
		errs = append(errs, fmt.Errorf("--pipeline-image %q: an image reference has no spaces or quotes", c.PipelineImage))
	}
	if len(c.PipelineArgs) > 0 && c.PipelineImage == "" {
		errs = append(errs, errors.New("--pipeline-arg needs --pipeline-image (Fluent Bit takes the operator's arguments)"))
	}
	return errors.Join(errs...)
}

func (c Charts) instanceName() string {
	if c.InstanceName == "" {
		return DefaultInstanceName
	}
	return c.InstanceName
}

// chartsRun is what the chart steps of one plan share: the chart archives
// and the operator image, each resolved once.
type chartsRun struct {
	Charts
	env *Env
	mu  sync.Mutex
	src map[string]*chartSource
	img *operatorImage
	// healthURL is the health-check URL from this host, once known.
	healthURL string
}

// chartSource is one chart archive and where it came from.
type chartSource struct {
	data    []byte
	version string
	from    string
}

// steps returns the chart steps for env: "stage operator image" (placed
// before K3s starts), "import operator image", "install operator chart",
// "install core-instance chart" and "wait for core instance".
func (c Charts) steps(env *Env) []Step {
	r := &chartsRun{Charts: c, env: env, src: map[string]*chartSource{}}
	env.charts = r
	return []Step{
		&imageStageStep{r: r},
		&imageImportStep{r: r},
		&releaseStep{r: r, chart: charts.Operator, namespace: OperatorNamespace, release: OperatorRelease, name: "install operator chart"},
		&releaseStep{r: r, chart: charts.CoreInstance, namespace: InstanceNamespace, release: InstanceRelease, name: "install core-instance chart"},
		&instanceWaitStep{r: r},
	}
}

// chart returns the named chart's archive: the payload's (sha256-checked)
// when it carries one, else the chart built into tpctl at its version.
func (r *chartsRun) chart(name string) (*chartSource, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.src[name]; ok {
		return s, nil
	}
	var s *chartSource
	if b := r.env.Bundle; b != nil {
		if a, ok := b.Find(bundle.KindChart, name); ok {
			data, err := readArtifact(b, a)
			if err != nil {
				return nil, err
			}
			s = &chartSource{data: data, version: a.Version, from: "payload:" + a.File}
		}
	}
	if s == nil {
		v := charts.SemVer(r.Version)
		data, err := charts.Archive(name, v)
		if err != nil {
			return nil, fmt.Errorf("package chart %s: %w", name, err)
		}
		s = &chartSource{data: data, version: v, from: "built into tpctl"}
	}
	r.src[name] = s
	return s, nil
}

// readArtifact reads a payload artifact whole and checks it against the
// manifest.
func readArtifact(b *bundle.Bundle, a bundle.Artifact) ([]byte, error) {
	f, err := b.OpenArtifact(a)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", a, err)
	}
	if err := bundle.VerifyReader(bytes.NewReader(data), a.String(), bundle.Expect{SHA256: a.SHA256, Size: a.Size}); err != nil {
		return nil, err
	}
	return data, nil
}

// values returns the values tpctl gives a chart.
func (r *chartsRun) values(chart string) (map[string]any, error) {
	c := r.env.Config
	if chart == charts.Operator {
		img, err := r.image()
		if err != nil {
			return nil, err
		}
		v := map[string]any{
			"image":         map[string]any{"repository": operatorimage.Repository, "tag": img.tag, "pullPolicy": "IfNotPresent"},
			"nodePortRange": c.NodePortRange,
		}
		if c.CNI == CNICilium {
			v["nodeConditions"] = []any{"cni=cilium"}
		}
		v["packagedComponents"] = packagedComponents(c)
		if ls := r.env.Facts.HostListeners; len(ls) > 0 {
			reserved := make([]any, len(ls))
			for i, l := range ls {
				reserved[i] = l
			}
			v["reservedPorts"] = reserved
		}
		return v, nil
	}
	proxy := map[string]any{"httpProxy": c.HTTPProxy, "httpsProxy": c.HTTPSProxy, "noProxy": ""}
	if c.HTTPProxy != "" || c.HTTPSProxy != "" {
		// Pipeline pods reach the cluster's own addresses directly.
		proxy["noProxy"] = strings.Join(NoProxyList(c), ",")
	}
	defaults := map[string]any{"serviceType": string(DefaultPipelineServiceType(c))}
	if r.PipelineImage != "" {
		defaults["image"] = r.PipelineImage
	}
	if len(r.PipelineArgs) > 0 {
		args := make([]any, len(r.PipelineArgs))
		for i, a := range r.PipelineArgs {
			args[i] = a
		}
		defaults["args"] = args
	}
	return map[string]any{
		"name":             r.instanceName(),
		"proxy":            proxy,
		"healthCheck":      map[string]any{"enabled": true, "port": HealthCheckPort},
		"pipelineDefaults": defaults,
	}, nil
}

// packagedComponents lists the enabled K3s packaged components whose node
// ports the operator never gives to a pipeline (its --packaged-component).
func packagedComponents(c Config) []any {
	if c.Disabled("traefik") {
		return []any{}
	}
	return []any{"traefik"}
}

// DefaultPipelineServiceType is the Service type of pipelines that name
// none: LoadBalancer when K3s's servicelb gives LoadBalancer Services an
// address, NodePort when servicelb is disabled (nothing else would) or the
// CNI is Cilium (servicelb's pods publish ports through hostPort, which
// Cilium serves only when configured for it; a node port works with any
// setup).
func DefaultPipelineServiceType(c Config) v1alpha1.ServiceType {
	if c.Disabled("servicelb") || c.CNI == CNICilium {
		return v1alpha1.ServiceTypeNodePort
	}
	return v1alpha1.ServiceTypeLoadBalancer
}

// kubeconfigReady reports whether K3s's kubeconfig exists (before the
// first start there is no API to ask).
func (r *chartsRun) kubeconfigReady() bool {
	_, err := os.Stat(r.env.Kubeconfig())
	return err == nil
}

func (r *chartsRun) api() (ChartAPI, error) {
	if r.env.ChartAPI == nil {
		return nil, errors.New("no Kubernetes API client configured")
	}
	return r.env.ChartAPI(r.env.Kubeconfig())
}

// reachable asks the API server's /readyz, briefly: uninstall must not hang
// on a K3s that no longer runs.
func (r *chartsRun) reachable(ctx context.Context) error {
	if !r.kubeconfigReady() {
		return fmt.Errorf("no kubeconfig at %s", KubeconfigPath)
	}
	api, err := r.api()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return api.Readyz(ctx)
}

// releaseStep installs or upgrades one chart's release with Helm. Undone,
// it uninstalls it: the operator's also deletes the CRDs, and the core
// instance's also deletes its CoreInstance (which Helm keeps, see the
// chart) and every Pipeline of it. When uninstall keeps the data, the
// operator's CRDs stay, and the core instance's release is not touched at
// all: the release, its CoreInstance and every Pipeline stay in the kept
// data dir, and a later install finds them as they were.
type releaseStep struct {
	r                         *chartsRun
	name                      string
	chart, namespace, release string
	note                      string
}

func (s *releaseStep) Name() string { return s.name }

// Note is the remark of the last Done or Undone.
func (s *releaseStep) Note() string { return s.note }

func (s *releaseStep) Describe() string {
	src, err := s.r.chart(s.chart)
	if err != nil {
		return "Helm install or upgrade of release " + s.namespace + "/" + s.release + ": " + err.Error()
	}
	what := fmt.Sprintf("Helm install or upgrade of release %s/%s, chart %s %s (%s)", s.namespace, s.release, s.chart, src.version, src.from)
	if s.chart == charts.Operator {
		ref := "(unknown)"
		if img, err := s.r.image(); err == nil {
			ref = img.ref
		}
		what += ": the CRDs (applied server-side), least-privilege RBAC and the operator Deployment, image " + ref + ", pull policy IfNotPresent"
		if ls := s.r.env.Facts.HostListeners; len(ls) > 0 {
			what += "; never a frontend, as programs on this host serve them: " + strings.Join(ls, ", ")
		}
		return what
	}
	return what + fmt.Sprintf(": CoreInstance %s/%s with the install's proxies and the health check on TCP %d; Pod Security restricted warn and audit labels (not enforce) on namespace %s", InstanceNamespace, s.r.instanceName(), HealthCheckPort, InstanceNamespace)
}

// helm returns the release, reporting progress on ev (nil: none).
func (s *releaseStep) helm(ev Events, withValues bool) (HelmClient, error) {
	src, err := s.r.chart(s.chart)
	if err != nil {
		return nil, err
	}
	h := &HelmRelease{Kubeconfig: s.r.env.Kubeconfig(), Namespace: s.namespace, Name: s.release, Chart: src.data,
		Timeout: s.r.Timeout, NoWait: s.r.NoWait, CacheDir: s.r.env.FS.Path(HelmCacheDir)}
	if s.chart == charts.CoreInstance {
		h.Keep = []string{v1alpha1.KindCoreInstance}
	}
	if s.namespace != InstanceNamespace {
		// A namespace tpctl creates runs only pods that meet the
		// restricted Pod Security Standard ("default" is not tpctl's).
		h.NamespaceLabels = restrictedNamespaceLabels()
	} else {
		// "default" is shared with whatever else runs there: warn and
		// audit, never refuse others' pods.
		h.AdvisoryNamespaceLabels = advisoryNamespaceLabels()
	}
	if withValues {
		if h.Values, err = s.r.values(s.chart); err != nil {
			return nil, err
		}
	}
	if ev != nil {
		h.Progress = func(msg string) { ev.Emit(Event{Type: EventProgress, Message: msg}) }
	}
	if s.r.Helm != nil {
		return s.r.Helm(h), nil
	}
	return h, nil
}

func (s *releaseStep) Done(ctx context.Context) (bool, error) {
	s.note = ""
	if !s.r.kubeconfigReady() {
		return false, nil
	}
	h, err := s.helm(nil, true)
	if err != nil {
		return false, err
	}
	done, err := h.Done(ctx)
	if err != nil || !done {
		return false, err
	}
	src, _ := s.r.chart(s.chart)
	s.note = fmt.Sprintf("release %s/%s is deployed with chart %s %s and these values", s.namespace, s.release, s.chart, src.version)
	return true, nil
}

func (s *releaseStep) Run(ctx context.Context, ev Events) error {
	h, err := s.helm(ev, true)
	if err != nil {
		return err
	}
	res, err := h.Apply(ctx)
	if err != nil {
		return err
	}
	if res.Recovered != "" {
		logf(ev, true, "release %s/%s was stuck and has been recovered: %s", s.namespace, s.release, res.Recovered)
	}
	summarize(ev, "release %s/%s %s (revision %d, chart %s %s)", s.namespace, s.release, res.Action, res.Revision, s.chart, res.ChartVersion)
	return nil
}

// instanceWaitStep waits until the CoreInstance reports Ready for its
// current generation.
type instanceWaitStep struct{ r *chartsRun }

func (s *instanceWaitStep) Name() string { return "wait for core instance" }

func (s *instanceWaitStep) Describe() string {
	return fmt.Sprintf("wait until CoreInstance %s/%s is Ready (its health-check pipeline runs) and the health check answers from this host (%s on the Service's address), at most %s",
		InstanceNamespace, s.r.instanceName(), HealthCheckPath, s.timeout())
}

func (s *instanceWaitStep) timeout() time.Duration {
	if s.r.ReadyTimeout > 0 {
		return s.r.ReadyTimeout
	}
	return DefaultReadyTimeout
}

// check looks once: "" when Ready, else what is awaited.
func (s *instanceWaitStep) check(ctx context.Context, api ChartAPI) (string, error) {
	name := s.r.instanceName()
	inst, err := api.CoreInstance(ctx, InstanceNamespace, name)
	if apierrors.IsNotFound(err) {
		return "CoreInstance " + InstanceNamespace + "/" + name + " to exist", nil
	}
	if err != nil {
		return "the API server (" + err.Error() + ")", nil
	}
	if why := instanceNotReady(inst); why != "" {
		return "CoreInstance " + InstanceNamespace + "/" + name + " to be Ready (" + why + ")", nil
	}
	return s.r.checkHealthURL(ctx, api)
}

// instanceNotReady says why inst is not Ready for its generation ("" when
// it is).
func instanceNotReady(inst *v1alpha1.CoreInstance) string {
	c := meta.FindStatusCondition(inst.Status.Conditions, v1alpha1.ConditionReady)
	switch {
	case c == nil:
		return "not reconciled by the operator yet"
	case c.ObservedGeneration < inst.Generation:
		return fmt.Sprintf("generation %d not reconciled by the operator yet", inst.Generation)
	case c.Status != metav1.ConditionTrue:
		return c.Reason + ": " + c.Message
	}
	return ""
}

func (s *instanceWaitStep) Done(ctx context.Context) (bool, error) {
	if !s.r.kubeconfigReady() {
		return false, nil
	}
	api, err := s.r.api()
	if err != nil {
		return false, err
	}
	missing, err := s.check(ctx, api)
	return err == nil && missing == "", err
}

// payloadHasPipelineImage reports whether this tpctl stages the default
// pipeline image (release builds carry it; the release fetches exactly
// v1alpha1.DefaultPipelineImage).
func payloadHasPipelineImage(env *Env) bool {
	if env.Bundle == nil {
		return false
	}
	_, ok := env.Bundle.Find(bundle.KindPipelineImage, "")
	return ok
}

func (s *instanceWaitStep) Run(ctx context.Context, ev Events) error {
	api, err := s.r.api()
	if err != nil {
		return err
	}
	limit := s.timeout()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if c := s.r.env.Config; c.AirGap && s.r.PipelineImage == "" && !c.Registries.MirrorsImage(v1alpha1.DefaultPipelineImage) && !payloadHasPipelineImage(s.r.env) {
		logf(ev, true, "airGap is set, no --pipeline-image is given and no registry mirror serves %s: the health-check pipeline needs that image, which this host cannot pull", v1alpha1.DefaultPipelineImage)
	}
	start, last := s.r.env.Now(), ""
	for {
		missing, err := s.check(ctx, api)
		if err != nil {
			return err
		}
		if missing == "" {
			summarize(ev, "CoreInstance %s/%s is Ready; its health check answers at %s", InstanceNamespace, s.r.instanceName(), HealthCheckURLOf(s.r.env))
			return nil
		}
		if missing != last {
			ev.Emit(Event{Type: EventProgress, Message: "waiting for " + missing})
			last = missing
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up after %s (limit %s) waiting for %s; see `kubectl -n %s describe coreinstance %s` and the operator's log (`kubectl -n %s logs deploy/%s`): %w",
				s.r.env.Now().Sub(start).Round(time.Second), limit, missing, InstanceNamespace, s.r.instanceName(), OperatorNamespace, OperatorRelease, ctx.Err())
		case <-time.After(s.r.env.Poll):
		}
	}
}

// serviceTypeLine says which Service type pipelines get by default and why.
func (r *chartsRun) serviceTypeLine() string {
	const nodePort = "pipelines default to NodePort (a frontend inside the node port range is the node port; `tpctl pipeline endpoints` shows the others)"
	switch {
	case r.env.Config.Disabled("servicelb"):
		return "No service load balancer (servicelb disabled): " + nodePort + "."
	case DefaultPipelineServiceType(r.env.Config) == v1alpha1.ServiceTypeNodePort:
		return "CNI Cilium: K3s's servicelb publishes LoadBalancer ports through hostPort, which Cilium serves only when set up for it, so " + nodePort +
			"; give a pipeline --service-type LoadBalancer once Cilium (hostPort or its own load balancer) is set up."
	}
	return "Pipelines default to LoadBalancer Services (K3s servicelb publishes their ports on the node)."
}

// summary is what the install summary says about the charts.
func (r *chartsRun) summary() []string {
	ref := "(unknown)"
	if img, err := r.image(); err == nil {
		ref = img.ref
	}
	return []string{
		fmt.Sprintf("Operator: Helm release %s in namespace %s, image %s.", OperatorRelease, OperatorNamespace, ref),
		r.healthCheckLine(),
		r.serviceTypeLine(),
		"Next: `tpctl pipeline create --name NAME --config-file FILE [--port tcp/5170]` adds a pipeline; `tpctl tui` manages them on screen.",
	}
}
