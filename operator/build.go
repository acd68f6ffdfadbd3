package operator

import (
	"fmt"
	"maps"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	autoscalingv2ac "k8s.io/client-go/applyconfigurations/autoscaling/v2"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/pipeline"
)

// DefaultPipelineImage runs a pipeline that names no image and whose
// instance names none either.
const DefaultPipelineImage = v1alpha1.DefaultPipelineImage

// AnnotationSecretsRevision on the pod template is the pipeline's
// v1alpha1.LabelSecretsRevision: a change of the pipeline's own Secret rolls
// the pods. The operator never reads the Secret (it has no access to
// Secrets); tpctl, which writes it, changes the revision.
const AnnotationSecretsRevision = v1alpha1.Group + "/secrets-revision"

// AnnotationMetricsPort on the pod template is the port of Fluent Bit's
// built-in HTTP server in the pod (see Objects.MetricsPort); tpctl pipeline
// top reads /api/v1/metrics there through the API server's pod proxy.
const AnnotationMetricsPort = pipeline.MetricsPortAnnotation

// PortRange is an inclusive range of port numbers.
type PortRange struct{ Min, Max int32 }

// DefaultNodePortRange is Kubernetes' default --service-node-port-range.
var DefaultNodePortRange = PortRange{Min: 30000, Max: 32767}

// Contains reports whether p lies in the range.
func (r PortRange) Contains(p int32) bool { return p >= r.Min && p <= r.Max }

// Objects renders the objects of one pipeline. Every method is a pure
// function of the fields; none talks to the cluster.
type Objects struct {
	Pipeline *v1alpha1.Pipeline
	// Instance is the pipeline's CoreInstance (proxies, defaults).
	Instance *v1alpha1.CoreInstance
	// DefaultImage applies when neither the pipeline nor the instance names one.
	DefaultImage string
	// NodePortRange is the cluster's node port range (see the package doc).
	NodePortRange PortRange
	// NodePorts are the node ports the existing Service has, by port name;
	// they are kept so that a node port never moves.
	NodePorts map[string]int32
	// NoNodePortRequest leaves every node port without one to Kubernetes,
	// after the API server refused a requested one.
	NoNodePortRequest bool
}

func (o *Objects) spec() *v1alpha1.PipelineSpec { return &o.Pipeline.Spec }

func (o *Objects) instanceSpec() *v1alpha1.CoreInstanceSpec {
	if o.Instance == nil {
		return nil
	}
	return &o.Instance.Spec
}

// ownerRef makes the pipeline the controller of an object.
func (o *Objects) ownerRef() *metav1ac.OwnerReferenceApplyConfiguration {
	return metav1ac.OwnerReference().
		WithAPIVersion(v1alpha1.GroupVersion.String()).
		WithKind(v1alpha1.KindPipeline).
		WithName(o.Pipeline.Name).
		WithUID(o.Pipeline.UID).
		WithController(true).
		WithBlockOwnerDeletion(true)
}

// Image returns the container image after defaults.
func (o *Objects) Image() string {
	if img := o.spec().EffectiveImage(o.instanceSpec()); img != "" {
		return img
	}
	if o.DefaultImage != "" {
		return o.DefaultImage
	}
	return DefaultPipelineImage
}

// Args returns the container args after defaults.
func (o *Objects) Args() []string {
	if args := o.spec().EffectiveArgs(o.instanceSpec()); len(args) > 0 {
		return args
	}
	return []string{"-c", ConfigDir + "/" + ConfigFile(o.spec().ConfigFormat())}
}

