package manage

import (
	"context"
	"time"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// API is what the terminal UI needs from the cluster. *Client implements
// it; managetest.Memory is an in-memory implementation for model tests.
type API interface {
	// Namespace is the namespace every call works in.
	Namespace() string

	ListPipelines(ctx context.Context) ([]v1alpha1.Pipeline, error)
	GetPipeline(ctx context.Context, name string) (*v1alpha1.Pipeline, error)
	// CreatePipeline validates p (ValidatePipeline, with texts naming its
	// port entries), resolves its instance and creates it.
	CreatePipeline(ctx context.Context, p *v1alpha1.Pipeline, texts []string, o WriteOptions) (*v1alpha1.Pipeline, error)
	// UpdatePipeline applies ch to the current object and writes it back.
	UpdatePipeline(ctx context.Context, name string, ch PipelineChange, o WriteOptions) (*v1alpha1.Pipeline, error)
	DeletePipeline(ctx context.Context, name string, o WriteOptions) (*v1alpha1.Pipeline, error)
	// WatchPipelines streams the namespace's pipelines: first a Reset event
	// with all of them, then changes. The channel closes when ctx ends or
	// the watch fails (the last event then carries the error).
	WatchPipelines(ctx context.Context) (<-chan PipelineEvent, error)
	Endpoints(ctx context.Context, name string) ([]Endpoint, error)
	// Events returns the recent events about an object, newest first.
	Events(ctx context.Context, kind, name string) ([]Event, error)

	// PipelineSecrets lists the keys of a pipeline's own Secret with the
	// sizes of their values, never the values.
	PipelineSecrets(ctx context.Context, name string) ([]SecretKey, error)
	// ChangePipelineSecrets sets and removes keys of a pipeline's own
	// Secret (creating it, owned by the pipeline); a change of the data
	// rolls the pipeline's pods. It returns the keys after the change.
	ChangePipelineSecrets(ctx context.Context, name string, ch SecretChange, o WriteOptions) ([]SecretKey, error)

	ListInstances(ctx context.Context) ([]v1alpha1.CoreInstance, error)
	GetInstance(ctx context.Context, name string) (*v1alpha1.CoreInstance, error)
	UpdateInstance(ctx context.Context, name string, ch InstanceChange, o WriteOptions) (*v1alpha1.CoreInstance, error)

	// ListNodes lists the cluster's nodes with the namespace's pipeline
	// pods on each (DescribeNodes).
	ListNodes(ctx context.Context) (NodeList, error)
}

// WriteOptions tune a write.
type WriteOptions struct {
	// DryRun sends the request as a server-side dry run: validated by the
	// API server, not stored.
	DryRun bool
}

// EventType says how a watched pipeline changed.
type EventType string

const (
	EventReset    EventType = "Reset" // Pipelines holds every pipeline
	EventAdded    EventType = "Added"
	EventModified EventType = "Modified"
	EventDeleted  EventType = "Deleted"
	EventError    EventType = "Error" // Err says why the watch ended
)

// PipelineEvent is one change seen by WatchPipelines.
type PipelineEvent struct {
	Type      EventType
	Pipeline  *v1alpha1.Pipeline  // Added, Modified, Deleted
	Pipelines []v1alpha1.Pipeline // Reset
	Err       error               // Error
}

// Event is a Kubernetes event about an object.
type Event struct {
	Type    string    `json:"type"` // Normal or Warning
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	Count   int32     `json:"count,omitempty"`
	Last    time.Time `json:"last"`
}

// Scope says from where an endpoint's address is reachable.
type Scope string

const (
	ScopeCluster  Scope = "cluster"  // from pods of the cluster (ClusterIP)
	ScopeNode     Scope = "node"     // from anywhere that reaches the node (NodePort)
	ScopeExternal Scope = "external" // through the load balancer
)

// Endpoint is one port of a pipeline with the address a client uses.
type Endpoint struct {
	Name        string               `json:"name,omitempty"`
	Protocol    v1alpha1.Protocol    `json:"protocol"`
	Frontend    int32                `json:"frontend"`
	Backend     int32                `json:"backend"`
	Reassigned  bool                 `json:"reassigned"`
	ServiceType v1alpha1.ServiceType `json:"serviceType"`
	NodePort    int32                `json:"nodePort,omitempty"`
	// Address is host:port for the client, empty while there is none
	// (Service not created yet, no frontend).
	Address string `json:"address,omitempty"`
	// DNS is the in-cluster name with the frontend port.
	DNS   string `json:"dns,omitempty"`
	Scope Scope  `json:"scope,omitempty"`
	// Note explains a missing address or a fallback.
	Note   string `json:"note,omitempty"`
	Source string `json:"source,omitempty"`
}
