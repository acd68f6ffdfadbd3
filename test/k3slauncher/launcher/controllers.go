package launcher

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// NodePasswordOwners is K3s's node-password controller
// (pkg/nodepassword/controller.go): every node-password secret gets an
// OwnerReference to its Node, so that the garbage collector deletes the
// secret when the Node is deleted; a secret older than ten minutes whose
// Node does not exist is deleted (a node that asked for certificates but
// never joined).
func NodePasswordOwners(ctx context.Context, cs kubernetes.Interface, now time.Time) error {
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	secrets := cs.CoreV1().Secrets("kube-system")
	byName := map[string]corev1.Node{}
	for _, n := range nodes.Items {
		byName[NodePasswordSecretName(n.Name)] = n
	}
	list, err := secrets.List(ctx, metav1.ListOptions{FieldSelector: "type=" + string(NodePasswordSecretType)})
	if err != nil {
		return fmt.Errorf("list node-password secrets: %w", err)
	}
	for i := range list.Items {
		sec := &list.Items[i]
		n, ok := byName[sec.Name]
		if !ok {
			if sec.CreationTimestamp.Add(10 * time.Minute).Before(now) {
				uid := sec.UID
				err := secrets.Delete(ctx, sec.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
				if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
					return fmt.Errorf("delete orphaned %s: %w", sec.Name, err)
				}
			}
			continue
		}
		owned := false
		for _, ref := range sec.OwnerReferences {
			if ref.Kind == "Node" && ref.Name == n.Name && ref.UID == n.UID {
				owned = true
			}
		}
		if owned {
			continue
		}
		sec.OwnerReferences = append(sec.OwnerReferences, metav1.OwnerReference{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.UID})
		if _, err := secrets.Update(ctx, sec, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
			return fmt.Errorf("set owner of %s: %w", sec.Name, err)
		}
	}
	return nil
}

// KubernetesEndpoints points the default/kubernetes Service at the
// supervisor (<node-ip>:6443), as K3s's API server advertises its public
// port rather than 6444 (K3s's kube-apiserver has an advertise-port; the
// upstream one does not, so the stand-in runs it with
// endpoint-reconciler-type=none and writes the EndpointSlice and Endpoints
// itself).
func KubernetesEndpoints(ctx context.Context, cs kubernetes.Interface, addrs []string, port int) error {
	p32 := int32(port) //nolint:gosec // a port
	name, proto := "https", corev1.ProtocolTCP
	ready := true
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default",
			Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   sliceEndpoints(addrs, &ready),
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &p32, Protocol: &proto}},
	}
	eslices := cs.DiscoveryV1().EndpointSlices("default")
	cur, err := eslices.Get(ctx, "kubernetes", metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := eslices.Create(ctx, slice, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create kubernetes EndpointSlice: %w", err)
		}
	case err != nil:
		return fmt.Errorf("get kubernetes EndpointSlice: %w", err)
	default:
		if !slices.Equal(endpointAddrs(cur.Endpoints), addrs) ||
			len(cur.Ports) != 1 || cur.Ports[0].Port == nil || *cur.Ports[0].Port != p32 {
			cur.Labels, cur.Endpoints, cur.Ports = slice.Labels, slice.Endpoints, slice.Ports
			if _, err := eslices.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("update kubernetes EndpointSlice: %w", err)
			}
		}
	}
	ep := &corev1.Endpoints{ //nolint:staticcheck // the Service's Endpoints, as the API server keeps them
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default",
			Labels: map[string]string{discoveryv1.LabelSkipMirror: "true"}},
		Subsets: []corev1.EndpointSubset{{ //nolint:staticcheck // as above
			Addresses: epAddresses(addrs),
			Ports:     []corev1.EndpointPort{{Name: name, Port: p32, Protocol: proto}}, //nolint:staticcheck // as above
		}},
	}
	eps := cs.CoreV1().Endpoints("default") //nolint:staticcheck // as above
	curEP, err := eps.Get(ctx, "kubernetes", metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := eps.Create(ctx, ep, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create kubernetes Endpoints: %w", err)
		}
	case err != nil:
		return fmt.Errorf("get kubernetes Endpoints: %w", err)
	default:
		if len(curEP.Subsets) != 1 || !slices.Equal(epIPs(curEP.Subsets[0].Addresses), addrs) ||
			len(curEP.Subsets[0].Ports) != 1 || curEP.Subsets[0].Ports[0].Port != p32 {
			curEP.Labels, curEP.Subsets = ep.Labels, ep.Subsets
			if _, err := eps.Update(ctx, curEP, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("update kubernetes Endpoints: %w", err)
			}
		}
	}
	return nil
}

