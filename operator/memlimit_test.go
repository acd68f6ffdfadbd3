package operator

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
)

func TestCgroupMemoryLimit(t *testing.T) {
	for name, tc := range map[string]struct {
		files map[string]string
		want  int64
		ok    bool
	}{
		"v2 limit":     {map[string]string{"sys/fs/cgroup/memory.max": "268435456\n"}, 268435456, true},
		"v2 unlimited": {map[string]string{"sys/fs/cgroup/memory.max": "max\n"}, 0, false},
		"v1 limit":     {map[string]string{"sys/fs/cgroup/memory/memory.limit_in_bytes": "134217728\n"}, 134217728, true},
		"v1 unlimited": {map[string]string{"sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"}, 0, false},
		"v2 first": {map[string]string{"sys/fs/cgroup/memory.max": "1048576",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "2097152"}, 1048576, true},
		"garbage": {map[string]string{"sys/fs/cgroup/memory.max": "lots"}, 0, false},
		"none":    {map[string]string{}, 0, false},
	} {
		t.Run(name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for p, data := range tc.files {
				fsys[p] = &fstest.MapFile{Data: []byte(data)}
			}
			got, ok := CgroupMemoryLimit(fsys)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, got)
		})
	}
}
