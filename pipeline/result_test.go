package pipeline

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// TestOperatorRoundTrips walks the seed example through the calls the
// operator makes on each reconcile: Claims from the previous status, Assign,
// Group into the new status.
func TestOperatorRoundTrips(t *testing.T) {
	entries := []PortEntry{{Port: TCP(2200), Source: "ports[0]"}}
	reserved := NewPortSet(TCP(2020))

	// Round 1: A exists; B is created a second later asking for the same port.
	var claims []Claim
	claims = append(claims, Claims("a", entries, nil, at(0))...)
	claims = append(claims, Claims("b", entries, nil, at(1))...)
	g := Group(Assign(claims, reserved))
	require.Contains(t, g, "a")
	require.Contains(t, g, "b")
	assert.Equal(t, []v1alpha1.PortStatus{{Protocol: "TCP", Frontend: 2200, Backend: 2200, Since: metav1.NewTime(at(0)), Source: "ports[0]"}}, g["a"].Ports)
	assert.Equal(t, []v1alpha1.PortStatus{{Protocol: "TCP", Frontend: 2201, Backend: 2200, Reassigned: true, Since: metav1.NewTime(at(1)), Source: "ports[0]"}}, g["b"].Ports)
	cond := g["b"].Condition()
	assert.Equal(t, metav1.ConditionTrue, cond.Status)
	assert.Equal(t, v1alpha1.ReasonReassigned, cond.Reason)
	assert.Equal(t, "tcp/2200 is held by pipeline a ports[0]; frontend 2201", cond.Message)
	assert.Equal(t, v1alpha1.ReasonAssigned, g["a"].Condition().Reason)
	assert.Equal(t, "tcp/2201->2200", Summary(g["b"].Ports))

	// Round 2, much later: A is deleted. B's entry is unchanged, so it keeps
	// its age and its frontend.
	claims = Claims("b", entries, g["b"].Ports, at(100))
	require.Equal(t, at(1), claims[0].Since)
	require.Equal(t, int32(2201), claims[0].Previous)
	g2 := Group(Assign(claims, reserved))
	assert.Equal(t, g["b"].Ports, g2["b"].Ports)

	// Round 3: B changes its port to 2020 (the health check's): the entry is
	// new, so its age is now and it searches from 2020 up.
	changed := []PortEntry{{Port: TCP(2020), Source: "ports[0]"}}
	claims = Claims("b", changed, g2["b"].Ports, at(200))
	require.Equal(t, at(200), claims[0].Since)
	require.Zero(t, claims[0].Previous)
	g3 := Group(Assign(claims, reserved))
	assert.Equal(t, []v1alpha1.PortStatus{{Protocol: "TCP", Frontend: 2021, Backend: 2020, Reassigned: true, Since: metav1.NewTime(at(200)), Source: "ports[0]"}}, g3["b"].Ports)
	assert.Equal(t, "tcp/2020 is reserved; frontend 2021", g3["b"].Condition().Message)
}

func TestClaimsKeepAgeAcrossRenamesAndReorders(t *testing.T) {
	prev := []v1alpha1.PortStatus{
		{Protocol: "TCP", Frontend: 5171, Backend: 5170, Since: metav1.NewTime(at(5))},
		{Protocol: "UDP", Frontend: 5170, Backend: 5170, Since: metav1.NewTime(at(6))},
	}
	got := Claims("p", []PortEntry{{Port: UDP(5170), Name: "renamed"}, {Port: TCP(5170)}, {Port: TCP(9)}}, prev, at(50))
	assert.Equal(t, []Claim{
		{Pipeline: "p", Index: 0, Name: "renamed", Protocol: "UDP", Backend: 5170, Since: at(6), Previous: 5170},
		{Pipeline: "p", Index: 1, Protocol: "TCP", Backend: 5170, Since: at(5), Previous: 5171},
		{Pipeline: "p", Index: 2, Protocol: "TCP", Backend: 9, Since: at(50)},
	}, got)
}