// MetricsPort returns the port of Fluent Bit's built-in HTTP server in the
// pipeline's pods and whether the operator passes it by flag. The
// health-check pipeline's configuration already runs the server on its health
// port, so that is its metrics port and no flag is added. Every other
// pipeline gets pipeline.MetricsPort, a port that is none of its backends,
// passed as "-H -P <port>" after its args (a configuration that sets its own
// service http_port keeps it: Fluent Bit lets the file win over -P).
func (o *Objects) MetricsPort() (port int32, byFlag bool) {
	p := o.Pipeline
	if p.Labels[LabelRole] == RoleHealthCheck {
		for _, st := range p.Status.Ports {
			if st.Name == healthCheckPortName && st.Protocol == v1alpha1.ProtocolTCP {
				return st.Backend, false
			}
		}
		return 0, false
	}
	port, ok := pipeline.MetricsPort(p.Status.Ports)
	return port, ok
}

// containerArgs are Args, the metrics flags and, with storage, the flag
// that points Fluent Bit's filesystem buffer at the claim ("-b", Fluent
// Bit's --storage_path; a configuration that sets its own service
// storage.path keeps it, as with -P).
func (o *Objects) containerArgs() []string {
	args := o.Args()
	if port, byFlag := o.MetricsPort(); byFlag {
		args = append(slices.Clip(args), "-H", "-P", fmt.Sprint(port))
	}
	if o.storage() != nil {
		args = append(slices.Clip(args), "-b", v1alpha1.StorageDir)
	}
	return args
}

// storageVolume names the volume claim template of a StatefulSet pipeline
// with storage, and so its claims: storage-<pipeline>-<ordinal>.
const storageVolume = "storage"

// storage returns the pipeline's storage when it applies: only a
// StatefulSet has volume claim templates (the CRD refuses storage on other
// kinds).
func (o *Objects) storage() *v1alpha1.StorageSpec {
	s := o.spec()
	if s.WorkloadKind() != v1alpha1.WorkloadStatefulSet {
		return nil
	}
	return s.Workload.Storage
}

// autoscaling returns the pipeline's autoscaling when it applies: only to
// a Deployment (the CRD refuses it on other kinds).
func (o *Objects) autoscaling() *v1alpha1.AutoscalingSpec {
	s := o.spec()
	if s.WorkloadKind() != v1alpha1.WorkloadDeployment {
		return nil
	}
	return s.Workload.Autoscaling
}

// ServiceType returns the Service type after defaults.
func (o *Objects) ServiceType() v1alpha1.ServiceType {
	return o.spec().EffectiveServiceType(o.instanceSpec())
}

// ConfigMap holds the pipeline's configuration and its files (spec.files),
// which the pod's config volume puts beside it in ConfigDir. The
// configuration's own key wins over a file of that name (the CRD refuses one).
func (o *Objects) ConfigMap() *corev1ac.ConfigMapApplyConfiguration {
	p := o.Pipeline
	data := make(map[string]string, len(p.Spec.Files)+1)
	for name, content := range p.Spec.Files {
		data[name] = string(content)
	}
	data[ConfigFile(p.Spec.ConfigFormat())] = p.Spec.Config.Content
	return corev1ac.ConfigMap(ConfigMapName(p.Name), p.Namespace).
		WithLabels(objectLabels(p)).
		WithOwnerReferences(o.ownerRef()).
		WithData(data)
}

func portName(st v1alpha1.PortStatus) string {
	if st.Name != "" {
		return st.Name
	}
	return pipeline.DefaultPortName(pipeline.Port{Protocol: st.Protocol, Number: st.Backend})
}

// env returns the proxies of the instance, then the pipeline's own env.
func (o *Objects) env() []*corev1ac.EnvVarApplyConfiguration {
	var vars []corev1.EnvVar
	if is := o.instanceSpec(); is != nil {
		vars = append(vars, is.ProxyEnv()...)
	}
	// A pipeline's own variable of the same name wins: drop the proxy one.
	own := map[string]bool{}
	for _, e := range o.spec().Env {
		own[e.Name] = true
	}
	vars = slices.DeleteFunc(vars, func(e corev1.EnvVar) bool { return own[e.Name] })
	vars = append(vars, o.spec().Env...)
	out := make([]*corev1ac.EnvVarApplyConfiguration, 0, len(vars))
	for _, e := range vars {
		out = append(out, envVar(e))
	}
	return out
}

