package manage

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// PipelineFlags are the flags of `tpctl pipeline create` and `update`.
type PipelineFlags struct {
	Name         string
	Instance     string
	ConfigFile   string
	ConfigFormat string
	Ports        []string
	ServiceType  string
	Workload     string
	Replicas     int32
	CPU          string
	Memory       string
	NodeSelector []string
	Tolerations  []string
	Annotations  []string
	Image        string
	Args         []string
	NoAutoPorts  bool
	Files        []string
	RemoveFiles  []string

	StorageSize        string
	StorageClass       string
	StorageWhenDeleted string
	StorageWhenScaled  string
	MinReplicas        int32
	MaxReplicas        int32
	TargetCPU          int32
	NoAutoscaling      bool
}

// Register adds the flags to fs; create adds --name and --instance, which
// an update cannot change.
func (f *PipelineFlags) Register(fs *pflag.FlagSet, create bool) {
	if create {
		fs.StringVar(&f.Name, "name", "", "name of the pipeline (lowercase letters, digits and '-', at most 54 characters)")
		fs.StringVar(&f.Instance, "instance", "", "core instance the pipeline belongs to (default: the only one in the namespace)")
	}
	fs.StringVar(&f.ConfigFile, "config-file", "", "Fluent Bit configuration file (YAML or classic; - reads stdin)")
	fs.StringVar(&f.ConfigFormat, "config-format", "", "format of --config-file: yaml or classic (default: from the file name or content)")
	fs.StringArrayVar(&f.Ports, "port", nil, "port the pipeline listens on, as tcp/5170, 5140/udp or name=udp/514 (repeatable; on update, replaces the list)")
	fs.StringVar(&f.ServiceType, "service-type", "", "Service type for all of the pipeline's ports: ClusterIP, LoadBalancer or NodePort (default: the instance's, LoadBalancer)")
	fs.StringVar(&f.Workload, "workload", "", "workload kind: deployment, daemonset or statefulset (default deployment)")
	fs.Int32Var(&f.Replicas, "replicas", 1, "replicas of a Deployment or StatefulSet")
	fs.StringVar(&f.CPU, "cpu", "", "cpu of the pipeline container as REQUEST[:LIMIT], e.g. 250m, 250m:1 or :2 (limit only); at most 64; '' removes both; on update, replaces the cpu request and limit")
	fs.StringVar(&f.Memory, "memory", "", "memory of the pipeline container as REQUEST[:LIMIT], e.g. 128Mi, 128Mi:512Mi or :1Gi (limit only); at most 64Gi; '' removes both; on update, replaces the memory request and limit")
	fs.StringArrayVar(&f.NodeSelector, "node-selector", nil, "run the pods only on nodes with this label, as KEY=VALUE (repeatable; on update, replaces them; '' removes all)")
	fs.StringArrayVar(&f.Tolerations, "toleration", nil, "let the pods run on nodes with this taint, as KEY[=VALUE]:EFFECT like kubectl taint (without a value any value of KEY); EFFECT NoSchedule, PreferNoSchedule or NoExecute (repeatable; on update, replaces them; '' removes all)")
	fs.StringArrayVar(&f.Annotations, "annotation", nil, "annotation of the pipeline's pods, as KEY=VALUE; not under telemetry.tpctl.dev/, kubernetes.io/ or k8s.io/ (repeatable; on update, replaces them; '' removes all)")
	fs.StringVar(&f.Image, "image", "", "container image of the pipeline (default: the instance's or the operator's Fluent Bit)")
	fs.StringArrayVar(&f.Args, "arg", nil, "container argument, for images that are not Fluent Bit (repeatable; on update, replaces the list)")
	fs.BoolVar(&f.NoAutoPorts, "no-auto-ports", false, "do not add the ports the configuration's plugins listen on")
	fs.StringArrayVar(&f.Files, "file", nil, "file beside the configuration, as NAME=PATH or PATH (named as its base name): the configuration reads it as "+
		v1alpha1.FilesDir+"/NAME (repeatable; at most 256 KiB each, 512 KiB together; on update, adds or replaces)")
	if !create {
		fs.StringArrayVar(&f.RemoveFiles, "remove-file", nil, "remove the pipeline's file NAME (repeatable)")
	}
	fs.StringVar(&f.StorageSize, "storage-size", "", "StatefulSet only: a PersistentVolumeClaim of this size per pod (e.g. 5Gi; 1Mi to 64Ti) for Fluent Bit's filesystem buffer, mounted at "+
		v1alpha1.StorageDir+" and passed as its storage.path; fixed once the StatefulSet exists ('' removes it, only together with --workload away from statefulset)")
	fs.StringVar(&f.StorageClass, "storage-class", "", "StorageClass of the claims (default: the cluster's default, local-path on K3s); fixed once the StatefulSet exists")
	fs.StringVar(&f.StorageWhenDeleted, "storage-when-deleted", "", "what happens to the claims, and the buffered data, when the pipeline is deleted: retain (default) or delete")
	fs.StringVar(&f.StorageWhenScaled, "storage-when-scaled", "", "what happens to the claims of pods removed by a scale down: retain (default) or delete")
	fs.Int32Var(&f.MinReplicas, "min-replicas", 1, "Deployment only: autoscaling (a HorizontalPodAutoscaler) keeps at least this many pods")
	fs.Int32Var(&f.MaxReplicas, "max-replicas", 0, "Deployment only: autoscaling keeps at most this many pods (at most 100); needs a cpu request (--cpu); replaces --replicas")
	fs.Int32Var(&f.TargetCPU, "target-cpu", v1alpha1.DefaultTargetCPUUtilization, "autoscaling's target: average cpu use in percent of the cpu request")
	if !create {
		fs.BoolVar(&f.NoAutoscaling, "no-autoscaling", false, "remove autoscaling: the Deployment keeps --replicas (default 1) pods and the HorizontalPodAutoscaler is deleted")
	}
}

