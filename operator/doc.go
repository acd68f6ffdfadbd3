// Package operator holds the controller-runtime manager that the operator
// command (operator/command: `tpctl operator`, and cmd/tpctl-operator, the
// binary of the release's operator image) runs, and its two reconcilers.
//
// # Who writes what
//
// The CoreInstance reconciler is the only writer of port assignments. For an
// instance it lists every Pipeline whose spec.instance names it, resolves
// each one's effective ports with package pipeline, and
// runs pipeline.Assign once for the whole instance with the reserved set: the
// node's own ports (the host-bound rows of the K3s port table) and those of
// the enabled packaged components (Traefik's 80 and 443), passed in as
// Options.Reserved; the frontends of every other LoadBalancer Service in the
// cluster (K3s's servicelb makes each a port on every node; read from the
// cache, which holds all Services, indexed by type); and the instance's
// health-check port. Each skipped number is named with its holder in the
// PortsAssigned message. A LoadBalancer Service created after an entry took
// its frontend does not move it (older components never move); the entry's
// message names the newcomer. Effective ports are memoised per pipeline uid
// and generation, so a reconcile parses only changed configurations. A
// pipeline whose new generation is invalid keeps claiming the frontends in
// its status (its old workload and Service keep serving them); its
// PortsAssigned condition is False and names the generation still served.
// It then writes, per
// pipeline, status.ports (protocol, frontend, backend, reassigned, since),
// status.portSummary and the PortsAssigned condition, and on the instance
// status.frontendPorts, status.pipelineCount and the Ready condition (True
// when every pipeline of the instance is Ready). Because one reconciler owns
// one instance's whole port space and the work queue never runs one key twice
// at once, no two pipelines can be given the same frontend. It plans from
// the informer cache (without copying it); where the cache has not yet seen
// its last status write to a pipeline (same generation, different ports
// status), it plans with what it wrote, so an assignment never rests on a
// lagging cache, and no reconcile lists every pipeline from the API server.
// A change the cache has not seen brings its own event later. Only before
// creating or updating the health-check pipeline does it list directly, so
// that it never takes over a same-named pipeline the cache does not show.
//
// The Pipeline reconciler turns a pipeline whose ports are assigned for its
// current generation into objects and writes status.conditions[Ready],
// status.readyReplicas, status.serviceType and status.observedGeneration.
// The two reconcilers write disjoint status fields with server-side apply
// under different field managers (FieldManagerPorts, FieldManagerWorkload),
// so neither overwrites the other.
//
// Every object is written with server-side apply (FieldManager), which is
// idempotent. The Pipeline reconciler remembers the configuration it last
// applied to each object and the resourceVersion the API server answered;
// while the cached object still has that resourceVersion, an identical apply
// is skipped. The reconcilers watch the objects they own, so a change made by
// someone else (a new resourceVersion) is put back, and they do not requeue
// on a timer.
//
// # Objects of a pipeline
//
// For a Pipeline named P (object names are P, so P must be a DNS label of at
// most 63 characters that starts with a letter, as a Service name must be):
//
//   - ConfigMap P-config holding the configuration as pipeline.yaml or
//     pipeline.conf, mounted read-only at /fluent-bit/etc/tpctl; the
//     container gets "-c <that file>" as args unless the pipeline or its
//     instance gives args of its own (images that are not Fluent Bit).
//   - The workload P of spec.workload.kind: Deployment (default), DaemonSet,
//     or StatefulSet with the headless Service P-headless as its serviceName.
//     When the kind changes, the workload of the old kind is deleted.
//   - Service P of the effective Service type (the pipeline's, else the
//     instance's pipelineDefaults.serviceType, else LoadBalancer). Each port
//     with a frontend becomes a Service port whose port is the frontend and
//     whose targetPort is the backend (the container port). Ports that got no
//     frontend (PortsExhausted) are left out; a pipeline without ports has no
//     Service.
//
// An object of one of these names that the pipeline does not control
// (checked by owner UID, on the API server when the operator's cache, which
// holds only objects it labelled, does not have it) is never changed: the
// pipeline applies nothing, reports Ready=False with reason NameTaken naming
// the object ("Service default/victim exists and is not managed by pipeline
// victim") and looks again every 30 seconds. Objects are created without
// ForceOwnership, so one created in between fails with a conflict instead of
// being taken over.
//
// Pod template: the instance's proxies as HTTP_PROXY, HTTPS_PROXY and NO_PROXY
// (and their lowercase spellings), then spec.env; spec.secretRefs as envFrom.
// When the instance names a proxy Secret (spec.proxySecretRef), HTTP_PROXY and
// HTTPS_PROXY come from its keys httpProxy and httpsProxy through
// secretKeyRef, so proxy credentials never appear in the workload.
//
// Secrets and who may read them: spec.secretRefs, spec.env (secretKeyRef) and
// the proxy Secret are read by the kubelet into the pipeline's pods, and a
// pipeline's configuration decides what its pods send where. So whoever may
// create or change a Pipeline in a namespace may read every Secret of that
// namespace through it, whatever RBAC says about Secrets; grant Pipeline
// write access as you would grant Secret read access there.
// Pods run as user and group 65532 with runAsNonRoot, a read-only root file
// system (an emptyDir at /tmp for scratch space), no privilege escalation, all
// capabilities dropped, the RuntimeDefault seccomp profile and no service
// account token. A backend port below 1024 is made bindable without
// capabilities by the namespaced, safe sysctl net.ipv4.ip_unprivileged_port_start.
// The pod template carries a hash of the configuration so that a changed
// configuration rolls the pods. A TCP readiness probe checks the first TCP
// backend port, when there is one.
//
// Ready follows the workload: ready replicas against desired replicas
// (Deployment, StatefulSet) or ready against scheduled pods (DaemonSet).
//
// # NodePort and the frontend
//
// A pipeline's frontend is always the Service port. With type NodePort,
// Kubernetes additionally exposes every Service port on each node at a node
// port taken from the cluster's NodePort range (30000–32767 by default). The
// operator asks for the frontend itself as the node port when the frontend
// lies inside that range (Options.NodePortRange), so that the number clients
// use is the same on the node as in the cluster; otherwise it leaves the node
// port to Kubernetes. If the requested node port is already allocated the API
// server refuses the Service; the operator then applies it again without the
// request, lets Kubernetes allocate one and records a Warning event naming
// the allocated port. A node port, once allocated, is kept on later applies,
// so it never moves while the Service exists. With type LoadBalancer, K3s's
// service load balancer exposes the Service port (the frontend) on the
// node's addresses; the node ports it implies are left to Kubernetes.
//
// # The health-check pipeline
//
// Every CoreInstance with spec.healthCheck.enabled (the default) owns a
// Pipeline named <instance>-health (HealthCheckPipelineName), created by the
// CoreInstance reconciler with a controller owner reference, the label
// telemetry.tpctl.dev/role=health-check, one TCP port (the health-check port,
// 2020 by default) named "health", port detection off, and a Fluent Bit
// configuration whose HTTP server answers health checks on that port. The
// operator owns only the fields it sets, so an administrator may still set
// the health-check pipeline's image, args, resources or replicas. It is not a
// claimant in the assignment: its port is in the instance's reserved set, and
// its status.ports is that port with frontend = backend. The Pipeline
// reconciler then builds its objects like any other pipeline's. Disabling the
// health check deletes the pipeline.
//
// # Owner references and deletion
//
// Pipeline → ConfigMap, workload, Services (controller references: deleting
// a pipeline deletes them). CoreInstance → health-check Pipeline (controller
// reference) and → every other Pipeline of the instance (a plain owner
// reference, added by the CoreInstance reconciler once no port status is
// waiting to be written, so that a burst of new pipelines gets its ports
// first), so deleting an instance deletes its pipelines and, through them,
// their objects. Deletion itself is done by Kubernetes' garbage collector.
//
// # Cost
//
// The cache keeps only the fields the reconcilers read (TrimForCache: no
// pod templates, ConfigMap data, managedFields or annotations of the objects
// the operator builds). A reconcile looks up each object of a pipeline once.
// The collector runs at GOGC=50 and, in a container with a memory limit,
// with a soft limit at MemoryLimitShare of it (GOGC and GOMEMLIMIT, when
// set, win); once a burst of reconciles is over, the free heap and the
// resident pages of the binary's code and read-only data are returned to
// the system (DropBinaryPages). The scheme holds only the API groups the
// operator uses, and the release's image runs cmd/tpctl-operator, which
// links the operator without the rest of tpctl. BenchmarkCreatePipelines
// (bench_integration_test.go) builds that binary as the release does and
// measures time and memory for a number of pipelines created at once;
// -profile-dir writes CPU and heap profiles of the operator, served on
// loopback by --pprof-bind-address (off by default).
//
// # Events
//
// Every decision is recorded as a Kubernetes Event on the object it concerns:
// a reassigned or moved frontend ("frontend tcp/2200 → 2201: tcp/2200 is held
// by pipeline a ports[0]; frontend 2201"), ports without frontend, invalid
// ports or configuration, a missing instance, a workload kind change, a node
// port that could not be had, and failures to apply an object. Routine steps
// make none: a frontend equal to its backend, a Service created, a new
// pipeline's first Ready=False Progressing status and its step from there
// to Unavailable while its first pods start (their statuses say so).
// Thousands of pipelines created at once would otherwise make thousands of
// Event writes, each kept for minutes by the operator's event recorder. For
// the same reason one instance reconcile records at most
// MaxAssignmentEvents port events on pipelines; the rest are counted by
// reason in one PortEventsSummarised event on the instance (each
// pipeline's PortsAssigned condition still says why).
//
// # Port assignments first
//
// While the instance reconciler writes port assignments, pipelines build
// their ConfigMaps, workloads and Services one at a time; otherwise as many
// at once as --workers allows. Thousands of pipelines created at once get
// their frontends before the API server's capacity goes to their objects.
package operator