func envVar(e corev1.EnvVar) *corev1ac.EnvVarApplyConfiguration {
	ac := corev1ac.EnvVar().WithName(e.Name)
	if e.ValueFrom == nil {
		return ac.WithValue(e.Value)
	}
	src := corev1ac.EnvVarSource()
	vf := e.ValueFrom
	switch {
	case vf.SecretKeyRef != nil:
		src.WithSecretKeyRef(corev1ac.SecretKeySelector().WithName(vf.SecretKeyRef.Name).
			WithKey(vf.SecretKeyRef.Key).WithOptional(deref(vf.SecretKeyRef.Optional)))
	case vf.ConfigMapKeyRef != nil:
		src.WithConfigMapKeyRef(corev1ac.ConfigMapKeySelector().WithName(vf.ConfigMapKeyRef.Name).
			WithKey(vf.ConfigMapKeyRef.Key).WithOptional(deref(vf.ConfigMapKeyRef.Optional)))
	case vf.FieldRef != nil:
		fr := corev1ac.ObjectFieldSelector().WithFieldPath(vf.FieldRef.FieldPath)
		if vf.FieldRef.APIVersion != "" {
			fr.WithAPIVersion(vf.FieldRef.APIVersion)
		}
		src.WithFieldRef(fr)
	case vf.ResourceFieldRef != nil:
		rf := corev1ac.ResourceFieldSelector().WithResource(vf.ResourceFieldRef.Resource).
			WithDivisor(vf.ResourceFieldRef.Divisor)
		if vf.ResourceFieldRef.ContainerName != "" {
			rf.WithContainerName(vf.ResourceFieldRef.ContainerName)
		}
		src.WithResourceFieldRef(rf)
	}
	return ac.WithValueFrom(src)
}

func deref(b *bool) bool { return b != nil && *b }

func (o *Objects) resources() *corev1ac.ResourceRequirementsApplyConfiguration {
	r := o.spec().Resources
	ac := corev1ac.ResourceRequirements()
	if len(r.Limits) > 0 {
		ac.WithLimits(r.Limits)
	}
	if len(r.Requests) > 0 {
		ac.WithRequests(r.Requests)
	}
	return ac
}

