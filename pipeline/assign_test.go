package pipeline

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func claim(pl string, idx int, p Port, since int) Claim {
	return Claim{Pipeline: pl, Index: idx, Protocol: p.Protocol, Backend: p.Number, Since: at(since)}
}

func kept(c Claim, previous int32) Claim { c.Previous = previous; return c }

// frontends maps "pipeline/index" to the assigned frontend.
func frontends(as []Assignment) map[string]int32 {
	out := map[string]int32{}
	for _, a := range as {
		out[a.Pipeline+"/"+strconv.Itoa(a.Index)] = a.Frontend
	}
	return out
}

func TestAssignSeedExamples(t *testing.T) {
	tests := []struct {
		name      string
		claims    []Claim
		reserved  PortSet
		want      map[string]int32
		conflicts int
	}{
		{
			name:   "A has TCP 2200, B asks TCP 2200: B frontend 2201 backend 2200",
			claims: []Claim{claim("a", 0, TCP(2200), 1), claim("b", 0, TCP(2200), 2)},
			want:   map[string]int32{"a/0": 2200, "b/0": 2201},
		},
		{
			name:     "2201 taken too: B gets 2202",
			claims:   []Claim{claim("a", 0, TCP(2200), 1), claim("c", 0, TCP(2201), 2), claim("b", 0, TCP(2200), 3)},
			want:     map[string]int32{"a/0": 2200, "c/0": 2201, "b/0": 2202},
			reserved: NewPortSet(),
		},
		{
			name:   "TCP 1600 and UDP 1600 share the number",
			claims: []Claim{claim("a", 0, TCP(1600), 1), claim("b", 0, UDP(1600), 2)},
			want:   map[string]int32{"a/0": 1600, "b/0": 1600},
		},
		{
			name:   "one pipeline with TCP 1850 and TCP 1851",
			claims: []Claim{claim("c", 0, TCP(1850), 1), claim("c", 1, TCP(1851), 1)},
			want:   map[string]int32{"c/0": 1850, "c/1": 1851},
		},
		{
			name:      "one pipeline with TCP 1850 twice: the second is a conflict",
			claims:    []Claim{claim("c", 0, TCP(1850), 1), claim("c", 1, TCP(1850), 1)},
			want:      map[string]int32{"c/0": 1850},
			conflicts: 1,
		},
		{
			name:     "health check 2020 is reserved",
			claims:   []Claim{claim("a", 0, TCP(2020), 1)},
			reserved: NewPortSet(TCP(v1alpha1.DefaultHealthCheckPort)),
			want:     map[string]int32{"a/0": 2021},
		},
		{
			name:     "reserved UDP does not block TCP",
			claims:   []Claim{claim("a", 0, TCP(2020), 1)},
			reserved: NewPortSet(UDP(2020)),
			want:     map[string]int32{"a/0": 2020},
		},
		{
			name:     "node ports count as held by the oldest component",
			claims:   []Claim{claim("old", 0, TCP(6443), 0), claim("old", 1, TCP(10250), 0)},
			reserved: NewPortSet(TCP(6443), TCP(6444), TCP(10250)),
			want:     map[string]int32{"old/0": 6445, "old/1": 10251},
		},
		{
			name:   "age decides, not input order",
			claims: []Claim{claim("b", 0, TCP(2200), 2), claim("a", 0, TCP(2200), 5)},
			want:   map[string]int32{"b/0": 2200, "a/0": 2201},
		},
		{
			name:   "same age: pipeline name breaks the tie",
			claims: []Claim{claim("zeta", 0, TCP(80), 1), claim("alpha", 0, TCP(80), 1)},
			want:   map[string]int32{"alpha/0": 80, "zeta/0": 81},
		},
		{
			name:   "ages compare at one-second resolution",
			claims: []Claim{{Pipeline: "zeta", Protocol: "TCP", Backend: 80, Since: t0}, {Pipeline: "alpha", Protocol: "TCP", Backend: 80, Since: t0.Add(900 * time.Millisecond)}},
			want:   map[string]int32{"alpha/0": 80, "zeta/0": 81},
		},
		{
			name:   "changed entry is the newest: it moves, the unchanged one stays",
			claims: []Claim{kept(claim("a", 0, TCP(3000), 1), 3000), claim("b", 0, TCP(3000), 9)},
			want:   map[string]int32{"a/0": 3000, "b/0": 3001},
		},
		{
			name: "unchanged entry keeps a reassigned frontend after the holder leaves",
			// a (2200) was deleted; b had been pushed to 2201 and is unchanged.
			claims: []Claim{kept(claim("b", 0, TCP(2200), 2), 2201)},
			want:   map[string]int32{"b/0": 2201},
		},
		{
			name: "an older entry that must move skips frontends held by newer unchanged entries",
			// a held 2200, which has become reserved; b (newer, unchanged) holds 2201.
			claims:   []Claim{kept(claim("a", 0, TCP(2200), 1), 2200), kept(claim("b", 0, TCP(2201), 2), 2201)},
			reserved: NewPortSet(TCP(2200)),
			want:     map[string]int32{"a/0": 2202, "b/0": 2201},
		},
		{
			name:   "two claims that say they held the same frontend: the older keeps it",
			claims: []Claim{kept(claim("b", 0, TCP(4000), 2), 4000), kept(claim("a", 0, TCP(4000), 1), 4000)},
			want:   map[string]int32{"a/0": 4000, "b/0": 4001},
		},
		{
			name:   "a previous frontend below the backend is not kept",
			claims: []Claim{kept(claim("a", 0, TCP(4000), 1), 3999)},
			want:   map[string]int32{"a/0": 4000},
		},
		{
			name:   "a new claim never takes a kept frontend even when older",
			claims: []Claim{claim("old", 0, TCP(5000), 0), kept(claim("new", 0, TCP(5000), 7), 5000)},
			want:   map[string]int32{"new/0": 5000, "old/0": 5001},
		},
		{
			name:      "past 65535: conflict, never wrap-around",
			claims:    []Claim{claim("a", 0, TCP(65535), 1), claim("b", 0, TCP(65535), 2)},
			want:      map[string]int32{"a/0": 65535},
			conflicts: 1,
		},
		{
			name:      "reserved 65535 leaves no room",
			claims:    []Claim{claim("a", 0, UDP(65534), 1)},
			reserved:  NewPortSet(UDP(65534), UDP(65535)),
			want:      map[string]int32{},
			conflicts: 1,
		},
		{
			name:      "invalid protocol and backend are conflicts",
			claims:    []Claim{claim("a", 0, Port{Protocol: "SCTP", Number: 80}, 1), claim("a", 1, TCP(0), 1), claim("a", 2, TCP(70000), 1)},
			want:      map[string]int32{},
			conflicts: 3,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, conflicts := Assign(tc.claims, tc.reserved)
			assert.Equal(t, tc.want, frontends(got))
			assert.Len(t, conflicts, tc.conflicts)
			for _, a := range got {
				assert.GreaterOrEqual(t, a.Frontend, a.Backend, "frontend below backend: %+v", a)
				assert.Equal(t, a.Frontend != a.Backend, a.Reassigned())
			}
		})
	}
}