// PodRoute is one route to another node's pods: flannel's host-gw backend
// routes each other node's podCIDR via that node's address
// (flannel: pkg/backend/hostgw, as K3s runs it with flannel-backend
// host-gw).
type PodRoute struct {
	CIDR netip.Prefix
	Via  netip.Addr
}

// PodRoutes are the routes a node needs: one per other node that has a
// podCIDR and an InternalIP (IPv4 only, as the stand-in).
func PodRoutes(self string, nodes []corev1.Node) []PodRoute {
	var out []PodRoute
	for _, n := range nodes {
		if n.Name == self || n.Spec.PodCIDR == "" {
			continue
		}
		cidr, err := netip.ParsePrefix(n.Spec.PodCIDR)
		if err != nil || !cidr.Addr().Is4() {
			continue
		}
		for _, a := range n.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is4() {
				out = append(out, PodRoute{CIDR: cidr.Masked(), Via: ip})
				break
			}
		}
	}
	return out
}

// routeSync keeps the kernel's routes to other nodes' pods: it adds (ip
// route replace) the routes PodRoutes gives and deletes the ones it added
// for nodes that are gone or moved. Routes are tagged with protocol
// number 248 so that a restart finds its own.
type routeSync struct {
	self string
	logf func(string, ...any)
	run  func(ctx context.Context, args ...string) ([]byte, error)
}

const routeProto = "248"

func ipCommand(ctx context.Context, args ...string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

func (r *routeSync) sync(ctx context.Context, cs kubernetes.Interface) error {
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	want := map[string]string{}
	for _, rt := range PodRoutes(r.self, nodes.Items) {
		want[rt.CIDR.String()] = rt.Via.String()
	}
	out, err := r.run(ctx, "-4", "route", "show", "proto", routeProto)
	if err != nil {
		return err
	}
	have := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == "via" {
			have[f[0]] = f[2]
		}
	}
	for cidr, via := range want {
		if have[cidr] == via {
			continue
		}
		if _, err := r.run(ctx, "route", "replace", cidr, "via", via, "proto", routeProto); err != nil {
			return err
		}
		r.logf("route to pods %s via %s", cidr, via)
	}
	for cidr := range have {
		if _, ok := want[cidr]; ok {
			continue
		}
		if _, err := r.run(ctx, "route", "del", cidr, "proto", routeProto); err != nil {
			return err
		}
		r.logf("route to pods %s removed", cidr)
	}
	return nil
}

// loop runs fn every interval until ctx ends, logging failures now and then.
func loop(ctx context.Context, interval time.Duration, what string, logf func(string, ...any), fn func(context.Context) error) {
	var told time.Time
	for {
		if err := fn(ctx); err != nil && ctx.Err() == nil && time.Since(told) > 30*time.Second {
			logf("%s: %s", what, err)
			told = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

func portString(p int) string { return strconv.Itoa(p) }

// sliceEndpoints are one ready endpoint per server address (as
// kube-apiserver's reconcilers write them).
func sliceEndpoints(addrs []string, ready *bool) []discoveryv1.Endpoint {
	out := make([]discoveryv1.Endpoint, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, discoveryv1.Endpoint{Addresses: []string{a}, Conditions: discoveryv1.EndpointConditions{Ready: ready}})
	}
	return out
}

func endpointAddrs(eps []discoveryv1.Endpoint) []string {
	var out []string
	for _, e := range eps {
		out = append(out, e.Addresses...)
	}
	return out
}

func epAddresses(addrs []string) []corev1.EndpointAddress {
	out := make([]corev1.EndpointAddress, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, corev1.EndpointAddress{IP: a})
	}
	return out
}

func epIPs(addrs []corev1.EndpointAddress) []string {
	var out []string
	for _, a := range addrs {
		out = append(out, a.IP)
	}
	return out
}
