package main

import (
	"testing"

	"github.com/stretchr/testify/assert"

	bundle "github.com/tpctl/tpctl/bundle"
)

func TestNoK3sWarning(t *testing.T) {
	k3s := bundle.Requirement{Kind: bundle.KindK3sBinary, Arch: "amd64"}
	chart := bundle.Requirement{Kind: bundle.KindChart, Name: bundle.ChartOperator}

	assert.Contains(t, noK3sWarning(bundle.Description{Missing: []bundle.Missing{{Requirement: k3s, Reason: "not listed"}}}),
		"NO K3S PAYLOAD")
	assert.Empty(t, noK3sWarning(bundle.Description{Missing: []bundle.Missing{{Requirement: chart, Reason: "not listed"}}}),
		"a payload that carries K3s but lacks a chart is not announced as K3s-less")
	assert.Empty(t, noK3sWarning(bundle.Description{Complete: true}))
}
