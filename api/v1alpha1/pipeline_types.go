package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConfigFormat is the syntax of a Fluent Bit configuration.
// +kubebuilder:validation:Enum=yaml;classic
// +kubebuilder:validation:MaxLength=7
type ConfigFormat string

const (
	// ConfigFormatYAML is Fluent Bit's YAML format (service/pipeline sections).
	ConfigFormatYAML ConfigFormat = "yaml"
	// ConfigFormatClassic is Fluent Bit's classic INI-like format ([INPUT] …).
	ConfigFormatClassic ConfigFormat = "classic"
)

// WorkloadKind is the kind of workload that runs a pipeline's pods.
// +kubebuilder:validation:Enum=Deployment;DaemonSet;StatefulSet
// +kubebuilder:validation:MaxLength=11
type WorkloadKind string

const (
	WorkloadDeployment  WorkloadKind = "Deployment"
	WorkloadDaemonSet   WorkloadKind = "DaemonSet"
	WorkloadStatefulSet WorkloadKind = "StatefulSet"
)

// PipelineConfig is a pipeline's Fluent Bit configuration.
type PipelineConfig struct {
	// format of content: yaml (default) or classic.
	// +kubebuilder:default=yaml
	// +optional
	Format ConfigFormat `json:"format,omitempty"`
	// content is the Fluent Bit configuration text.
	// +kubebuilder:validation:MaxLength=524288
	// +optional
	Content string `json:"content,omitempty"`
}

// PipelinePort is one port a pipeline listens on. Its number is the backend
// port (the port in the pod); the frontend port that clients use starts equal
// to it and is moved up only to resolve a clash in the instance.
//
// +kubebuilder:validation:XValidation:rule="!has(self.name) || !self.name.matches('^(tcp|udp)-[0-9]+$') || (self.name.startsWith(self.protocol.lowerAscii() + '-') && int(self.name.substring(4)) == self.port)",message="names of the form tcp-N or udp-N are reserved for the port they describe"
type PipelinePort struct {
	// protocol of the port: TCP (default) or UDP.
	// +kubebuilder:default=TCP
	// +optional
	Protocol Protocol `json:"protocol,omitempty"`
	// port is the backend port number, 1–65535.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
	// name of the port (an IANA service name: at most 15 lowercase letters,
	// digits and single hyphens, with at least one letter). Unnamed ports are
	// named <protocol>-<port> in the Service.
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:Pattern=`^[a-z0-9]+(-[a-z0-9]+)*$`
	// +kubebuilder:validation:XValidation:rule="self.matches('[a-z]')",message="a port name needs at least one letter"
	// +optional
	Name string `json:"name,omitempty"`
}

// RetentionPolicy says whether a pipeline's PersistentVolumeClaims are kept
// or deleted (apps/v1 PersistentVolumeClaimRetentionPolicyType).
// +kubebuilder:validation:Enum=Retain;Delete
// +kubebuilder:validation:MaxLength=6
type RetentionPolicy string

const (
	RetentionRetain RetentionPolicy = "Retain"
	RetentionDelete RetentionPolicy = "Delete"
)

// StorageSpec gives each pod of a StatefulSet pipeline a PersistentVolumeClaim
// mounted at StorageDir, where the operator points Fluent Bit's filesystem
// buffer (storage.path): chunks of inputs with storage.type filesystem
// survive a pod restart. size and storageClassName are fixed once the
// StatefulSet exists (Kubernetes keeps a StatefulSet's volume claim templates).
type StorageSpec struct {
	// size of each pod's claim, such as 5Gi; at least 1Mi, at most 64Ti.
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).compareTo(quantity('1Mi')) >= 0 && quantity(string(self)).compareTo(quantity('64Ti')) <= 0",message="storage size must be at least 1Mi and at most 64Ti"
	// +required
	Size resource.Quantity `json:"size"`
	// storageClassName of the claims; empty means the cluster's default
	// StorageClass (local-path on K3s).
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +optional
	StorageClassName string `json:"storageClassName,omitempty"`
	// whenDeleted: Retain (default) keeps the claims, and the buffered data,
	// when the pipeline is deleted; Delete deletes them with it.
	// +kubebuilder:default=Retain
	// +optional
	WhenDeleted RetentionPolicy `json:"whenDeleted,omitempty"`
	// whenScaled: Retain (default) keeps the claims of pods removed by a
	// scale down; Delete deletes them.
	// +kubebuilder:default=Retain
	// +optional
	WhenScaled RetentionPolicy `json:"whenScaled,omitempty"`
}

