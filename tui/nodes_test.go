package tui

import (
	"errors"
	"fmt"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage/managetest"
)

// clusterNode is a node as its kubelet reports it: Ready or not (with
// K3s's words for a node without its network), an internal address.
func clusterNode(name string, ready bool, ip string, roles ...string) corev1.Node {
	n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}}}
	for _, r := range roles {
		n.Labels["node-role.kubernetes.io/"+r] = "true"
	}
	c := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status"}
	if !ready {
		c = corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady",
			Message: "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"}
	}
	n.Status.Conditions = []corev1.NodeCondition{c}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}, {Type: corev1.NodeHostName, Address: name}}
	return n
}

// pipelinePod is a running pod of pipeline bound to node ("": none yet).
func pipelinePod(pipeline, name, node string) corev1.Pod {
	phase := corev1.PodRunning
	if node == "" {
		phase = corev1.PodPending
	}
	return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1alpha1.LabelPipeline: pipeline}},
		Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: phase}}
}

// withNodes is the sample cluster on two nodes: a server and an agent
// whose network is not up. Pipeline new is a DaemonSet: a pod on each.
func withNodes(t *testing.T) *managetest.Memory {
	t.Helper()
	api := sampleCluster(t)
	api.SetNodes(clusterNode("b-agent", false, "10.0.0.12"), clusterNode("a-server", true, "10.0.0.10", "control-plane", "etcd", "master"))
	api.SetPods(pipelinePod("a", "a-7d9c-x2x", "a-server"), pipelinePod("b", "b-0", "a-server"), pipelinePod("b", "b-1", "b-agent"),
		pipelinePod("core-health", "core-health-5f6-qq", "a-server"), pipelinePod("new", "new-abcde", "a-server"), pipelinePod("new", "new-fghij", "b-agent"))
	return api
}

// openNodes starts the manager and opens the nodes page from the list.
func openNodes(t *testing.T, api *managetest.Memory, o Options, parts ...string) *term {
	t.Helper()
	tm := start(t, api, o)
	waitFor(t, tm, "core-health")
	send(tm, "N")
	waitFor(t, tm, append([]string{"tpctl · Nodes · namespace tp"}, parts...)...)
	return tm
}

func TestNodesScreen(t *testing.T) {
	tm := openNodes(t, withNodes(t), options(), "a-server", "b-agent")
	s := screen(t, tm)
	requireScreen(t, s)
	assert.Contains(t, s, "2 nodes · pipeline pods of namespace tp · read at 00:10:00, again every 5s")
	assert.Regexp(t, `\n  a-server\s+control-plane,etcd,master\s+Ready\s+10\.0\.0\.10\s+4\s+a, b, core-health, new\s*\n`, s)
	assert.Regexp(t, `\n  b-agent\s+agent\s+NotReady\s+10\.0\.0\.12\s+2\s+b, new\s*\n`, s, "the DaemonSet pipeline shows on both nodes")
	assert.Contains(t, s, "    not Ready: KubeletNotReady: container runtime network not ready", "the reason is under the node")
	assert.Contains(t, s, "esc back • r refresh")
}

func TestNodesScreenForbidden(t *testing.T) {
	api := withNodes(t)
	api.Fail(managetest.OpNodes, apierrors.NewForbidden(schema.GroupResource{Resource: "nodes"}, "",
		errors.New(`User "dev" cannot list resource "nodes" in API group "" at the cluster scope`)))
	tm := openNodes(t, api, options(), "You may not list the cluster's nodes")
	s := screen(t, tm)
	requireScreen(t, s)
	assert.Contains(t, s, `nodes is forbidden: User "dev" cannot list resource "nodes"`)
	assert.Contains(t, s, "needs a ClusterRole")
	assert.NotContains(t, s, "a-server")
}