// PodTemplate is the pod template shared by every workload kind.
func (o *Objects) PodTemplate() *corev1ac.PodTemplateSpecApplyConfiguration {
	p := o.Pipeline
	ports := p.Status.Ports
	c := corev1ac.Container().
		WithName(containerName).
		WithImage(o.Image()).
		WithImagePullPolicy(corev1.PullIfNotPresent).
		// Fluent Bit writes no termination message: the kubelet keeps its
		// last log lines instead, which the Ready condition of a
		// crash-looping pipeline quotes (see PodHealthCause).
		WithTerminationMessagePolicy(corev1.TerminationMessageFallbackToLogsOnError).
		WithArgs(o.containerArgs()...).
		WithEnv(o.env()...).
		WithResources(o.resources()).
		WithVolumeMounts(
			corev1ac.VolumeMount().WithName(configVolume).WithMountPath(ConfigDir).WithReadOnly(true),
			corev1ac.VolumeMount().WithName(tmpVolume).WithMountPath("/tmp"),
		).
		WithSecurityContext(corev1ac.SecurityContext().
			WithRunAsNonRoot(true).
			WithRunAsUser(PodUser).
			WithRunAsGroup(PodUser).
			WithReadOnlyRootFilesystem(true).
			WithAllowPrivilegeEscalation(false).
			WithPrivileged(false).
			WithCapabilities(corev1ac.Capabilities().WithDrop("ALL")).
			WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault)))
	if o.storage() != nil {
		c.WithVolumeMounts(corev1ac.VolumeMount().WithName(storageVolume).WithMountPath(v1alpha1.StorageDir))
	}
	for _, ref := range p.Spec.SecretRefs {
		c.WithEnvFrom(corev1ac.EnvFromSource().WithSecretRef(
			corev1ac.SecretEnvSource().WithName(ref.Name).WithOptional(deref(ref.Optional))))
	}
	// The pipeline's own Secret comes last, so its keys win over those of
	// secretRefs (spec.env still wins over both). It is not optional: a pod
	// waits for it rather than starting without its variables.
	secretsRev := p.Labels[v1alpha1.LabelSecretsRevision]
	if secretsRev != "" {
		c.WithEnvFrom(corev1ac.EnvFromSource().WithSecretRef(
			corev1ac.SecretEnvSource().WithName(v1alpha1.SecretsName(p.Name)).WithOptional(false)))
	}
	lowest := int32(0)
	for _, st := range ports {
		c.WithPorts(corev1ac.ContainerPort().WithName(portName(st)).
			WithContainerPort(st.Backend).WithProtocol(st.Protocol.CoreV1()))
		if lowest == 0 || st.Backend < lowest {
			lowest = st.Backend
		}
	}
	metricsPort, _ := o.MetricsPort()
	if metricsPort != 0 && !slices.ContainsFunc(ports, func(st v1alpha1.PortStatus) bool {
		return portName(st) == pipeline.MetricsPortName || st.Backend == metricsPort
	}) {
		c.WithPorts(corev1ac.ContainerPort().WithName(pipeline.MetricsPortName).
			WithContainerPort(metricsPort).WithProtocol(corev1.ProtocolTCP))
	}
	for _, st := range ports {
		if st.Protocol == v1alpha1.ProtocolTCP {
			c.WithReadinessProbe(corev1ac.Probe().
				WithTCPSocket(corev1ac.TCPSocketAction().WithPort(intstr.FromInt32(st.Backend))).
				WithPeriodSeconds(10).WithFailureThreshold(3))
			break
		}
	}

	psc := corev1ac.PodSecurityContext().
		WithRunAsNonRoot(true).
		WithRunAsUser(PodUser).
		WithRunAsGroup(PodUser).
		WithFSGroup(PodUser).
		WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))
	if lowest > 0 && lowest < 1024 {
		psc.WithSysctls(corev1ac.Sysctl().WithName("net.ipv4.ip_unprivileged_port_start").
			WithValue(fmt.Sprint(lowest)))
	}

	// The user's annotations first: the operator's own (which the CRD
	// refuses in spec.podAnnotations) always win.
	annotations := maps.Clone(p.Spec.PodAnnotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[AnnotationConfigHash] = configHash(p)
	if secretsRev != "" {
		annotations[AnnotationSecretsRevision] = secretsRev
	}
	if metricsPort != 0 {
		annotations[AnnotationMetricsPort] = fmt.Sprint(metricsPort)
	}
	ps := corev1ac.PodSpec()
	if len(p.Spec.NodeSelector) > 0 {
		ps.WithNodeSelector(p.Spec.NodeSelector)
	}
	for _, t := range p.Spec.Tolerations {
		ps.WithTolerations(toleration(t))
	}
	return corev1ac.PodTemplateSpec().
		WithLabels(objectLabels(p)).
		WithAnnotations(annotations).
		WithSpec(ps.
			WithAutomountServiceAccountToken(false).
			WithEnableServiceLinks(false).
			WithSecurityContext(psc).
			WithContainers(c).
			WithVolumes(
				corev1ac.Volume().WithName(configVolume).WithConfigMap(
					corev1ac.ConfigMapVolumeSource().WithName(ConfigMapName(p.Name))),
				corev1ac.Volume().WithName(tmpVolume).WithEmptyDir(corev1ac.EmptyDirVolumeSource()),
			))
}

// toleration is t as an apply configuration, without its empty fields.
func toleration(t corev1.Toleration) *corev1ac.TolerationApplyConfiguration {
	ac := corev1ac.Toleration()
	if t.Key != "" {
		ac.WithKey(t.Key)
	}
	if t.Operator != "" {
		ac.WithOperator(t.Operator)
	}
	if t.Value != "" {
		ac.WithValue(t.Value)
	}
	if t.Effect != "" {
		ac.WithEffect(t.Effect)
	}
	if t.TolerationSeconds != nil {
		ac.WithTolerationSeconds(*t.TolerationSeconds)
	}
	return ac
}