// AutoscalingSpec has a HorizontalPodAutoscaler scale a Deployment
// pipeline between minReplicas and maxReplicas on its pods' CPU use
// (relative to their CPU request, which resources must therefore set).
//
// +kubebuilder:validation:XValidation:rule="!has(self.minReplicas) || self.minReplicas <= self.maxReplicas",message="autoscaling: minReplicas must not be greater than maxReplicas"
type AutoscalingSpec struct {
	// minReplicas, at least 1 (default 1).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	MinReplicas *int32 `json:"minReplicas,omitempty"`
	// maxReplicas, at most 100.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +required
	MaxReplicas int32 `json:"maxReplicas"`
	// targetCPUUtilizationPercentage is the average CPU use, in percent of
	// the pods' CPU request, the autoscaler aims at (default 80).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	// +optional
	TargetCPUUtilizationPercentage *int32 `json:"targetCPUUtilizationPercentage,omitempty"`
}

// WorkloadSpec selects the workload that runs a pipeline.
//
// +kubebuilder:validation:XValidation:rule="!(self.kind == 'DaemonSet' && has(self.replicas))",message="replicas cannot be set for a DaemonSet: it runs one pod per node"
// +kubebuilder:validation:XValidation:rule="!has(self.storage) || self.kind == 'StatefulSet'",message="storage needs workload kind StatefulSet: only a StatefulSet gives each pod its own PersistentVolumeClaim"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.kind) || oldSelf.kind != 'StatefulSet' || self.kind != 'StatefulSet' || (has(self.storage) == has(oldSelf.storage) && (!has(self.storage) || (self.storage.size == oldSelf.storage.size && has(self.storage.storageClassName) == has(oldSelf.storage.storageClassName) && (!has(self.storage.storageClassName) || self.storage.storageClassName == oldSelf.storage.storageClassName))))",message="storage size and storageClassName of a StatefulSet pipeline cannot be added, changed or removed (Kubernetes keeps a StatefulSet's volume claim templates): recreate the pipeline, or change its workload kind away from StatefulSet and back"
// +kubebuilder:validation:XValidation:rule="!has(self.autoscaling) || self.kind == 'Deployment'",message="autoscaling needs workload kind Deployment"
// +kubebuilder:validation:XValidation:rule="!has(self.autoscaling) || !has(self.replicas)",message="replicas and autoscaling exclude each other: the autoscaler sets the replicas"
type WorkloadSpec struct {
	// kind of workload: Deployment (default), DaemonSet or StatefulSet.
	// +kubebuilder:default=Deployment
	// +optional
	Kind WorkloadKind `json:"kind,omitempty"`
	// replicas of a Deployment or StatefulSet; defaults to 1, at most 100.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`
	// storage gives each pod of a StatefulSet a PersistentVolumeClaim for
	// Fluent Bit's filesystem buffer.
	// +optional
	Storage *StorageSpec `json:"storage,omitempty"`
	// autoscaling of a Deployment by a HorizontalPodAutoscaler; replicas
	// must then be unset.
	// +optional
	Autoscaling *AutoscalingSpec `json:"autoscaling,omitempty"`
}

