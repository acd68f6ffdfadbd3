package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Group is the API group of every tpctl resource.
const Group = "telemetry.tpctl.dev"

// Version is the API version of this package.
const Version = "v1alpha1"

// GroupVersion is the group and version used to register these types.
var GroupVersion = schema.GroupVersion{Group: Group, Version: Version}

// Kinds and resource names, for callers that build REST paths, RBAC rules or
// owner references.
const (
	KindCoreInstance     = "CoreInstance"
	KindPipeline         = "Pipeline"
	ResourceCoreInstance = "coreinstances"
	ResourcePipeline     = "pipelines"
)

// Resource returns a GroupResource qualified by this package's group.
func Resource(resource string) schema.GroupResource {
	return GroupVersion.WithResource(resource).GroupResource()
}

// AddToScheme registers CoreInstance and Pipeline (and their lists) with s.
// It is what controller-runtime managers and clients need:
//
//	scheme := runtime.NewScheme()
//	_ = clientgoscheme.AddToScheme(scheme)
//	_ = v1alpha1.AddToScheme(scheme)
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&CoreInstance{}, &CoreInstanceList{},
		&Pipeline{}, &PipelineList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
