// Package launcher is the library of the K3s-compatible launcher in
// test/k3slauncher.
//
// The launcher is a TEST DOUBLE for the K3s release binary, which cannot be
// fetched in this build environment. It is never shipped: tpctl's release
// embeds the real K3s (scripts/fetch-k3s). The install end-to-end tests give
// it to `tpctl install --k3s-binary` so that the whole install runs against a
// real systemd and a real Kubernetes node.
//
// It behaves like `k3s server` where tpctl depends on it: it accepts exactly
// the server keys tpctl writes (Keys, equal to installer.K3sConfigKeys) in
// /etc/rancher/k3s/config.yaml, its drop-ins config.yaml.d/*.yaml (merged as
// K3s merges them, key+ appending) and on the command line, and rejects any
// other with an error naming it, so drift shows; it runs the upstream
// components (kine on SQLite, kube-apiserver, kube-controller-manager,
// kube-scheduler, containerd 2 built from github.com/containerd/containerd/v2,
// kubelet, kube-proxy, a bridge CNI network named cni0 with the portmap
// plugin) as its children; it keeps its state in the
// data dir K3s uses (server/tls, server/db, agent/etc/containerd,
// agent/images, …), generates containerd's config.toml in K3s's version 3
// layout (no restrict_oom_score_adj key, as K3s's) or renders it from
// config-v3.toml.tmpl, else config.toml.tmpl, when one is there, imports the image archives of <data-dir>/agent/images at
// every start and pins them (io.cri-containerd.pinned=pinned), skipping those
// an opt-in .cache.json records unchanged, and imports archives that appear
// there while it runs (airgap.go), writes the admin kubeconfig to /etc/rancher/k3s/k3s.yaml with
// write-kubeconfig-mode, and sends READY=1 to systemd once the API server
// answers /readyz, as K3s does (the node becomes Ready later), never passing
// NOTIFY_SOCKET to its children. After READY=1 it deploys K3s's packaged
// components unless disabled: CoreDNS, Traefik (a stand-in image holding 80
// and 443 through a LoadBalancer Service), local storage (the default
// StorageClass local-path and a stand-in provisioner making hostPath
// volumes in <data-dir>/storage) and the service load balancer
// (servicelb.go: a svclb-<service>-<uid> DaemonSet per LoadBalancer Service
// whose pods hold hostPort = port, and the nodes of Ready svclb pods as the
// Service's ingress). On SIGTERM it stops the components in order (kubelet
// and kube-proxy, then the control plane and containerd, then the
// datastore); containerd's shims and the pods stay up, as with K3s under
// KillMode=process.
//
// metrics-server is a kube-system Deployment of that name running the pause
// image (metricsserver.go): tpctl waits for it as for any packaged add-on,
// but it serves no metrics API.
//
// What it does not do: flannel (the bridge network stands in for it;
// flannel-backend none runs no network), the metrics API
// (v1beta1.metrics.k8s.io), HelmChart resources (Traefik is created directly, not
// through helm-install jobs), agents
// joining, and any K3s key tpctl does not write.
package launcher