// PipelineSpec is the desired state of a pipeline.
//
// +kubebuilder:validation:XValidation:rule="!has(self.workload) || !has(self.workload.autoscaling) || (has(self.resources) && has(self.resources.requests) && 'cpu' in self.resources.requests)",message="autoscaling needs a cpu request in resources (tpctl: --cpu): the autoscaler's target is a percentage of it"
type PipelineSpec struct {
	// instance is the name of the CoreInstance (same namespace) the pipeline
	// belongs to. It cannot be changed.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="instance is immutable; create a new pipeline instead"
	// +required
	Instance string `json:"instance"`

	// config is the Fluent Bit configuration of the pipeline.
	// +kubebuilder:default={}
	// +optional
	Config PipelineConfig `json:"config,omitempty"`

	// ports the pipeline listens on, in addition to those detected from the
	// configuration. Each protocol/port pair may appear once.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(p, self.exists_one(q, q.protocol == p.protocol && q.port == p.port))",messageExpression="'duplicate backend %s/%d: each protocol/port may appear once in a pipeline (TCP and UDP may share a number)'.format([self.filter(p, !self.exists_one(q, q.protocol == p.protocol && q.port == p.port))[0].protocol, self.filter(p, !self.exists_one(q, q.protocol == p.protocol && q.port == p.port))[0].port])",message="duplicate backend port: each protocol/port may appear once in a pipeline"
	// +kubebuilder:validation:XValidation:rule="self.all(p, !has(p.name) || self.exists_one(q, has(q.name) && q.name == p.name))",message="port names must be unique within a pipeline"
	// +listType=atomic
	// +optional
	Ports []PipelinePort `json:"ports,omitempty"`

	// autoDetectPorts adds the ports that the configuration's listening
	// plugins use (explicit or their documented defaults). Defaults to true.
	// +kubebuilder:default=true
	// +optional
	AutoDetectPorts *bool `json:"autoDetectPorts,omitempty"`

	// serviceType of the pipeline's Service; applies to all of its ports.
	// Empty means the instance's pipelineDefaults.serviceType.
	// +optional
	ServiceType ServiceType `json:"serviceType,omitempty"`

	// workload that runs the pipeline.
	// +kubebuilder:default={}
	// +optional
	Workload WorkloadSpec `json:"workload,omitempty"`

	// image of the pipeline container (a reference such as
	// docker.io/fluent/fluent-bit:5.1.1); empty means the instance default.
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*(:[0-9]{1,5})?/)?[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@[a-z0-9]+([.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,128})?$`
	// +optional
	Image string `json:"image,omitempty"`

	// args of the pipeline container; empty means the instance default, and
	// when that is empty too, Fluent Bit's "-c <mounted configuration file>".
	// Set it for images that are not Fluent Bit.
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	// +optional
	Args []string `json:"args,omitempty"`

	// resources of the pipeline container: cpu at most 64 and memory at
	// most 64Gi, in requests and limits.
	// +kubebuilder:validation:XValidation:rule="!has(self.limits) || ((!('cpu' in self.limits) || (isQuantity(string(self.limits['cpu'])) && quantity(string(self.limits['cpu'])).compareTo(quantity('64')) <= 0)) && (!('memory' in self.limits) || (isQuantity(string(self.limits['memory'])) && quantity(string(self.limits['memory'])).compareTo(quantity('64Gi')) <= 0)))",message="limits: cpu may be at most 64 and memory at most 64Gi"
	// +kubebuilder:validation:XValidation:rule="!has(self.requests) || ((!('cpu' in self.requests) || (isQuantity(string(self.requests['cpu'])) && quantity(string(self.requests['cpu'])).compareTo(quantity('64')) <= 0)) && (!('memory' in self.requests) || (isQuantity(string(self.requests['memory'])) && quantity(string(self.requests['memory'])).compareTo(quantity('64Gi')) <= 0)))",message="requests: cpu may be at most 64 and memory at most 64Gi"
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// nodeSelector restricts the pipeline's pods to nodes with these labels.
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.size() <= 317 && self[k].size() <= 63)",message="a node selector key is at most 317 characters and its value at most 63"
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// tolerations let the pipeline's pods run on nodes with matching taints.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// podAnnotations are added to the pipeline's pods. Keys under
	// telemetry.tpctl.dev/ (the operator's own) and under kubernetes.io/ or
	// k8s.io/ (and their subdomains) are refused.
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.size() <= 317 && self[k].size() <= 4096)",message="an annotation key is at most 317 characters and its value at most 4096"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('telemetry.tpctl.dev/'))",message="annotations under telemetry.tpctl.dev/ are the operator's own"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.matches('^([^/]*[.])?(kubernetes[.]io|k8s[.]io)/'))",message="annotations under kubernetes.io/ and k8s.io/ are reserved for Kubernetes"
	// +optional
	PodAnnotations map[string]string `json:"podAnnotations,omitempty"`

	// env is added to the pipeline container's environment; the instance's
	// proxy variables are set as well.
	// +listType=map
	// +listMapKey=name
	// +optional
	Env []corev1.EnvVar `json:"env,omitempty"`

	// secretRefs names Secrets in the pipeline's namespace whose keys become
	// environment variables of the pipeline container, for use as ${NAME} in
	// the configuration. Note: whoever may create a Pipeline in a namespace
	// may thereby read every Secret of that namespace (the pods get them and
	// the configuration decides where data goes).
	// +listType=atomic
	// +optional
	SecretRefs []corev1.SecretEnvSource `json:"secretRefs,omitempty"`

	// files are extra files (parsers, Lua scripts, CA bundles) mounted
	// beside the configuration in /fluent-bit/etc/tpctl (FilesDir), so the
	// configuration names them as /fluent-bit/etc/tpctl/NAME (@INCLUDE,
	// parsers_file, tls.ca_file). Keys are file names: letters, digits, '-',
	// '_' and '.', without "..", other than pipeline.yaml and pipeline.conf;
	// each file holds at most 256 KiB and all together at most 512 KiB.
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.size() <= 253 && k.matches('^[-._a-zA-Z0-9]+$') && !k.contains('..') && k != '.')",message="a file name is at most 253 letters, digits, '-', '_' and '.', without '..'"
	// +kubebuilder:validation:XValidation:rule="self.all(k, k != 'pipeline.yaml' && k != 'pipeline.conf')",message="pipeline.yaml and pipeline.conf are the configuration's own file names"
	// +kubebuilder:validation:XValidation:rule="self.all(k, bytes(self[k]).size() <= 262144)",message="a file holds at most 256 KiB (262144 bytes)"
	// +kubebuilder:validation:XValidation:rule="self.map(k, bytes(self[k]).size()).sum() <= 524288",message="the files hold at most 512 KiB (524288 bytes) together"
	// +optional
	Files map[string]FileContent `json:"files,omitempty"`
}

// FileContent is the text of one file of spec.files.
// +kubebuilder:validation:MaxLength=262144
type FileContent string

// PortStatus is the assigned triplet of one pipeline port.
type PortStatus struct {
	// protocol of the port.
	Protocol Protocol `json:"protocol"`
	// frontend is the port clients use (the Service port); 0 while no free
	// frontend could be found (see the PortsAssigned condition).
	// +optional
	Frontend int32 `json:"frontend,omitempty"`
	// backend is the port the pipeline's pods listen on.
	Backend int32 `json:"backend"`
	// name of the port, if it has one.
	// +optional
	Name string `json:"name,omitempty"`
	// reassigned is true when the frontend differs from the backend because
	// an older component of the instance holds the backend number.
	// +optional
	Reassigned bool `json:"reassigned,omitempty"`
	// since is when this entry was added or last changed: its age, which
	// decides who keeps a contested frontend.
	Since metav1.Time `json:"since"`
	// source says where the port comes from: spec.ports[i] or the
	// configuration (for example "inputs[0] forward").
	// +optional
	Source string `json:"source,omitempty"`
}

// PipelineStatus is the observed state of a pipeline.
type PipelineStatus struct {
	// observedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions: Ready and PortsAssigned.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ports are the assigned triplets, in the order of the effective port list.
	// +listType=atomic
	// +optional
	Ports []PortStatus `json:"ports,omitempty"`
	// portSummary is a short text form of ports for kubectl, such as
	// "tcp/2201->2200, udp/5170" (frontend->backend when they differ).
	// +optional
	PortSummary string `json:"portSummary,omitempty"`
	// readyReplicas is the number of ready pods of the workload.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// serviceType is the Service type in effect after applying defaults.
	// +optional
	ServiceType ServiceType `json:"serviceType,omitempty"`
}

// Pipeline is one Fluent Bit workload of a core instance, with the Service
// that exposes its ports.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pl,categories=tpctl
// +kubebuilder:printcolumn:name="Instance",type=string,JSONPath=`.spec.instance`
// +kubebuilder:printcolumn:name="Kind",type=string,JSONPath=`.spec.workload.kind`
// +kubebuilder:printcolumn:name="Service",type=string,JSONPath=`.status.serviceType`
// +kubebuilder:printcolumn:name="Ports",type=string,JSONPath=`.status.portSummary`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.status.readyReplicas`,priority=1
// +kubebuilder:printcolumn:name="Ports-Assigned",type=string,JSONPath=`.status.conditions[?(@.type=="PortsAssigned")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 54",message="a pipeline name has at most 54 characters: its objects are named <name>-headless and <name>-config"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="a pipeline name must be a DNS label that starts with a letter (lowercase letters, digits and '-'): it names the pipeline's Service"
type Pipeline struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec PipelineSpec `json:"spec"`
	// +optional
	Status PipelineStatus `json:"status,omitempty"`
}

