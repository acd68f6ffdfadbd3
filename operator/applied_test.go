package operator

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestAppliedMemo(t *testing.T) {
	var m appliedMemo
	_, ok := m.get("Service/ns/p")
	assert.False(t, ok, "the zero value is empty and usable")
	m.put("Service/ns/p", appliedState{hash: [32]byte{'h'}, resourceVersion: "1"})
	m.put("ConfigMap/ns/p-config", appliedState{hash: [32]byte{'c'}, resourceVersion: "2"})
	m.put("Service/ns/other", appliedState{hash: [32]byte{'o'}, resourceVersion: "3"})
	s, ok := m.get("Service/ns/p")
	assert.True(t, ok)
	assert.Equal(t, appliedState{hash: [32]byte{'h'}, resourceVersion: "1"}, s)

	m.forget("ns", "p")
	_, ok = m.get("Service/ns/p")
	assert.False(t, ok)
	_, ok = m.get("ConfigMap/ns/p-config")
	assert.False(t, ok, "the pipeline's ConfigMap is forgotten too")
	_, ok = m.get("Service/ns/other")
	assert.True(t, ok, "other pipelines are kept")
}
