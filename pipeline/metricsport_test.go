package pipeline

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

func TestMetricsPortNeverABackend(t *testing.T) {
	st := func(proto v1alpha1.Protocol, backend int32) v1alpha1.PortStatus {
		return v1alpha1.PortStatus{Protocol: proto, Backend: backend, Frontend: backend + 100}
	}
	p, ok := MetricsPort(nil)
	assert.True(t, ok)
	assert.Equal(t, int32(2020), p)

	p, _ = MetricsPort([]v1alpha1.PortStatus{st(v1alpha1.ProtocolTCP, 5170)})
	assert.Equal(t, int32(2020), p)

	// TCP 2020 and UDP 2021 are the pipeline's own: neither protocol's backend is used.
	p, _ = MetricsPort([]v1alpha1.PortStatus{st(v1alpha1.ProtocolTCP, 2020), st(v1alpha1.ProtocolUDP, 2021), st(v1alpha1.ProtocolTCP, 2023)})
	assert.Equal(t, int32(2022), p)

	// A frontend equal to the candidate does not matter: frontends are not in the pod.
	p, _ = MetricsPort([]v1alpha1.PortStatus{{Protocol: v1alpha1.ProtocolTCP, Backend: 5170, Frontend: 2020}})
	assert.Equal(t, int32(2020), p)

	var all []v1alpha1.PortStatus
	for b := FirstMetricsPort; b <= MaxPort; b++ {
		all = append(all, st(v1alpha1.ProtocolTCP, b))
	}
	_, ok = MetricsPort(all)
	assert.False(t, ok)
}