// PipelineList is a list of Pipeline.
//
// +kubebuilder:object:root=true
type PipelineList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Pipeline `json:"items"`
}

// AutoDetect reports whether ports are detected from the configuration
// (default true).
func (s *PipelineSpec) AutoDetect() bool {
	return s.AutoDetectPorts == nil || *s.AutoDetectPorts
}

// ConfigFormat returns the configuration format, applying the default.
func (s *PipelineSpec) ConfigFormat() ConfigFormat {
	if s.Config.Format == "" {
		return DefaultConfigFormat
	}
	return s.Config.Format
}

// WorkloadKind returns the workload kind, applying the default.
func (s *PipelineSpec) WorkloadKind() WorkloadKind {
	if s.Workload.Kind == "" {
		return DefaultWorkloadKind
	}
	return s.Workload.Kind
}

// ReplicaCount returns the desired replicas of a Deployment or StatefulSet
// (default 1).
func (s *PipelineSpec) ReplicaCount() int32 {
	if s.Workload.Replicas == nil {
		return 1
	}
	return *s.Workload.Replicas
}

// EffectiveServiceType returns the pipeline's Service type, falling back to
// the instance default and then to LoadBalancer.
func (s *PipelineSpec) EffectiveServiceType(instance *CoreInstanceSpec) ServiceType {
	if s.ServiceType != "" {
		return s.ServiceType
	}
	if instance != nil {
		return instance.DefaultServiceType()
	}
	return DefaultServiceType
}

