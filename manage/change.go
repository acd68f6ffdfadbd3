package manage

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/pipeline"
)

// PipelineChange is a set of field changes to a pipeline spec. Nil fields
// are left as they are, so an update that sets only the image keeps the
// Service type, ports and everything else.
type PipelineChange struct {
	Config          *v1alpha1.PipelineConfig
	Ports           *[]v1alpha1.PipelinePort
	AutoDetectPorts *bool
	ServiceType     *v1alpha1.ServiceType
	WorkloadKind    *v1alpha1.WorkloadKind
	Replicas        *int32
	// CPU and Memory replace the container's request and limit of that
	// resource; nil keeps them.
	CPU    *ResourceChange
	Memory *ResourceChange
	// NodeSelector, Tolerations and PodAnnotations replace theirs; nil
	// keeps them, empty removes them.
	NodeSelector   *map[string]string
	Tolerations    *[]corev1.Toleration
	PodAnnotations *map[string]string
	Image          *string
	Args           *[]string
	// Files sets and removes files (spec.files); nil keeps them.
	Files *FileChange
	// Storage and Autoscaling change spec.workload's; nil keeps them.
	Storage     *StorageChange
	Autoscaling *AutoscalingChange
	// PortTexts are the port entries as the user wrote them, one per
	// element of *Ports; they name the entries in error messages.
	PortTexts []string
}

// IsEmpty reports whether the change sets nothing.
func (c PipelineChange) IsEmpty() bool {
	return c.Config == nil && c.Ports == nil && c.AutoDetectPorts == nil && c.ServiceType == nil &&
		c.WorkloadKind == nil && c.Replicas == nil && c.CPU == nil && c.Memory == nil &&
		c.NodeSelector == nil && c.Tolerations == nil && c.PodAnnotations == nil && c.Image == nil && c.Args == nil && c.Files == nil &&
		c.Storage == nil && c.Autoscaling == nil
}

// ApplyTo writes the change into spec. Turning a pipeline into a DaemonSet
// drops its replica count (a DaemonSet runs one pod per node) unless the
// change sets one, which validation then rejects. Likewise a kind change
// drops storage from what is no longer a StatefulSet and autoscaling from
// what is no longer a Deployment, and autoscaling drops the replica count
// (the autoscaler sets it).
func (c PipelineChange) ApplyTo(spec *v1alpha1.PipelineSpec) {
	if c.Config != nil {
		spec.Config = *c.Config
	}
	if c.Ports != nil {
		spec.Ports = append([]v1alpha1.PipelinePort(nil), (*c.Ports)...)
	}
	if c.AutoDetectPorts != nil {
		v := *c.AutoDetectPorts
		spec.AutoDetectPorts = &v
	}
	if c.ServiceType != nil {
		spec.ServiceType = *c.ServiceType
	}
	if c.WorkloadKind != nil {
		spec.Workload.Kind = *c.WorkloadKind
		if *c.WorkloadKind == v1alpha1.WorkloadDaemonSet && c.Replicas == nil {
			spec.Workload.Replicas = nil
		}
		if *c.WorkloadKind != v1alpha1.WorkloadStatefulSet && c.Storage == nil {
			spec.Workload.Storage = nil
		}
		if *c.WorkloadKind != v1alpha1.WorkloadDeployment && c.Autoscaling == nil {
			spec.Workload.Autoscaling = nil
		}
	}
	if c.Storage != nil {
		c.Storage.applyTo(&spec.Workload)
	}
	if c.Autoscaling != nil {
		c.Autoscaling.applyTo(&spec.Workload)
		if !c.Autoscaling.Remove && c.Replicas == nil {
			spec.Workload.Replicas = nil
		}
	}
	if c.Replicas != nil {
		v := *c.Replicas
		spec.Workload.Replicas = &v
	}
	if c.CPU != nil {
		c.CPU.applyTo(&spec.Resources, corev1.ResourceCPU)
	}
	if c.Memory != nil {
		c.Memory.applyTo(&spec.Resources, corev1.ResourceMemory)
	}
	if c.NodeSelector != nil {
		spec.NodeSelector = nilIfEmpty(maps.Clone(*c.NodeSelector))
	}
	if c.Tolerations != nil {
		spec.Tolerations = nil
		if len(*c.Tolerations) > 0 {
			spec.Tolerations = append([]corev1.Toleration(nil), (*c.Tolerations)...)
		}
	}
	if c.PodAnnotations != nil {
		spec.PodAnnotations = nilIfEmpty(maps.Clone(*c.PodAnnotations))
	}
	if c.Image != nil {
		spec.Image = *c.Image
	}
	if c.Args != nil {
		spec.Args = append([]string(nil), (*c.Args)...)
	}
	if c.Files != nil {
		spec.Files = c.Files.applyFiles(spec.Files)
	}
}

