package mountinfo

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	ms, err := Parse([]byte("27 22 0:25 / /mnt/my\\040disk rw,relatime shared:14 - ext4 /dev/sdb1 rw\n" +
		"41 31 0:38 /sub /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n"))
	require.NoError(t, err)
	require.Len(t, ms, 2)
	assert.Equal(t, "/mnt/my disk", ms[0].MountPoint)
	assert.Equal(t, Mount{Root: "/sub", MountPoint: "/sys/fs/cgroup/unified", FSType: "cgroup2", SuperOpts: []string{"rw", "nsdelegate"}}, ms[1])

	_, err = Parse([]byte("garbage line\n"))
	assert.ErrorContains(t, err, "line 1")
}

func TestUnescape(t *testing.T) {
	assert.Equal(t, "/a b/c", Unescape(`/a\040b/c`))
	assert.Equal(t, "/plain", Unescape("/plain"))
	assert.Equal(t, `/bad\09`, Unescape(`/bad\09`), "an incomplete escape stays as it is")
	assert.Equal(t, `/bad\9`, Unescape(`/bad\9`))
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("1 2 3:4 / /a\\040b rw - cgroup cgroup rw,cpu\n"))
	f.Add([]byte("41 31 0:38 /sub /sys/fs/cgroup/unified rw shared:1 - cgroup2 cgroup2 rw,nsdelegate\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := Parse(b)
		if err != nil {
			return
		}
		for _, m := range ms {
			assert.NotContains(t, m.FSType, " ")
		}
	})
}
