package ports

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParsePortSpec(t *testing.T) {
	ok := []struct {
		in         string
		proto      Protocol
		port, end  int
		normalised string
	}{
		{"6443/tcp", TCP, 6443, 0, "6443/tcp"},
		{"tcp/6443", TCP, 6443, 0, "6443/tcp"},
		{"8472/UDP", UDP, 8472, 0, "8472/udp"},
		{"Udp/8472", UDP, 8472, 0, "8472/udp"},
		{"51820-51821/udp", UDP, 51820, 51821, "51820-51821/udp"},
		{"udp/51820-51821", UDP, 51820, 51821, "51820-51821/udp"},
		{"5170", TCP, 5170, 0, "5170/tcp"},
		{"2379-2380", TCP, 2379, 2380, "2379-2380/tcp"},
		{" 443/tcp ", TCP, 443, 0, "443/tcp"},
		{"1", TCP, 1, 0, "1/tcp"},
		{"65535/udp", UDP, 65535, 0, "65535/udp"},
		{"00080", TCP, 80, 0, "80/tcp"},
		{"7000-7000/tcp", TCP, 7000, 0, "7000/tcp"},
	}
	for _, tc := range ok {
		proto, port, end, err := ParsePortSpec(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.proto, proto, tc.in)
		assert.Equal(t, tc.port, port, tc.in)
		assert.Equal(t, tc.end, end, tc.in)
		assert.Equal(t, tc.normalised, FormatPortSpec(proto, port, end), tc.in)
	}

	bad := []struct{ in, want string }{
		{"", `port spec "": empty (want PORT[/tcp|udp], e.g. 6443/tcp)`},
		{"0", `port spec "0": 0 is out of range 1-65535`},
		{"65536/tcp", `port spec "65536/tcp": 65536 is out of range 1-65535`},
		{"123456789012345678901234567890", `port spec "123456789012345678901234567890": 123456789012345678901234567890 is out of range 1-65535`},
		{"6443/sctp", `port spec "6443/sctp": no protocol tcp or udp on either side of '/'`},
		{"tcp/udp", `port spec "tcp/udp": "udp" is not a port number (want digits)`},
		{"/tcp", `port spec "/tcp": missing port number`},
		{"+80", `port spec "+80": "+80" is not a port number (want digits)`},
		{"-80", `port spec "-80": missing port number`},
		{"80-/tcp", `port spec "80-/tcp": range end: missing port number`},
		{"90-80/tcp", `port spec "90-80/tcp": range ends at 80, below its start 90`},
		{"80-90-100", `port spec "80-90-100": range end: "90-100" is not a port number (want digits)`},
		{"80 /tcp", `port spec "80 /tcp": "80 " is not a port number (want digits)`},
		{"6443/tcp/udp", `port spec "6443/tcp/udp": no protocol tcp or udp on either side of '/'`},
	}
	seen := map[string]bool{}
	for _, tc := range bad {
		_, _, _, err := ParsePortSpec(tc.in)
		require.Error(t, err, tc.in)
		assert.Equal(t, tc.want, err.Error(), tc.in)
		assert.False(t, seen[tc.want], "duplicate expectation %q", tc.want)
		seen[tc.want] = true
	}
}

// FuzzParsePortSpec checks that accepted specs are in range and read back
// the same after formatting.
func FuzzParsePortSpec(f *testing.F) {
	for _, s := range []string{"6443/tcp", "tcp/6443", "51820-51821/udp", "5170", "0", "65536", "1-65535/UDP", "9-1", "/", "-", "tcp/", "٣/tcp"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		proto, port, end, err := ParsePortSpec(s)
		if err != nil {
			require.Contains(t, err.Error(), "port spec ")
			return
		}
		require.True(t, proto.Valid(), "protocol %q", proto)
		require.GreaterOrEqual(t, port, MinPort)
		require.LessOrEqual(t, port, MaxPort)
		if end != 0 {
			require.Greater(t, end, port)
			require.LessOrEqual(t, end, MaxPort)
		}
		p2, port2, end2, err := ParsePortSpec(FormatPortSpec(proto, port, end))
		require.NoError(t, err)
		require.Equal(t, []any{proto, port, end}, []any{p2, port2, end2})
	})
}
