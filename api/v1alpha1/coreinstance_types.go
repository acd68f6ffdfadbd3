package v1alpha1

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CoreInstanceSpec is the desired state of a core instance: settings shared by
// all of its pipelines.
//
// +kubebuilder:validation:XValidation:rule="!has(self.proxySecretRef) || (!has(self.httpProxy) && !has(self.httpsProxy))",message="set either proxySecretRef or httpProxy/httpsProxy, not both"
type CoreInstanceSpec struct {
	// httpProxy is passed to every pipeline pod of the instance as HTTP_PROXY:
	// an http, https or socks5 URL without credentials (a proxy that needs
	// them is named in proxySecretRef instead).
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self == '' || (isURL(self) && url(self).getScheme() in ['http', 'https', 'socks5', 'socks5h'] && url(self).getHostname() != '')",message="must be an http, https or socks5 URL with a host, such as http://proxy.example:3128"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*@')",message="must not carry credentials: put the proxy URL in a Secret and name it in proxySecretRef"
	// +optional
	HTTPProxy string `json:"httpProxy,omitempty"`
	// httpsProxy is passed to every pipeline pod of the instance as
	// HTTPS_PROXY; the same rules as httpProxy apply.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self == '' || (isURL(self) && url(self).getScheme() in ['http', 'https', 'socks5', 'socks5h'] && url(self).getHostname() != '')",message="must be an http, https or socks5 URL with a host, such as http://proxy.example:3128"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*@')",message="must not carry credentials: put the proxy URL in a Secret and name it in proxySecretRef"
	// +optional
	HTTPSProxy string `json:"httpsProxy,omitempty"`
	// noProxy is passed to every pipeline pod of the instance as NO_PROXY:
	// a comma-separated list of hosts, domains and CIDRs reached directly.
	// +kubebuilder:validation:MaxLength=4096
	// +kubebuilder:validation:Pattern=`^[^\s@]*$`
	// +optional
	NoProxy string `json:"noProxy,omitempty"`
	// proxySecretRef names a Secret in the instance's namespace that holds
	// the proxy URLs, credentials included, under the keys httpProxy and
	// httpsProxy (each optional). Pipeline pods read HTTP_PROXY and
	// HTTPS_PROXY from it through secretKeyRef, so the credentials never
	// appear in this resource or in the workloads. When it is set,
	// httpProxy and httpsProxy stay empty.
	// +optional
	ProxySecretRef *corev1.LocalObjectReference `json:"proxySecretRef,omitempty"`

	// healthCheck configures the instance's health-check pipeline. Its port
	// counts as taken for the frontend assignment of the instance's pipelines.
	// +kubebuilder:default={}
	// +optional
	HealthCheck HealthCheckSpec `json:"healthCheck,omitempty"`

	// pipelineDefaults apply to pipelines of this instance that leave the
	// matching field empty.
	// +kubebuilder:default={}
	// +optional
	PipelineDefaults PipelineDefaults `json:"pipelineDefaults,omitempty"`
}

// HealthCheckSpec configures the health-check pipeline of a core instance.
type HealthCheckSpec struct {
	// enabled runs the health-check pipeline. Defaults to true.
	// +kubebuilder:default=true
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
	// port is the TCP port the health-check pipeline listens on.
	// +kubebuilder:default=2020
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int32 `json:"port,omitempty"`
	// protocol of the health check; only TCP is supported.
	// +kubebuilder:default=TCP
	// +kubebuilder:validation:Enum=TCP
	// +optional
	Protocol Protocol `json:"protocol,omitempty"`
	// serviceType of the health-check pipeline's Service; empty means the
	// instance's pipelineDefaults.serviceType.
	// +optional
	ServiceType ServiceType `json:"serviceType,omitempty"`
}

