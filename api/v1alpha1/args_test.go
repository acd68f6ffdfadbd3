package v1alpha1

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestEffectiveArgs(t *testing.T) {
	inst := &CoreInstanceSpec{PipelineDefaults: PipelineDefaults{Args: []string{"--http", ":2020"}}}
	own := PipelineSpec{Args: []string{"-c", "/x.yaml"}}
	none := PipelineSpec{}

	assert.Equal(t, []string{"-c", "/x.yaml"}, own.EffectiveArgs(inst), "the pipeline's own args win")
	assert.Equal(t, []string{"--http", ":2020"}, none.EffectiveArgs(inst), "the instance default applies")
	assert.Nil(t, none.EffectiveArgs(&CoreInstanceSpec{}), "no args anywhere: the operator default")
	assert.Nil(t, none.EffectiveArgs(nil))
}
