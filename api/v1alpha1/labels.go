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
const DefaultPipelineImage = "docker.io/fluent/fluent-bit:5.1.1"

// LabelSecretsRevision on a pipeline says that it has a Secret of its own
// (SecretsName) and changes whenever tpctl changes that Secret's data. The
// operator then gives the pipeline container the Secret's keys as
// environment variables and copies the revision onto the pod template, so a
// change rolls the pods. It is a random token: it carries nothing of the
// data. (A label rather than an annotation: a label change reaches the
// operator's Pipeline reconciler.)
const LabelSecretsRevision = Group + "/secrets-revision"

// SecretsName is the name of the Secret that holds a pipeline's own
// secrets; a pipeline name has at most 54 characters, so it is at most 62.
func SecretsName(pipeline string) string { return pipeline + "-secrets" }