func TestAssignMessagesExplainDecisions(t *testing.T) {
	a := claim("a", 0, TCP(2200), 1)
	a.Source = "ports[0]"
	got, _ := Assign([]Claim{a, claim("b", 0, TCP(2200), 2)}, nil)
	require.Len(t, got, 2)
	assert.Empty(t, got[0].Message())
	assert.Equal(t, "tcp/2200 is held by pipeline a ports[0]; frontend 2201", got[1].Message())

	got, _ = Assign([]Claim{claim("a", 0, TCP(2020), 1)}, NewPortSet(TCP(2020)))
	require.Len(t, got, 1)
	assert.Equal(t, "tcp/2020 is reserved; frontend 2021", got[0].Message())

	got, _ = Assign([]Claim{kept(claim("a", 0, TCP(2200), 1), 2200)}, NewPortSet(TCP(2200)))
	require.Len(t, got, 1)
	assert.True(t, got[0].Moved())
	assert.Equal(t, "previous frontend 2200 is now reserved; tcp/2200 is reserved; frontend 2201", got[0].Message())

	got, _ = Assign([]Claim{kept(claim("b", 0, TCP(2200), 1), 2201)}, nil)
	require.Len(t, got, 1)
	assert.False(t, got[0].Moved())
	assert.Contains(t, got[0].Message(), "keeps frontend 2201")

	_, conflicts := Assign([]Claim{claim("a", 0, TCP(65535), 1), claim("b", 0, TCP(65535), 2)}, nil)
	require.Len(t, conflicts, 1)
	assert.Equal(t, ConflictExhausted, conflicts[0].Reason)
	assert.Equal(t, "pipeline b: no free tcp frontend from 65535 to 65535", conflicts[0].Error())
}

