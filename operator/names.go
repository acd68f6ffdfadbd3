package operator

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// Field managers of the operator's server-side applies.
const (
	// FieldManager owns the objects the operator builds and the instance status.
	FieldManager = "tpctl-operator"
	// FieldManagerPorts owns a pipeline's status.ports, status.portSummary and
	// its PortsAssigned condition (written by the CoreInstance reconciler).
	FieldManagerPorts = "tpctl-operator-ports"
	// FieldManagerWorkload owns a pipeline's Ready condition, readyReplicas,
	// serviceType and observedGeneration (written by the Pipeline reconciler).
	FieldManagerWorkload = "tpctl-operator-workload"
)

// Labels set on every object the operator builds.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelPartOf    = "app.kubernetes.io/part-of"
	LabelPipeline  = v1alpha1.LabelPipeline
	LabelCore      = v1alpha1.LabelInstance
	LabelRole      = v1alpha1.LabelRole

	// ManagedBy is the value of LabelManagedBy; the operator's cache only
	// holds objects that carry it.
	ManagedBy = "tpctl-operator"
	// AppName is the value of LabelName on pipeline objects.
	AppName = "tpctl-pipeline"
	// RoleHealthCheck marks the health-check pipeline of an instance.
	RoleHealthCheck = v1alpha1.RoleHealthCheck

	// AnnotationConfigHash on the pod template changes with the configuration,
	// so a new configuration rolls the pods.
	AnnotationConfigHash = v1alpha1.Group + "/config-hash"
)

// Paths inside pipeline pods.
const (
	ConfigDir     = v1alpha1.FilesDir
	configVolume  = "config"
	tmpVolume     = "tmp"
	containerName = "pipeline"
	// PodUser is the uid and gid pipeline pods run as.
	PodUser int64 = 65532
)

// ConfigMapName is the name of a pipeline's ConfigMap.
func ConfigMapName(pipeline string) string { return pipeline + "-config" }

// HeadlessServiceName is the name of a StatefulSet pipeline's governing Service.
func HeadlessServiceName(pipeline string) string { return pipeline + "-headless" }

// HealthCheckPipelineName is the name of an instance's health-check pipeline.
func HealthCheckPipelineName(instance string) string { return instance + "-health" }

// ConfigFile is the file name of the configuration inside ConfigDir.
func ConfigFile(f v1alpha1.ConfigFormat) string {
	if f == v1alpha1.ConfigFormatClassic {
		return "pipeline.conf"
	}
	return "pipeline.yaml"
}

// selectorLabels select a pipeline's pods; they never change.
func selectorLabels(p *v1alpha1.Pipeline) map[string]string {
	return map[string]string{LabelName: AppName, LabelPipeline: p.Name}
}

// objectLabels are set on every object of a pipeline and on its pods.
func objectLabels(p *v1alpha1.Pipeline) map[string]string {
	l := selectorLabels(p)
	l[LabelInstance] = p.Name
	l[LabelManagedBy] = ManagedBy
	l[LabelPartOf] = p.Spec.Instance
	l[LabelCore] = p.Spec.Instance
	if r := p.Labels[LabelRole]; r != "" {
		l[LabelRole] = r
	}
	return l
}

// configHash is a short digest of the configuration the pods run.
func configHash(p *v1alpha1.Pipeline) string {
	h := sha256.New()
	h.Write([]byte(p.Spec.ConfigFormat()))
	h.Write([]byte{0})
	h.Write([]byte(p.Spec.Config.Content))
	// The files, by name; none leaves the digest of a pipeline without
	// files as it was, so adding the files feature rolls no pods.
	names := make([]string, 0, len(p.Spec.Files))
	for name := range p.Spec.Files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(h, "\x00%s\x00%d\x00", name, len(p.Spec.Files[name]))
		h.Write([]byte(p.Spec.Files[name]))
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// checkName reports whether a pipeline's name can name its objects: the
// Service needs a DNS-1035 label, and the derived names must stay within 63
// characters.
func checkName(name string) error {
	if errs := validation.IsDNS1035Label(name); len(errs) > 0 {
		return fmt.Errorf("pipeline name %q cannot name its Service: %s", name, errs[0])
	}
	if longest := HeadlessServiceName(name); len(longest) > validation.DNS1035LabelMaxLength {
		return fmt.Errorf("pipeline name %q is too long: %q exceeds %d characters", name, longest, validation.DNS1035LabelMaxLength)
	}
	return nil
}
