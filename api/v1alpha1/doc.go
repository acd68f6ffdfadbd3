// Package v1alpha1 holds the tpctl custom resources of the API group
// telemetry.tpctl.dev: CoreInstance (a set of pipelines sharing one frontend
// port space, proxies and defaults) and Pipeline (one Fluent Bit workload and
// its Service).
//
// The CRD manifests generated from these types are embedded (see CRDs) so that
// the operator chart, the installer and tests apply exactly what the Go types
// describe. Regenerate them with `make generate` after changing a type.
//
// +kubebuilder:object:generate=true
// +groupName=telemetry.tpctl.dev
package v1alpha1