// Deployment runs the pipeline as a Deployment. With autoscaling it
// leaves spec.replicas to the HorizontalPodAutoscaler.
func (o *Objects) Deployment() *appsv1ac.DeploymentApplyConfiguration {
	p := o.Pipeline
	spec := appsv1ac.DeploymentSpec().
		WithSelector(metav1ac.LabelSelector().WithMatchLabels(selectorLabels(p))).
		WithTemplate(o.PodTemplate())
	if o.autoscaling() == nil {
		spec.WithReplicas(p.Spec.ReplicaCount())
	}
	return appsv1ac.Deployment(p.Name, p.Namespace).
		WithLabels(objectLabels(p)).
		WithOwnerReferences(o.ownerRef()).
		WithSpec(spec)
}

// HorizontalPodAutoscaler scales the pipeline's Deployment on CPU use; nil
// when the pipeline has no autoscaling.
func (o *Objects) HorizontalPodAutoscaler() *autoscalingv2ac.HorizontalPodAutoscalerApplyConfiguration {
	a := o.autoscaling()
	if a == nil {
		return nil
	}
	p := o.Pipeline
	target := v1alpha1.DefaultTargetCPUUtilization
	if a.TargetCPUUtilizationPercentage != nil {
		target = *a.TargetCPUUtilizationPercentage
	}
	spec := autoscalingv2ac.HorizontalPodAutoscalerSpec().
		WithScaleTargetRef(autoscalingv2ac.CrossVersionObjectReference().
			WithAPIVersion("apps/v1").WithKind("Deployment").WithName(p.Name)).
		WithMaxReplicas(a.MaxReplicas).
		WithMetrics(autoscalingv2ac.MetricSpec().
			WithType(autoscalingv2.ResourceMetricSourceType).
			WithResource(autoscalingv2ac.ResourceMetricSource().
				WithName(corev1.ResourceCPU).
				WithTarget(autoscalingv2ac.MetricTarget().
					WithType(autoscalingv2.UtilizationMetricType).
					WithAverageUtilization(target))))
	if a.MinReplicas != nil {
		spec.WithMinReplicas(*a.MinReplicas)
	} else {
		spec.WithMinReplicas(1)
	}
	return autoscalingv2ac.HorizontalPodAutoscaler(p.Name, p.Namespace).
		WithLabels(objectLabels(p)).
		WithOwnerReferences(o.ownerRef()).
		WithSpec(spec)
}

// DaemonSet runs one pipeline pod per node.
func (o *Objects) DaemonSet() *appsv1ac.DaemonSetApplyConfiguration {
	p := o.Pipeline
	return appsv1ac.DaemonSet(p.Name, p.Namespace).
		WithLabels(objectLabels(p)).
		WithOwnerReferences(o.ownerRef()).
		WithSpec(appsv1ac.DaemonSetSpec().
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(selectorLabels(p))).
			WithTemplate(o.PodTemplate()))
}

