package pipeline

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

func TestParsePortFlag(t *testing.T) {
	tests := []struct {
		in      string
		want    v1alpha1.PipelinePort
		wantErr string
	}{
		{in: "tcp/5170", want: v1alpha1.PipelinePort{Protocol: "TCP", Port: 5170}},
		{in: "UDP/5170", want: v1alpha1.PipelinePort{Protocol: "UDP", Port: 5170}},
		{in: "5170/udp", want: v1alpha1.PipelinePort{Protocol: "UDP", Port: 5170}},
		{in: "5170", want: v1alpha1.PipelinePort{Protocol: "TCP", Port: 5170}},
		{in: "syslog=udp/5140", want: v1alpha1.PipelinePort{Protocol: "UDP", Port: 5140, Name: "syslog"}},
		{in: "udp-5140=udp/5140", want: v1alpha1.PipelinePort{Protocol: "UDP", Port: 5140, Name: "udp-5140"}},
		{in: "tcp/65535", want: v1alpha1.PipelinePort{Protocol: "TCP", Port: 65535}},
		{in: "tcp/0", wantErr: `port "tcp/0": port "0": want a number from 1 to 65535`},
		{in: "tcp/65536", wantErr: `port "tcp/65536": port "65536": want a number from 1 to 65535`},
		{in: "sctp/80", wantErr: `port "sctp/80": protocol "80": want tcp or udp`},
		{in: "tcp/", wantErr: `port "tcp/": port "": want a number from 1 to 65535`},
		{in: "tcp/ 80", wantErr: `port "tcp/ 80": unexpected space`},
		{in: "Syslog=udp/5140", wantErr: `port "Syslog=udp/5140": name "Syslog": use lowercase letters, digits and single hyphens inside`},
		{in: "=udp/5140", wantErr: `port "=udp/5140": name is empty`},
		{in: "123=udp/5140", wantErr: `port "123=udp/5140": name "123" needs at least one letter`},
		{in: "tcp-80=tcp/81", wantErr: `port "tcp-80=tcp/81": name "tcp-80" is reserved for port tcp/80`},
		{in: "a-very-long-name=tcp/1", wantErr: `port "a-very-long-name=tcp/1": name "a-very-long-name" is longer than 15 characters`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParsePortFlag(tc.in)
			if tc.wantErr != "" {
				require.EqualError(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestFormatPortFlag(t *testing.T) {
	assert.Equal(t, "tcp/5170", FormatPortFlag(v1alpha1.PipelinePort{Port: 5170}))
	assert.Equal(t, "syslog=udp/5140", FormatPortFlag(v1alpha1.PipelinePort{Protocol: "UDP", Port: 5140, Name: "syslog"}))
}

func TestPortSet(t *testing.T) {
	s := NewPortSet(UDP(53), TCP(80), TCP(22))
	s.Add(TCP(80))
	assert.True(t, s.Has(UDP(53)))
	assert.False(t, s.Has(TCP(53)))
	assert.Equal(t, []Port{TCP(22), TCP(80), UDP(53)}, s.Sorted())
	assert.Equal(t, "udp/53", UDP(53).String())
	assert.Equal(t, "tcp-22", DefaultPortName(TCP(22)))
}

func TestPortSetHoldKeepsTheOlderHolder(t *testing.T) {
	s := NewPortSet(TCP(22))
	s.Hold(TCP(22), Hold{By: "sshd"})
	assert.Equal(t, Hold{By: "sshd"}, s[TCP(22)], "a holder of the same age names an unnamed one")
	s.Hold(TCP(22), Hold{By: "later", Since: at(5)})
	assert.Equal(t, Hold{By: "sshd"}, s[TCP(22)], "since always is older than any time")

	s.Hold(TCP(2300), Hold{By: "LoadBalancer Service b/y", Since: at(9)})
	s.Hold(TCP(2300), Hold{By: "LoadBalancer Service a/x", Since: at(3)})
	s.Hold(TCP(2300), Hold{By: "LoadBalancer Service c/z", Since: at(4)})
	assert.Equal(t, Hold{By: "LoadBalancer Service a/x", Since: at(3)}, s[TCP(2300)])

	m := NewPortSet().Merge(s)
	assert.Equal(t, s, m)
	s.Add(TCP(2300))
	assert.Equal(t, "LoadBalancer Service a/x", s[TCP(2300)].By, "Add keeps the holder")
}

func TestHostListenersRoundTrip(t *testing.T) {
	s := FormatHostListeners([]HostListener{
		{Port: UDP(5353), Program: "avahi-daemon"}, {Port: TCP(22), Program: "sshd"}, {Port: TCP(22), Program: "other"},
		{Port: TCP(80), Program: "ng inx,=/"}, {Port: TCP(81), Program: "∆"}, {Port: TCP(0), Program: "bad"},
	})
	assert.Equal(t, "tcp/22=sshd,tcp/80=nginx,tcp/81=unknown,udp/5353=avahi-daemon", s)
	ls, err := ParseHostListeners(s)
	require.NoError(t, err)
	assert.Equal(t, []HostListener{{TCP(22), "sshd"}, {TCP(80), "nginx"}, {TCP(81), "unknown"}, {UDP(5353), "avahi-daemon"}}, ls)

	var many []HostListener
	for i := range MaxHostListeners + 10 {
		many = append(many, HostListener{Port: TCP(int32(1000 + i)), Program: "p"})
	}
	ls, err = ParseHostListeners(FormatHostListeners(many))
	require.NoError(t, err)
	assert.Len(t, ls, MaxHostListeners)

	for _, bad := range []string{"tcp/22", "tcp/22=", "22=sshd", "sctp/22=x", "tcp/70000=x", "tcp/22=a b"} {
		_, err := ParseHostListeners(bad)
		assert.Error(t, err, bad)
	}
	empty, err := ParseHostListeners("")
	assert.NoError(t, err)
	assert.Nil(t, empty)
}

func FuzzParseHostListeners(f *testing.F) {
	for _, s := range []string{"tcp/22=sshd", "tcp/22=sshd,udp/53=dnsmasq", "x", ",", "tcp/1=a,tcp/1=b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ls, err := ParseHostListeners(s)
		if err != nil {
			return
		}
		if len(ls) > MaxHostListeners {
			t.Fatalf("%d entries", len(ls))
		}
		again, err := ParseHostListeners(FormatHostListeners(ls))
		if err != nil {
			t.Fatalf("round trip of %q: %v", s, err)
		}
		if len(again) > len(ls) {
			t.Fatalf("round trip of %q grew", s)
		}
	})
}
