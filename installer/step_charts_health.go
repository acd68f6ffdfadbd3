package installer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// The install ends only when the health-check URL its summary prints
// answers from this host: the CoreInstance being Ready says the pipeline's
// pod runs, not that the node publishes its port (a LoadBalancer Service
// needs servicelb's pod and ingress address, a NodePort kube-proxy's
// rules).

// HealthCheckPath is the path of the health-check pipeline's HTTP check
// (Fluent Bit's health endpoint).
const HealthCheckPath = "/api/v1/health"

// HealthProbe asks url once, from this host: nil when it answers 200 OK.
type HealthProbe func(ctx context.Context, url string) error

// HTTPHealthProbe is the HealthProbe of a real install: one GET with a
// short timeout, never through a proxy (the address is the node's own).
func HTTPHealthProbe(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	c := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

func (r *chartsRun) probe() HealthProbe {
	if r.HealthProbe != nil {
		return r.HealthProbe
	}
	return HTTPHealthProbe
}

// healthPipeline is the health-check pipeline's name (its Service's too).
func (r *chartsRun) healthPipeline() string { return r.instanceName() + "-health" }

// HealthCheckURL is where this host reaches the health check through svc,
// the health-check pipeline's Service, with node the node's address; when
// it cannot be known yet, url is "" and missing says what is awaited.
//
//   - LoadBalancer: the load balancer's address (the node's own when servicelb
//     lists it) and the Service port;
//   - NodePort: the node's address and the node port (2020 is outside the
//     node port range: the node port is another number);
//   - ClusterIP: the cluster IP and the Service port (a node reaches it).
func HealthCheckURL(svc *corev1.Service, node string) (url, missing string) {
	if len(svc.Spec.Ports) == 0 {
		return "", "a port in Service " + svc.Namespace + "/" + svc.Name
	}
	sp := svc.Spec.Ports[0]
	for _, p := range svc.Spec.Ports {
		if p.Name == "health" {
			sp = p
			break
		}
	}
	hostURL := func(host string, port int32) string {
		return "http://" + net.JoinHostPort(host, strconv.Itoa(int(port))) + HealthCheckPath
	}
	switch svc.Spec.Type {
	case corev1.ServiceTypeLoadBalancer:
		var hosts []string
		for _, in := range svc.Status.LoadBalancer.Ingress {
			if in.IP != "" {
				hosts = append(hosts, in.IP)
			} else if in.Hostname != "" {
				hosts = append(hosts, in.Hostname)
			}
		}
		if len(hosts) == 0 {
			return "", "a load balancer address for Service " + svc.Namespace + "/" + svc.Name + " (servicelb publishes it once its pod holds the port)"
		}
		host := hosts[0]
		for _, h := range hosts {
			if h == node {
				host = h
			}
		}
		return hostURL(host, sp.Port), ""
	case corev1.ServiceTypeNodePort:
		if sp.NodePort == 0 {
			return "", "a node port for Service " + svc.Namespace + "/" + svc.Name
		}
		if node == "" {
			return "", "the node's address"
		}
		return hostURL(node, sp.NodePort), ""
	default:
		if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
			return "", "a cluster IP for Service " + svc.Namespace + "/" + svc.Name
		}
		return hostURL(svc.Spec.ClusterIP, sp.Port), ""
	}
}

// nodeAddress is the configured node IP, else the node's address as the
// API reports it ("" when unknown).
func (r *chartsRun) nodeAddress(ctx context.Context, api ChartAPI) string {
	if ip := r.env.Config.NodeIP; ip != "" {
		return ip
	}
	n, err := api.Node(ctx, r.env.Config.NodeName)
	if err != nil {
		return ""
	}
	for _, want := range []corev1.NodeAddressType{corev1.NodeExternalIP, corev1.NodeInternalIP} {
		for _, a := range n.Status.Addresses {
			if a.Type == want && a.Address != "" {
				return a.Address
			}
		}
	}
	return ""
}

// checkHealthURL looks once whether the health check answers from this
// host: "" when it does (and the URL is remembered for the summary), else
// what is awaited.
func (r *chartsRun) checkHealthURL(ctx context.Context, api ChartAPI) (string, error) {
	name := r.healthPipeline()
	svc, err := api.Service(ctx, InstanceNamespace, name)
	if apierrors.IsNotFound(err) {
		return "Service " + InstanceNamespace + "/" + name + " of the health-check pipeline to exist", nil
	}
	if err != nil {
		return "the API server (" + err.Error() + ")", nil
	}
	url, missing := HealthCheckURL(svc, r.nodeAddress(ctx, api))
	if missing != "" {
		return missing, nil
	}
	r.setHealthURL(url)
	if err := r.probe()(ctx, url); err != nil {
		return "the health check " + url + " to answer from this host (" + shortError(err) + ")", nil
	}
	return "", nil
}

// shortError drops Go's "Get \"url\": " prefix: the message names the URL
// already.
func shortError(err error) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner.Error()
		}
	}
	return err.Error()
}

func (r *chartsRun) setHealthURL(url string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.healthURL = url
}

// healthCheckLine is the summary's line about the health check: the URL
// that answered, else where it will be (NodePort: a node port, not the
// health-check port itself).
func (r *chartsRun) healthCheckLine() string {
	r.mu.Lock()
	url := r.healthURL
	r.mu.Unlock()
	name := r.instanceName()
	head := fmt.Sprintf("Core instance: CoreInstance %s/%s (Helm release %s); ", InstanceNamespace, name, InstanceRelease)
	show := fmt.Sprintf("`tpctl pipeline endpoints %s` shows the address", r.healthPipeline())
	if url != "" {
		return head + fmt.Sprintf("its health check (TCP %d) answers from this host at %s (%s).", HealthCheckPort, url, show)
	}
	host := r.env.Config.NodeIP
	if host == "" {
		host = "<node address>"
	}
	if DefaultPipelineServiceType(r.env.Config) == v1alpha1.ServiceTypeNodePort {
		return head + fmt.Sprintf("its health check (TCP %d) answers on a node port: http://%s:<node port>%s (%s).", HealthCheckPort, host, HealthCheckPath, show)
	}
	return head + fmt.Sprintf("its health check answers on TCP %d: http://%s%s (%s).", HealthCheckPort, net.JoinHostPort(host, strconv.Itoa(HealthCheckPort)), HealthCheckPath, show)
}

// HealthCheckURLOf is the health-check URL a finished install verified
// ("" when the plan had no charts or the check did not answer).
func HealthCheckURLOf(env *Env) string {
	if env == nil || env.charts == nil {
		return ""
	}
	env.charts.mu.Lock()
	defer env.charts.mu.Unlock()
	return env.charts.healthURL
}
