package pipeline

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// FieldError is one problem with a pipeline spec. Field is a path relative to
// the spec ("ports[2].name", "workload.replicas"); it is empty for problems
// that involve several fields, whose Message names them all.
type FieldError struct {
	Field   string
	Message string
}

func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// ValidationError lists every problem found in a pipeline spec.
type ValidationError struct {
	Problems []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Error()
	}
	return "invalid pipeline: " + strings.Join(parts, "; ")
}

// Validate checks a pipeline spec as the API server's CRD validation does
// (enums, ranges, names, duplicate backends) and, when port detection is on,
// that the configuration can be read and its listening plugins do not share
// a backend port. It returns nil or a *ValidationError.
func Validate(spec *v1alpha1.PipelineSpec) error {
	_, err := ResolvePorts(spec)
	return err
}

var portNameRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
var reservedNameRE = regexp.MustCompile(`^(tcp|udp)-[0-9]+$`)

// ValidatePortName checks a port name: an IANA service name of at most 15
// lowercase letters, digits and single inner hyphens, with at least one letter.
func ValidatePortName(name string) error {
	switch {
	case name == "":
		return errors.New("name is empty")
	case len(name) > 15:
		return fmt.Errorf("name %q is longer than 15 characters", name)
	case !portNameRE.MatchString(name):
		return fmt.Errorf("name %q: use lowercase letters, digits and single hyphens inside", name)
	case !strings.ContainsAny(name, "abcdefghijklmnopqrstuvwxyz"):
		return fmt.Errorf("name %q needs at least one letter", name)
	}
	return nil
}

// MaxPipelineNameLength keeps "<name>-headless", the longest object name the
// operator derives from a pipeline's name, within a 63-character DNS label.
const MaxPipelineNameLength = validation.DNS1035LabelMaxLength - len("-headless")

// ValidatePipelineName checks that a name can name the pipeline's objects:
// a DNS-1035 label (lowercase letters, digits and '-', starting with a
// letter) of at most MaxPipelineNameLength characters.
func ValidatePipelineName(name string) error {
	if name == "" {
		return errors.New("name is required")
	}
	if errs := validation.IsDNS1035Label(name); len(errs) > 0 {
		return fmt.Errorf("name %q: %s", name, errs[0])
	}
	if len(name) > MaxPipelineNameLength {
		return fmt.Errorf("name %q: at most %d characters (the operator names objects %s-headless)", name, MaxPipelineNameLength, name)
	}
	return nil
}

// checkReservedName rejects names of the form tcp-N / udp-N that describe
// another port than their own: DefaultPortName gives those to unnamed ports.
func checkReservedName(name string, p Port) error {
	if reservedNameRE.MatchString(name) && name != DefaultPortName(p) {
		return fmt.Errorf("name %q is reserved for port %s", name, strings.Replace(name, "-", "/", 1))
	}
	return nil
}

// validateFields checks everything but the configuration.
func validateFields(spec *v1alpha1.PipelineSpec) []FieldError {
	var probs []FieldError
	add := func(field, format string, args ...any) {
		probs = append(probs, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if spec.Instance == "" {
		add("instance", "required: name the CoreInstance the pipeline belongs to")
	}
	switch spec.Config.Format {
	case "", v1alpha1.ConfigFormatYAML, v1alpha1.ConfigFormatClassic:
	default:
		add("config.format", "%q: want yaml or classic", spec.Config.Format)
	}
	if n := len(spec.Config.Content); n > v1alpha1.MaxConfigBytes {
		add("config.content", "%d bytes: at most %d", n, v1alpha1.MaxConfigBytes)
	}
	if spec.ServiceType != "" && !spec.ServiceType.Valid() {
		add("serviceType", "%q: want ClusterIP, LoadBalancer or NodePort", spec.ServiceType)
	}
	switch spec.Workload.Kind {
	case "", v1alpha1.WorkloadDeployment, v1alpha1.WorkloadStatefulSet:
	case v1alpha1.WorkloadDaemonSet:
		if spec.Workload.Replicas != nil {
			add("workload.replicas", "cannot be set for a DaemonSet: it runs one pod per node")
		}
	default:
		add("workload.kind", "%q: want Deployment, DaemonSet or StatefulSet", spec.Workload.Kind)
	}
	if r := spec.Workload.Replicas; r != nil && *r < 0 {
		add("workload.replicas", "%d: must not be negative", *r)
	}
	if n := len(spec.Ports); n > v1alpha1.MaxPortsPerPipeline {
		add("ports", "%d entries: at most %d", n, v1alpha1.MaxPortsPerPipeline)
	}
	firstByPort := map[Port]int{}
	firstByName := map[string]int{}
	for i, p := range spec.Ports {
		field := fmt.Sprintf("ports[%d]", i)
		key := Key(p)
		if !key.Protocol.Valid() {
			add(field+".protocol", "%q: want TCP or UDP", p.Protocol)
			continue
		}
		if p.Port < MinPort || p.Port > MaxPort {
			add(field+".port", "%d: want a number from %d to %d", p.Port, MinPort, MaxPort)
			continue
		}
		if p.Name != "" {
			if err := ValidatePortName(p.Name); err != nil {
				add(field+".name", "%s", err.Error())
			} else if err := checkReservedName(p.Name, key); err != nil {
				add(field+".name", "%s", err.Error())
			}
			if j, dup := firstByName[p.Name]; dup {
				add("", "ports[%d] and ports[%d] share the name %q", j, i, p.Name)
			} else {
				firstByName[p.Name] = i
			}
		}
		if j, dup := firstByPort[key]; dup {
			add("", "ports[%d] %s and ports[%d] %s share a backend", j, key, i, key)
			continue
		}
		firstByPort[key] = i
	}
	return probs
}
