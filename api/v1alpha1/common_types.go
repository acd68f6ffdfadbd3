package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
)

// Protocol is the transport protocol of a port: TCP or UDP. TCP and UDP
// ports are independent: both may use the same number.
// +kubebuilder:validation:Enum=TCP;UDP
// +kubebuilder:validation:MaxLength=3
type Protocol string

const (
	ProtocolTCP Protocol = "TCP"
	ProtocolUDP Protocol = "UDP"
)

// Valid reports whether p is TCP or UDP.
func (p Protocol) Valid() bool { return p == ProtocolTCP || p == ProtocolUDP }

// CoreV1 returns the matching core/v1 protocol for Services and containers.
func (p Protocol) CoreV1() corev1.Protocol { return corev1.Protocol(p) }

// ServiceType is the Kubernetes Service type that exposes a pipeline.
// +kubebuilder:validation:Enum=ClusterIP;LoadBalancer;NodePort
// +kubebuilder:validation:MaxLength=12
type ServiceType string

const (
	ServiceTypeClusterIP    ServiceType = "ClusterIP"
	ServiceTypeLoadBalancer ServiceType = "LoadBalancer"
	ServiceTypeNodePort     ServiceType = "NodePort"
)

// Valid reports whether t is one of the supported Service types.
func (t ServiceType) Valid() bool {
	switch t {
	case ServiceTypeClusterIP, ServiceTypeLoadBalancer, ServiceTypeNodePort:
		return true
	}
	return false
}

// CoreV1 returns the matching core/v1 Service type.
func (t ServiceType) CoreV1() corev1.ServiceType { return corev1.ServiceType(t) }

// Defaults that the CRD applies on the server and that the accessor methods
// apply to objects built in Go without going through the API server.
const (
	// DefaultHealthCheckPort is the TCP port of an instance's health-check pipeline.
	DefaultHealthCheckPort int32 = 2020
	// DefaultServiceType is the Service type of a pipeline when neither the
	// pipeline nor its instance names one.
	DefaultServiceType = ServiceTypeLoadBalancer
	// DefaultWorkloadKind is the workload kind of a pipeline that names none.
	DefaultWorkloadKind = WorkloadDeployment
	// DefaultConfigFormat is the format of a pipeline configuration that names none.
	DefaultConfigFormat = ConfigFormatYAML
	// MaxPortsPerPipeline bounds spec.ports so that the CEL uniqueness rule
	// stays cheap; Kubernetes Services allow far more, pipelines need few.
	MaxPortsPerPipeline = 64
	// MaxConfigBytes bounds spec.config.content; it is stored in a ConfigMap.
	MaxConfigBytes = 512 * 1024
)

// Condition types used in status.conditions.
const (
	// ConditionReady is True when the object's workloads are available.
	ConditionReady = "Ready"
	// ConditionPortsAssigned is True when every port of a pipeline has a frontend.
	ConditionPortsAssigned = "PortsAssigned"
)

// Condition reasons. They are CamelCase and stable, so tools may match them.
const (
	// PortsAssigned reasons.
	ReasonAssigned       = "Assigned"       // every port has its backend number as frontend
	ReasonReassigned     = "Reassigned"     // at least one frontend was moved off a clash
	ReasonPortsExhausted = "PortsExhausted" // no free frontend between the backend and 65535
	ReasonInvalidPorts   = "InvalidPorts"   // duplicate backends or bad values
	ReasonInvalidConfig  = "InvalidConfig"  // the Fluent Bit configuration could not be read
	ReasonNoPorts        = "NoPorts"        // the pipeline exposes no port

	// Ready reasons.
	ReasonAvailable        = "Available"        // all desired replicas are ready
	ReasonProgressing      = "Progressing"      // the workload is rolling out
	ReasonUnavailable      = "Unavailable"      // no replica is ready
	ReasonInstanceNotFound = "InstanceNotFound" // spec.instance names no CoreInstance
	ReasonReconcileError   = "ReconcileError"   // the operator failed to apply an object
	ReasonNameTaken        = "NameTaken"        // an object of the pipeline's name exists and is not the pipeline's
	// ReasonLoadBalancerPending: the pods are ready but no load balancer has
	// given the pipeline's LoadBalancer Service an address.
	ReasonLoadBalancerPending = "LoadBalancerPending"
	// Ready reasons read from the pipeline's pods when too few are ready;
	// the message names the pod and repeats what the kubelet said.
	ReasonCrashLoopBackOff     = "CrashLoopBackOff"     // a container keeps exiting; the message has its exit code and last log lines
	ReasonImagePullError       = "ImagePullError"       // the image cannot be pulled (ErrImagePull, ImagePullBackOff, InvalidImageName)
	ReasonContainerConfigError = "ContainerConfigError" // the container cannot be created (e.g. a Secret it reads is missing)
	ReasonUnschedulable        = "Unschedulable"        // no node can take the pod
)