func TestNodesScreenUnreadable(t *testing.T) {
	api := withNodes(t)
	api.Fail(managetest.OpNodes, errors.New(`Get "https://127.0.0.1:6443/api/v1/nodes": dial tcp 127.0.0.1:6443: connect: connection refused`))
	tm := openNodes(t, api, options(), "cannot read the cluster's nodes")
	s := screen(t, tm)
	assert.Contains(t, s, "connection refused")
	assert.Contains(t, s, "tpctl reads them again every 5s (r: now).")
	assert.NotContains(t, s, "You may not", "a failure that is not a refusal is not called one")
}

func TestNodesScreenWithoutThePods(t *testing.T) {
	api := withNodes(t)
	api.Fail(managetest.OpPods, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "",
		errors.New(`User "dev" cannot list resource "pods" in API group "" in the namespace "tp"`)))
	tm := openNodes(t, api, options(), "a-server")
	s := screen(t, tm)
	requireScreen(t, s)
	assert.Regexp(t, `\n  a-server\s+control-plane,etcd,master\s+Ready\s+10\.0\.0\.10\s+\?\s*\n`, s, "the counts are unknown, not zero")
	assert.Contains(t, s, "the pipeline pods per node are unknown: pods is forbidden")
}

// The page reads the nodes again while it is open: a node that joins, a
// node that becomes Ready, a pod that moves, a failed read and the next
// one show without a key.
func TestNodesScreenRefreshesLive(t *testing.T) {
	api := withNodes(t)
	o := options()
	o.NodesInterval = time.Millisecond
	tm := openNodes(t, api, o, "b-agent")

	api.SetNodes(clusterNode("a-server", true, "10.0.0.10", "control-plane", "etcd", "master"),
		clusterNode("b-agent", true, "10.0.0.12"), clusterNode("c-agent", true, "10.0.0.13"))
	api.SetPods(pipelinePod("new", "new-abcde", "a-server"), pipelinePod("new", "new-fghij", "b-agent"), pipelinePod("new", "new-klmno", "c-agent"),
		pipelinePod("b", "b-1", ""))
	waitFor(t, tm, "3 nodes", "1 pipeline pod of namespace tp on no node (not scheduled yet)")

	api.Fail(managetest.OpNodes, errors.New("the server is currently unable to handle the request"))
	waitFor(t, tm, "cannot read the cluster's nodes: the server is currently unable to handle the request")
	api.Fail(managetest.OpNodes, nil)
	api.SetNodes(clusterNode("a-server", true, "10.0.0.10", "control-plane", "etcd", "master"))
	waitFor(t, tm, "1 node ·")

	s := screen(t, tm)
	assert.NotContains(t, s, "cannot read", "a read that succeeds clears the failure")
	assert.Contains(t, s, "3 pipeline pods of namespace tp on no node", "pods of the nodes that left are on none")
}

// A failed read keeps the nodes read before on screen, under the failure.
func TestNodesKeepTheLastListOnAFailedRead(t *testing.T) {
	api := withNodes(t)
	m, cmd := press(t, loaded(t, api), "N")
	require.Equal(t, viewNodes, m.view)
	m = feed(t, m, cmd())
	api.Fail(managetest.OpNodes, errors.New("connection reset by peer"))
	m, cmd = press(t, m, "r")
	m = feed(t, m, cmd())
	s := m.View().Content
	assert.Contains(t, s, "a-server")
	assert.Contains(t, s, "cannot read the cluster's nodes: connection reset by peer")
	assert.Contains(t, s, "read at 00:10:00", "the list says when it was read")
}

func TestNodesPageNavigation(t *testing.T) {
	api := withNodes(t)
	m := loaded(t, api)
	m = feed(t, m, keyMsg("?"))
	assert.Regexp(t, `N\s+nodes`, m.View().Content, "the list's keys name the page")
	m = feed(t, m, keyMsg("?"))

	m, cmd := press(t, m, "N")
	require.Equal(t, viewNodes, m.view)
	assert.Contains(t, m.View().Content, "Reading the cluster's nodes…")
	m = feed(t, m, cmd())
	assert.Contains(t, m.View().Content, "a-server")
	m = feed(t, m, keyMsg("esc"))
	assert.Equal(t, viewList, m.view)
	assert.Nil(t, m.nodes, "a closed page reads no more")

	// From the core instances, where the key is shown, esc goes back there.
	m = feed(t, m, keyMsg("i"))
	require.Equal(t, viewInstances, m.view)
	assert.Contains(t, m.View().Content, "N nodes")
	m, cmd = press(t, m, "N")
	require.Equal(t, viewNodes, m.view)
	m = feed(t, m, cmd(), keyMsg("esc"))
	assert.Equal(t, viewInstances, m.view)
}