// PipelineDefaults are the values a pipeline of the instance gets when it
// leaves the field empty.
type PipelineDefaults struct {
	// serviceType of a pipeline that names none.
	// +kubebuilder:default=LoadBalancer
	// +optional
	ServiceType ServiceType `json:"serviceType,omitempty"`
	// image (Fluent Bit or compatible) of a pipeline that names none.
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*(:[0-9]{1,5})?/)?[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@[a-z0-9]+([.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,128})?$`
	// +optional
	Image string `json:"image,omitempty"`
	// args of the container of a pipeline that names none; empty means
	// Fluent Bit's "-c <mounted configuration file>".
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	// +optional
	Args []string `json:"args,omitempty"`
}

// FrontendPort is one frontend port in use in a core instance.
type FrontendPort struct {
	// protocol of the port.
	Protocol Protocol `json:"protocol"`
	// port is the frontend number, unique per protocol in the instance.
	Port int32 `json:"port"`
	// pipeline is the name of the pipeline that holds the port.
	Pipeline string `json:"pipeline"`
	// backend is the port the pipeline's pods listen on.
	Backend int32 `json:"backend"`
}

// CoreInstanceStatus is the observed state of a core instance.
type CoreInstanceStatus struct {
	// observedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions: Ready.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// pipelineCount is the number of pipelines that belong to the instance.
	// +optional
	PipelineCount int32 `json:"pipelineCount,omitempty"`
	// frontendPorts lists the frontend ports in use, ordered by protocol and port.
	// +listType=atomic
	// +optional
	FrontendPorts []FrontendPort `json:"frontendPorts,omitempty"`
}

// CoreInstance groups pipelines that share a frontend port space, proxies and
// defaults, and runs their health-check pipeline.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ci,categories=tpctl
// +kubebuilder:printcolumn:name="Pipelines",type=integer,JSONPath=`.status.pipelineCount`
// +kubebuilder:printcolumn:name="Health",type=integer,JSONPath=`.spec.healthCheck.port`,description="Health-check TCP port"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Proxy",type=string,JSONPath=`.spec.httpsProxy`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 47",message="an instance name has at most 47 characters: its health-check pipeline is named <name>-health"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="an instance name must be a DNS label that starts with a letter (lowercase letters, digits and '-')"
type CoreInstance struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec CoreInstanceSpec `json:"spec,omitempty"`
	// +optional
	Status CoreInstanceStatus `json:"status,omitempty"`
}

// CoreInstanceList is a list of CoreInstance.
//
// +kubebuilder:object:root=true
type CoreInstanceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CoreInstance `json:"items"`
}

// HealthCheckEnabled reports whether the health-check pipeline runs (default true).
func (s *CoreInstanceSpec) HealthCheckEnabled() bool {
	return s.HealthCheck.Enabled == nil || *s.HealthCheck.Enabled
}

// HealthCheckPort returns the health-check TCP port, applying the default.
func (s *CoreInstanceSpec) HealthCheckPort() int32 {
	if s.HealthCheck.Port == 0 {
		return DefaultHealthCheckPort
	}
	return s.HealthCheck.Port
}

// DefaultServiceType returns the Service type for pipelines that name none.
func (s *CoreInstanceSpec) DefaultServiceType() ServiceType {
	if s.PipelineDefaults.ServiceType == "" {
		return DefaultServiceType
	}
	return s.PipelineDefaults.ServiceType
}

// HealthCheckServiceType returns the Service type of the health-check pipeline.
func (s *CoreInstanceSpec) HealthCheckServiceType() ServiceType {
	if s.HealthCheck.ServiceType != "" {
		return s.HealthCheck.ServiceType
	}
	return s.DefaultServiceType()
}

// ProxyEnv returns the proxy variables to set in pipeline pods, in a fixed
// order, leaving out the empty ones. With ProxySecretRef, HTTP_PROXY and
// HTTPS_PROXY refer to the Secret's keys (optional ones) instead of holding
// values. Both spellings are set because programs
// differ in which one they read.
func (s *CoreInstanceSpec) ProxyEnv() []corev1.EnvVar {
	var out []corev1.EnvVar
	add := func(name, value string) {
		if value != "" {
			out = append(out,
				corev1.EnvVar{Name: name, Value: value},
				corev1.EnvVar{Name: strings.ToLower(name), Value: value})
		}
	}
	if ref := s.ProxySecretRef; ref != nil && ref.Name != "" {
		// The URLs may carry credentials: the pods read them from the Secret.
		for _, v := range []struct{ name, key string }{{"HTTP_PROXY", ProxySecretKeyHTTP}, {"HTTPS_PROXY", ProxySecretKeyHTTPS}} {
			for _, name := range []string{v.name, strings.ToLower(v.name)} {
				optional := true
				out = append(out, corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
					SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: *ref, Key: v.key, Optional: &optional}}})
			}
		}
	} else {
		add("HTTP_PROXY", s.HTTPProxy)
		add("HTTPS_PROXY", s.HTTPSProxy)
	}
	add("NO_PROXY", s.NoProxy)
	return out
}

// Keys of the Secret named by CoreInstanceSpec.ProxySecretRef.
const (
	ProxySecretKeyHTTP  = "httpProxy"
	ProxySecretKeyHTTPS = "httpsProxy"
)