// StatefulSet runs the pipeline as a StatefulSet governed by HeadlessService.
// With storage, each pod gets a PersistentVolumeClaim from the volume
// claim template, kept or deleted per the retention policy.
func (o *Objects) StatefulSet() *appsv1ac.StatefulSetApplyConfiguration {
	p := o.Pipeline
	spec := appsv1ac.StatefulSetSpec().
		WithReplicas(p.Spec.ReplicaCount()).
		WithServiceName(HeadlessServiceName(p.Name)).
		WithPodManagementPolicy("Parallel").
		WithSelector(metav1ac.LabelSelector().WithMatchLabels(selectorLabels(p))).
		WithTemplate(o.PodTemplate())
	if st := o.storage(); st != nil {
		pvc := corev1ac.PersistentVolumeClaimSpec().
			WithAccessModes(corev1.ReadWriteOnce).
			WithResources(corev1ac.VolumeResourceRequirements().
				WithRequests(corev1.ResourceList{corev1.ResourceStorage: st.Size}))
		if st.StorageClassName != "" {
			pvc.WithStorageClassName(st.StorageClassName)
		}
		tpl := &corev1ac.PersistentVolumeClaimApplyConfiguration{}
		tpl.WithName(storageVolume).WithLabels(selectorLabels(p)).WithSpec(pvc)
		spec.WithVolumeClaimTemplates(tpl).
			WithPersistentVolumeClaimRetentionPolicy(appsv1ac.StatefulSetPersistentVolumeClaimRetentionPolicy().
				WithWhenDeleted(retention(st.WhenDeleted)).
				WithWhenScaled(retention(st.WhenScaled)))
	}
	return appsv1ac.StatefulSet(p.Name, p.Namespace).
		WithLabels(objectLabels(p)).
		WithOwnerReferences(o.ownerRef()).
		WithSpec(spec)
}

// retention is a storage retention policy after its default (Retain).
func retention(r v1alpha1.RetentionPolicy) appsv1.PersistentVolumeClaimRetentionPolicyType {
	if r == v1alpha1.RetentionDelete {
		return appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	}
	return appsv1.RetainPersistentVolumeClaimRetentionPolicyType
}

// HeadlessService gives a StatefulSet's pods stable DNS names; its ports are
// the backends.
func (o *Objects) HeadlessService() *corev1ac.ServiceApplyConfiguration {
	p := o.Pipeline
	spec := corev1ac.ServiceSpec().
		WithClusterIP(corev1.ClusterIPNone).
		WithPublishNotReadyAddresses(true).
		WithSelector(selectorLabels(p))
	for _, st := range p.Status.Ports {
		spec.WithPorts(corev1ac.ServicePort().WithName(portName(st)).WithProtocol(st.Protocol.CoreV1()).
			WithPort(st.Backend).WithTargetPort(intstr.FromInt32(st.Backend)))
	}
	return corev1ac.Service(HeadlessServiceName(p.Name), p.Namespace).
		WithLabels(objectLabels(p)).
		WithOwnerReferences(o.ownerRef()).
		WithSpec(spec)
}

// ServicePorts returns the ports of the pipeline's Service: one per assigned
// port with a frontend. It is empty when the pipeline has none, and then the
// pipeline gets no Service.
func (o *Objects) ServicePorts() []*corev1ac.ServicePortApplyConfiguration {
	var out []*corev1ac.ServicePortApplyConfiguration
	nodePort := o.ServiceType() == v1alpha1.ServiceTypeNodePort
	for _, st := range o.Pipeline.Status.Ports {
		if st.Frontend == 0 {
			continue
		}
		name := portName(st)
		sp := corev1ac.ServicePort().WithName(name).WithProtocol(st.Protocol.CoreV1()).
			WithPort(st.Frontend).WithTargetPort(intstr.FromInt32(st.Backend))
		if nodePort {
			if np, ok := o.NodePorts[name]; ok && np != 0 {
				sp.WithNodePort(np)
			} else if !o.NoNodePortRequest && o.NodePortRange.Contains(st.Frontend) {
				sp.WithNodePort(st.Frontend)
			}
		}
		out = append(out, sp)
	}
	return out
}

// Service exposes the pipeline's frontends; nil when there are none.
func (o *Objects) Service() *corev1ac.ServiceApplyConfiguration {
	ports := o.ServicePorts()
	if len(ports) == 0 {
		return nil
	}
	p := o.Pipeline
	return corev1ac.Service(p.Name, p.Namespace).
		WithLabels(objectLabels(p)).
		WithOwnerReferences(o.ownerRef()).
		WithSpec(corev1ac.ServiceSpec().
			WithType(o.ServiceType().CoreV1()).
			WithSelector(selectorLabels(p)).
			WithPorts(ports...))
}