// One read at a time: a tick or an answer of a closed page, or of a read
// that a newer one replaced, asks for nothing.
func TestNodesReadsDoNotMultiply(t *testing.T) {
	api := withNodes(t)
	o := options()
	o.NodesInterval = time.Millisecond // the ticks are run here
	m := feed(t, New(t.Context(), api, o), tea.WindowSizeMsg{Width: screenW, Height: screenH})
	m, cmd := press(t, m, "N")
	first := cmd().(nodesMsg)
	next, tick := m.Update(first)
	m = next.(Model)
	require.NotNil(t, tick, "an answer asks for the next read")
	assert.Equal(t, nodesTickMsg{gen: first.gen, seq: first.seq}, tick())

	// r reads now; the tick already waiting is then stale.
	m, cmd = press(t, m, "r")
	second := cmd().(nodesMsg)
	next, again := m.Update(nodesTickMsg{gen: first.gen, seq: first.seq})
	m = next.(Model)
	assert.Nil(t, again, "the stale tick reads nothing")
	next, tick = m.Update(second)
	m = next.(Model)
	require.NotNil(t, tick)

	// An older answer arriving late changes nothing and asks for nothing.
	api.SetNodes()
	next, late := m.Update(nodesMsg{gen: first.gen, seq: first.seq})
	m = next.(Model)
	assert.Nil(t, late)
	assert.Contains(t, m.View().Content, "a-server")

	// Once the page is closed, its ticks and answers are dropped.
	m = feed(t, m, keyMsg("esc"))
	for _, msg := range []tea.Msg{nodesTickMsg{gen: second.gen, seq: second.seq}, second} {
		next, cmd := m.Update(msg)
		assert.Nil(t, cmd)
		assert.Equal(t, viewList, next.(Model).view)
	}

	// Nor does a page opened later take the old page's messages.
	m, _ = press(t, m, "N")
	next, cmd = m.Update(nodesTickMsg{gen: second.gen, seq: 1})
	assert.Nil(t, cmd)
	m = next.(Model)
	next, _ = m.Update(second)
	assert.Contains(t, next.(Model).View().Content, "Reading the cluster's nodes…")
}

func TestNodesPageWithoutNodes(t *testing.T) {
	api := sampleCluster(t)
	api.SetPods(pipelinePod("a", "a-1", ""))
	m, cmd := press(t, loaded(t, api), "N")
	m = feed(t, m, cmd())
	s := m.View().Content
	assert.Contains(t, s, "0 nodes")
	assert.Contains(t, s, "The cluster has no nodes: no pod can run.")
	assert.Contains(t, s, "1 pipeline pod of namespace tp on no node")
}

func TestNodesPageScrolls(t *testing.T) {
	api := sampleCluster(t)
	var nodes []corev1.Node
	for i := range 40 {
		nodes = append(nodes, clusterNode(fmt.Sprintf("node-%02d", i), true, fmt.Sprintf("10.0.1.%d", i)))
	}
	api.SetNodes(nodes...)
	m, cmd := press(t, loaded(t, api), "N")
	m = feed(t, m, cmd())
	s := m.View().Content
	assert.Contains(t, s, "node-00")
	assert.NotContains(t, s, "node-39")
	m = feed(t, m, keyMsg("G"))
	s = m.View().Content
	assert.Contains(t, s, "node-39", "the last node is on screen")
	assert.NotContains(t, s, "node-00")
	assert.Contains(t, s, "NAME", "the header stays")
	m = feed(t, m, keyMsg("g"), keyMsg("down"))
	s = m.View().Content
	assert.Contains(t, s, "node-01")
	assert.NotContains(t, s, "node-00")
}
