package v1alpha1

// Labels shared by the operator, which sets them, and the clients that read
// them (tpctl's commands and terminal UI).
const (
	// LabelRole marks the operator's own pipelines.
	LabelRole = Group + "/role"
	// RoleHealthCheck is LabelRole's value on an instance's health-check pipeline.
	RoleHealthCheck = "health-check"
	// LabelPipeline names the pipeline an object belongs to.
	LabelPipeline = Group + "/pipeline"
	// LabelInstance names the core instance an object belongs to.
	LabelInstance = Group + "/instance"
)

// DefaultPipelineImage runs a pipeline that names no image and whose
// instance names none either.
const DefaultPipelineImage = "cr.fluentbit.io/fluent/fluent-bit:4.0.3"