func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

// NewPipeline builds the object a create sends: the change applied to an
// empty spec of the named instance.
func NewPipeline(namespace, name, instance string, c PipelineChange) *v1alpha1.Pipeline {
	p := &v1alpha1.Pipeline{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.KindPipeline},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec:       v1alpha1.PipelineSpec{Instance: instance},
	}
	c.ApplyTo(&p.Spec)
	return p
}

// ValidatePipeline checks a pipeline before it is sent, as the CRD and the
// operator would: its name, backend ports unique within the pipeline
// (a *DuplicateBackendError naming both entries; texts are the entries as
// written, or nil), and the rest of the spec including the ports detected
// from its configuration (an *InvalidError listing every problem).
func ValidatePipeline(p *v1alpha1.Pipeline, texts []string) error {
	var probs []string
	if err := pipeline.ValidatePipelineName(p.Name); err != nil {
		probs = append(probs, err.Error())
	}
	if err := CheckDuplicateBackends(p.Spec.Ports, texts); err != nil {
		return err
	}
	probs = append(probs, v1alpha1.ValidateFiles(p.Spec.Files)...)
	probs = append(probs, validateWorkload(&p.Spec)...)
	if err := pipeline.Validate(&p.Spec); err != nil {
		var ve *pipeline.ValidationError
		if !errors.As(err, &ve) {
			return fmt.Errorf("validate pipeline %q: %w", p.Name, err)
		}
		for _, fe := range ve.Problems {
			probs = append(probs, fe.Error())
		}
	}
	if len(probs) > 0 {
		return &InvalidError{Kind: v1alpha1.KindPipeline, Name: p.Name, Problems: probs}
	}
	return nil
}

// EffectivePorts returns the ports the operator will expose for spec: the
// explicit ones, then those detected from the configuration.
func EffectivePorts(spec *v1alpha1.PipelineSpec) (pipeline.Resolved, error) {
	res, err := pipeline.ResolvePorts(spec)
	if err != nil {
		return pipeline.Resolved{}, fmt.Errorf("resolve ports: %w", err)
	}
	return res, nil
}

// ReadConfigFile reads a Fluent Bit configuration. format may be empty, in
// which case DetectConfigFormat decides. "-" reads stdin.
func ReadConfigFile(path, format string, stdin io.Reader) (v1alpha1.PipelineConfig, error) {
	var data []byte
	var err error
	if path == "-" {
		if stdin == nil {
			return v1alpha1.PipelineConfig{}, errors.New("read configuration from stdin: no stdin")
		}
		data, err = io.ReadAll(io.LimitReader(stdin, v1alpha1.MaxConfigBytes+1))
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return v1alpha1.PipelineConfig{}, fmt.Errorf("read configuration %s: %w", path, err)
	}
	return ConfigFromBytes(path, format, data)
}

// ConfigFromBytes builds a configuration from a file's content (see
// ReadConfigFile).
func ConfigFromBytes(path, format string, data []byte) (v1alpha1.PipelineConfig, error) {
	if len(data) > v1alpha1.MaxConfigBytes {
		return v1alpha1.PipelineConfig{}, fmt.Errorf("configuration %s: larger than %d bytes", path, v1alpha1.MaxConfigBytes)
	}
	cfg := v1alpha1.PipelineConfig{Content: string(data)}
	if format != "" {
		f, err := ParseConfigFormat(format)
		if err != nil {
			return v1alpha1.PipelineConfig{}, err
		}
		cfg.Format = f
	} else {
		cfg.Format = DetectConfigFormat(path, cfg.Content)
	}
	return cfg, nil
}