// storageChange builds the storage change of the given flags, or nil.
func (f *PipelineFlags) storageChange(fs *pflag.FlagSet) (*StorageChange, error) {
	if !fs.Changed("storage-size") && !fs.Changed("storage-class") &&
		!fs.Changed("storage-when-deleted") && !fs.Changed("storage-when-scaled") {
		return nil, nil
	}
	var sc StorageChange
	var errs []error
	if fs.Changed("storage-size") {
		q, remove, err := ParseStorageSize(f.StorageSize)
		switch {
		case err != nil:
			errs = append(errs, err)
		case remove:
			sc.Remove = true
		default:
			sc.Size = &q
		}
	}
	if fs.Changed("storage-class") {
		class := strings.TrimSpace(f.StorageClass)
		sc.Class = &class
	}
	for _, r := range []struct {
		flag, value string
		dst         **v1alpha1.RetentionPolicy
	}{{"storage-when-deleted", f.StorageWhenDeleted, &sc.WhenDeleted}, {"storage-when-scaled", f.StorageWhenScaled, &sc.WhenScaled}} {
		if !fs.Changed(r.flag) {
			continue
		}
		pol, err := ParseRetention(r.flag, r.value)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		*r.dst = &pol
	}
	if sc.Remove && (sc.Class != nil || sc.WhenDeleted != nil || sc.WhenScaled != nil) {
		errs = append(errs, errors.New("--storage-size '' removes the storage: give no other --storage-* flag with it"))
	}
	return &sc, errors.Join(errs...)
}

// autoscalingChange builds the autoscaling change of the given flags, or nil.
func (f *PipelineFlags) autoscalingChange(fs *pflag.FlagSet) (*AutoscalingChange, error) {
	set := fs.Changed("min-replicas") || fs.Changed("max-replicas") || fs.Changed("target-cpu")
	if fs.Changed("no-autoscaling") && f.NoAutoscaling {
		if set {
			return nil, errNoAutoscalingFlags
		}
		return &AutoscalingChange{Remove: true}, nil
	}
	if !set {
		return nil, nil
	}
	var ac AutoscalingChange
	var errs []error
	for _, n := range []struct {
		flag  string
		value int32
		dst   **int32
	}{{"min-replicas", f.MinReplicas, &ac.Min}, {"max-replicas", f.MaxReplicas, &ac.Max}, {"target-cpu", f.TargetCPU, &ac.TargetCPU}} {
		if !fs.Changed(n.flag) {
			continue
		}
		if err := checkAutoscaling(n.flag, n.value); err != nil {
			errs = append(errs, err)
			continue
		}
		v := n.value
		*n.dst = &v
	}
	if ac.Min != nil && ac.Max != nil && *ac.Min > *ac.Max {
		errs = append(errs, fmt.Errorf("--min-replicas %d is greater than --max-replicas %d", *ac.Min, *ac.Max))
	}
	return &ac, errors.Join(errs...)
}