func TestConflictsInStatusAndCondition(t *testing.T) {
	claims := append(Claims("a", []PortEntry{{Port: TCP(65535)}}, nil, at(0)),
		Claims("b", []PortEntry{{Port: TCP(80), Source: "ports[0]"}, {Port: TCP(65535), Source: "ports[1]"}}, nil, at(1))...)
	g := Group(Assign(claims, nil))
	require.Contains(t, g, "b")
	assert.Equal(t, []v1alpha1.PortStatus{
		{Protocol: "TCP", Frontend: 80, Backend: 80, Since: metav1.NewTime(at(1)), Source: "ports[0]"},
		{Protocol: "TCP", Frontend: 0, Backend: 65535, Since: metav1.NewTime(at(1)), Source: "ports[1]"},
	}, g["b"].Ports)
	cond := g["b"].Condition()
	assert.Equal(t, metav1.ConditionFalse, cond.Status)
	assert.Equal(t, v1alpha1.ReasonPortsExhausted, cond.Reason)
	assert.Equal(t, "ports[1] no free tcp frontend from 65535 to 65535", cond.Message)
	assert.Equal(t, "tcp/80, tcp/?->65535", Summary(g["b"].Ports))

	var none *Result
	assert.Equal(t, v1alpha1.ReasonNoPorts, none.Condition().Reason)
}

func TestFrontendPorts(t *testing.T) {
	assigned, _ := Assign([]Claim{
		claim("b", 0, UDP(53), 1), claim("a", 0, TCP(80), 1), claim("b", 1, TCP(80), 1), claim("a", 1, TCP(22), 1),
	}, nil)
	assert.Equal(t, []v1alpha1.FrontendPort{
		{Protocol: "TCP", Port: 22, Pipeline: "a", Backend: 22},
		{Protocol: "TCP", Port: 80, Pipeline: "a", Backend: 80},
		{Protocol: "TCP", Port: 81, Pipeline: "b", Backend: 80},
		{Protocol: "UDP", Port: 53, Pipeline: "b", Backend: 53},
	}, FrontendPorts(assigned))
}

func TestStatusSinceSurvivesSerialisation(t *testing.T) {
	// Sub-second ages are cut to seconds in status, as the API server would.
	claims := Claims("a", []PortEntry{{Port: TCP(1)}}, nil, at(3).Add(700*time.Millisecond))
	g := Group(Assign(claims, nil))
	assert.Equal(t, at(3), g["a"].Ports[0].Since.Time.UTC())
}

func TestEntriesFromStatusKeepFrontends(t *testing.T) {
	prev := []v1alpha1.PortStatus{{Protocol: "TCP", Frontend: 2201, Backend: 2200, Name: "web", Reassigned: true, Source: "ports[0]", Since: metav1.NewTime(at(1))}}
	entries := EntriesFromStatus(prev)
	assert.Equal(t, []PortEntry{{Port: TCP(2200), Name: "web", Source: "ports[0]"}}, entries)
	g := Group(Assign(Claims("b", entries, prev, at(50)), nil))
	assert.Equal(t, prev, g["b"].Ports)
}

func TestReserved(t *testing.T) {
	node := PortSet{TCP(6443): {By: "the K3s node"}}
	got := Reserved(&v1alpha1.CoreInstanceSpec{}, node)
	assert.Equal(t, PortSet{TCP(6443): {By: "the K3s node"}, TCP(2020): {By: HealthCheckHolder}}, got)
	assert.Equal(t, PortSet{TCP(6443): {By: "the K3s node"}}, node, "the input is not modified")
	off := false
	assert.Equal(t, node, Reserved(&v1alpha1.CoreInstanceSpec{HealthCheck: v1alpha1.HealthCheckSpec{Enabled: &off}}, node))
	assert.Equal(t, NewPortSet(), Reserved(nil, nil))
}
