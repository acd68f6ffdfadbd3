package installer

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRunSummaryLinesInPrintOrder(t *testing.T) {
	s := RunSummary{Node: "node", Access: "access", Charts: []string{"chart 1", "chart 2"}, Log: "log"}
	assert.Equal(t, []string{"node", "access", "chart 1", "chart 2", "log"}, s.Lines(), "no registries line without mirrors")
	s.Registries = "registries"
	assert.Equal(t, []string{"node", "access", "registries", "chart 1", "chart 2", "log"}, s.Lines())
}