func TestAssignDoesNotModifyInputs(t *testing.T) {
	claims := []Claim{claim("b", 0, TCP(1), 2), claim("a", 0, TCP(1), 1)}
	before := append([]Claim(nil), claims...)
	reserved := NewPortSet(TCP(2))
	Assign(claims, reserved)
	assert.Equal(t, before, claims)
	assert.Equal(t, NewPortSet(TCP(2)), reserved)
}

func TestAssignIsIndependentOfInputOrder(t *testing.T) {
	claims := []Claim{
		claim("a", 0, TCP(100), 3), claim("b", 0, TCP(100), 3), claim("c", 0, TCP(100), 1),
		claim("c", 1, UDP(100), 1), kept(claim("d", 0, TCP(101), 0), 101), claim("e", 0, TCP(65535), 0),
		claim("f", 0, TCP(65535), 4),
	}
	wantA, wantC := Assign(claims, NewPortSet(TCP(102)))
	for i := range len(claims) {
		rotated := append(append([]Claim(nil), claims[i:]...), claims[:i]...)
		gotA, gotC := Assign(rotated, NewPortSet(TCP(102)))
		assert.Equal(t, wantA, gotA)
		assert.Equal(t, wantC, gotC)
	}
}

func TestAssignNamesEverySkippedHolder(t *testing.T) {
	a := claim("a", 0, TCP(2200), 1)
	a.Source = "ports[0]"
	reserved := PortSet{TCP(2201): {By: "LoadBalancer Service other/x"}, TCP(2202): {}, TCP(2203): {By: "Traefik"}}
	got, _ := Assign([]Claim{a, claim("b", 0, TCP(2200), 2)}, reserved)
	require.Len(t, got, 2)
	assert.Equal(t, int32(2204), got[1].Frontend)
	assert.Equal(t, "tcp/2200 is held by pipeline a ports[0], 2201 is taken by LoadBalancer Service other/x, 2202 is reserved, "+
		"and 1 more number(s) up to 2203 are taken; frontend 2204", got[1].Message())

	got, _ = Assign([]Claim{claim("a", 0, TCP(80), 1)}, PortSet{TCP(80): {By: "Traefik (packaged component)"}})
	require.Len(t, got, 1)
	assert.Equal(t, "tcp/80 is taken by Traefik (packaged component); frontend 81", got[0].Message())
}

func TestAssignReservedHolderAgainstKeptFrontend(t *testing.T) {
	// A LoadBalancer Service that appeared after the entry took 2300 does
	// not move it: older components never move. The entry says so.
	newer := PortSet{TCP(2300): {By: "LoadBalancer Service other/x", Since: at(10)}}
	got, conflicts := Assign([]Claim{kept(claim("a", 0, TCP(2300), 5), 2300), claim("b", 0, TCP(2300), 20)}, newer)
	require.Empty(t, conflicts)
	require.Len(t, got, 2)
	assert.Equal(t, map[string]int32{"a/0": 2300, "b/0": 2301}, frontends(got))
	assert.True(t, got[0].Contested())
	assert.False(t, got[0].Moved())
	assert.Contains(t, got[0].Message(), "frontend tcp/2300 is also asked for by LoadBalancer Service other/x, which came later")
	cond := (&Result{Assigned: got[:1]}).Condition()
	assert.Equal(t, v1alpha1.ReasonAssigned, cond.Reason)
	assert.Contains(t, cond.Message, "LoadBalancer Service other/x")

	// One that held 2300 before the entry took it wins: the entry moves
	// and says why.
	older := PortSet{TCP(2300): {By: "LoadBalancer Service other/x", Since: at(1)}}
	got, _ = Assign([]Claim{kept(claim("a", 0, TCP(2300), 5), 2300)}, older)
	require.Len(t, got, 1)
	assert.Equal(t, int32(2301), got[0].Frontend)
	assert.Equal(t, "previous frontend 2300 is now taken by LoadBalancer Service other/x; "+
		"tcp/2300 is taken by LoadBalancer Service other/x; frontend 2301", got[0].Message())
}
