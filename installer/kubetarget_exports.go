package installer

// RestrictedNamespaceLabels are the Pod Security labels of a namespace
// tpctl creates for its operator (restricted: enforce, warn and audit).
func RestrictedNamespaceLabels() map[string]string { return restrictedNamespaceLabels() }

// AdvisoryNamespaceLabels are the Pod Security labels tpctl sets on a
// shared namespace it did not create (restricted: warn and audit only).
func AdvisoryNamespaceLabels() map[string]string { return advisoryNamespaceLabels() }