// EffectiveArgs returns the pipeline's container args, falling back to the
// instance default; nil means the operator's Fluent Bit default.
func (s *PipelineSpec) EffectiveArgs(instance *CoreInstanceSpec) []string {
	if len(s.Args) > 0 || instance == nil {
		return s.Args
	}
	return instance.PipelineDefaults.Args
}

// EffectiveImage returns the pipeline's image, falling back to the instance default.
func (s *PipelineSpec) EffectiveImage(instance *CoreInstanceSpec) string {
	if s.Image != "" || instance == nil {
		return s.Image
	}
	return instance.PipelineDefaults.Image
}

// AnnotationHostListeners on a pipeline lists the ports programs on the node
// listened on when `tpctl pipeline create` ran there ("tcp/22=sshd,…", see
// pipeline.FormatHostListeners). The operator gives none of them to the
// instance's newer port entries as a frontend: with K3s's servicelb the
// frontend would take that program's traffic.
const AnnotationHostListeners = Group + "/host-listeners"

// StorageDir is where a pipeline's PersistentVolumeClaim (spec.workload.storage)
// is mounted; the operator passes it to Fluent Bit as its storage.path
// ("-b StorageDir").
const StorageDir = "/fluent-bit/storage"

// DefaultTargetCPUUtilization is the CPU use, in percent of the request,
// that autoscaling aims at when the pipeline names none.
const DefaultTargetCPUUtilization int32 = 80