// Change builds the change the flags ask for: only flags that were given
// become fields (fs.Changed), so an update never touches what it was not
// told to. stdin serves --config-file -.
func (f *PipelineFlags) Change(fs *pflag.FlagSet, stdin io.Reader) (PipelineChange, error) {
	var c PipelineChange
	var errs []error
	if fs.Changed("config-file") {
		cfg, err := ReadConfigFile(f.ConfigFile, f.ConfigFormat, stdin)
		if err != nil {
			errs = append(errs, err)
		} else {
			c.Config = &cfg
		}
	} else if fs.Changed("config-format") {
		errs = append(errs, errors.New("--config-format needs --config-file"))
	}
	if fs.Changed("port") {
		ports, err := ParsePorts(f.Ports)
		if err != nil {
			errs = append(errs, err)
		} else {
			c.Ports, c.PortTexts = &ports, f.Ports
		}
	}
	if fs.Changed("service-type") {
		st, err := ParseServiceType(f.ServiceType)
		if err != nil {
			errs = append(errs, err)
		} else {
			c.ServiceType = &st
		}
	}
	if fs.Changed("workload") {
		k, err := ParseWorkloadKind(f.Workload)
		if err != nil {
			errs = append(errs, err)
		} else {
			c.WorkloadKind = &k
		}
	}
	if fs.Changed("replicas") {
		if f.Replicas < 0 {
			errs = append(errs, fmt.Errorf("--replicas %d: must not be negative", f.Replicas))
		}
		r := f.Replicas
		c.Replicas = &r
	}
	for _, r := range []struct {
		flag, value string
		max         resource.Quantity
		dst         **ResourceChange
	}{{"cpu", f.CPU, MaxCPU, &c.CPU}, {"memory", f.Memory, MaxMemory, &c.Memory}} {
		if !fs.Changed(r.flag) {
			continue
		}
		rc, err := ParseResource(r.flag, r.value, r.max)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		*r.dst = &rc
	}
	if fs.Changed("node-selector") {
		if m, err := ParseNodeSelector(f.NodeSelector); err != nil {
			errs = append(errs, err)
		} else {
			c.NodeSelector = &m
		}
	}
	if fs.Changed("toleration") {
		if ts, err := ParseTolerations(f.Tolerations); err != nil {
			errs = append(errs, err)
		} else {
			c.Tolerations = &ts
		}
	}
	if fs.Changed("annotation") {
		if m, err := ParseAnnotations(f.Annotations); err != nil {
			errs = append(errs, err)
		} else {
			c.PodAnnotations = &m
		}
	}
	if fs.Changed("image") {
		img := strings.TrimSpace(f.Image)
		c.Image = &img
	}
	if fs.Changed("arg") {
		args := append([]string(nil), f.Args...)
		c.Args = &args
	}
	if fs.Changed("no-auto-ports") {
		auto := !f.NoAutoPorts
		c.AutoDetectPorts = &auto
	}
	if fs.Changed("file") || fs.Changed("remove-file") {
		fc := FileChange{Remove: append([]string(nil), f.RemoveFiles...)}
		set, err := ReadFiles(f.Files)
		if err != nil {
			errs = append(errs, err)
		} else {
			if len(set) > 0 {
				fc.Set = set
			}
			if probs := fc.Validate(); len(probs) > 0 {
				errs = append(errs, errors.New(strings.Join(probs, "; ")))
			} else {
				c.Files = &fc
			}
		}
	}
	if sc, err := f.storageChange(fs); err != nil {
		errs = append(errs, err)
	} else {
		c.Storage = sc
	}
	if ac, err := f.autoscalingChange(fs); err != nil {
		errs = append(errs, err)
	} else {
		c.Autoscaling = ac
	}
	if err := errors.Join(errs...); err != nil {
		return PipelineChange{}, err
	}
	return c, nil
}

// InstanceFlags are the flags of `tpctl instance update`.
type InstanceFlags struct {
	HTTPProxy       string
	HTTPSProxy      string
	NoProxy         string
	HealthCheckPort int32
	NoHealthCheck   bool
}

// Register adds the flags to fs.
func (f *InstanceFlags) Register(fs *pflag.FlagSet) {
	fs.StringVar(&f.HTTPProxy, "http-proxy", "", "HTTP proxy for every pipeline of the instance (empty clears it)")
	fs.StringVar(&f.HTTPSProxy, "https-proxy", "", "HTTPS proxy for every pipeline of the instance (empty clears it)")
	fs.StringVar(&f.NoProxy, "no-proxy", "", "comma-separated hosts, domains and CIDRs reached without the proxy (empty clears it)")
	fs.Int32Var(&f.HealthCheckPort, "health-check-port", v1alpha1.DefaultHealthCheckPort, "TCP port of the health-check pipeline (enables it)")
	fs.BoolVar(&f.NoHealthCheck, "no-health-check", false, "disable the health-check pipeline")
}

// Change builds the change the given flags ask for.
func (f *InstanceFlags) Change(fs *pflag.FlagSet) (InstanceChange, error) {
	var c InstanceChange
	str := func(name, v string) *string {
		if !fs.Changed(name) {
			return nil
		}
		s := strings.TrimSpace(v)
		return &s
	}
	c.HTTPProxy = str("http-proxy", f.HTTPProxy)
	c.HTTPSProxy = str("https-proxy", f.HTTPSProxy)
	c.NoProxy = str("no-proxy", f.NoProxy)
	if fs.Changed("health-check-port") {
		p := f.HealthCheckPort
		c.HealthCheckPort = &p
	}
	if fs.Changed("no-health-check") {
		on := !f.NoHealthCheck
		c.HealthCheck = &on
	}
	if fs.Changed("health-check-port") && fs.Changed("no-health-check") && f.NoHealthCheck {
		return InstanceChange{}, errors.New("--health-check-port and --no-health-check exclude each other")
	}
	if err := c.Validate(); err != nil {
		return InstanceChange{}, err
	}
	return c, nil
}
