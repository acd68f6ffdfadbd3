package pipeline

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// instanceSim plays the operator's part: it keeps every pipeline's effective
// ports and last status, and reassigns after each change the way the
// CoreInstance reconciler does (Claims → Assign → Group).
type instanceSim struct {
	rng       *rand.Rand
	now       time.Time
	pipelines map[string][]PortEntry
	status    map[string][]v1alpha1.PortStatus
	reserved  PortSet
	nextID    int
	pool      []Port
}

func (s *instanceSim) randomPort() Port { return s.pool[s.rng.IntN(len(s.pool))] }

func (s *instanceSim) randomEntries(n int) []PortEntry {
	seen := map[Port]bool{}
	var out []PortEntry
	for len(out) < n {
		p := s.randomPort()
		if seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, PortEntry{Port: p, Source: fmt.Sprintf("ports[%d]", len(out))})
	}
	return out
}

func (s *instanceSim) names() []string {
	out := make([]string, 0, len(s.pipelines))
	for n := range s.pipelines {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// step applies one random change and returns the entries it touched
// ("pipeline port" keys) so the invariants know which entries are unchanged.
func (s *instanceSim) step() (touched map[string]bool, reservedChanged bool) {
	touched = map[string]bool{}
	names := s.names()
	switch op := s.rng.IntN(10); {
	case op < 4 || len(names) == 0: // create
		name := fmt.Sprintf("p%03d", s.nextID)
		s.nextID++
		s.pipelines[name] = s.randomEntries(1 + s.rng.IntN(3))
		for _, e := range s.pipelines[name] {
			touched[name+" "+e.Port.String()] = true
		}
	case op < 7: // update: change, add or remove one entry
		name := names[s.rng.IntN(len(names))]
		entries := slices.Clone(s.pipelines[name])
		switch {
		case len(entries) > 0 && s.rng.IntN(3) == 0:
			i := s.rng.IntN(len(entries))
			entries = slices.Delete(entries, i, i+1)
		default:
			p := s.randomPort()
			if slices.ContainsFunc(entries, func(e PortEntry) bool { return e.Port == p }) {
				return touched, false // would be a duplicate backend: rejected by validation
			}
			if len(entries) > 0 && s.rng.IntN(2) == 0 {
				i := s.rng.IntN(len(entries))
				entries[i].Port = p
			} else {
				entries = append(entries, PortEntry{Port: p})
			}
			touched[name+" "+p.String()] = true
		}
		s.pipelines[name] = entries
	case op < 9: // delete
		name := names[s.rng.IntN(len(names))]
		delete(s.pipelines, name)
		delete(s.status, name)
	default: // the node or the health check reserves another port
		s.reserved.Add(s.randomPort())
		reservedChanged = true
	}
	if s.rng.IntN(4) != 0 { // sometimes several changes land within one second
		s.now = s.now.Add(time.Second)
	}
	return touched, reservedChanged
}

func (s *instanceSim) claims() []Claim {
	var out []Claim
	for _, name := range s.names() {
		out = append(out, Claims(name, s.pipelines[name], s.status[name], s.now)...)
	}
	return out
}

func TestAssignPropertiesUnderRandomChanges(t *testing.T) {
	pools := map[string][]Port{
		"crowded":      {TCP(2200), TCP(2201), TCP(2202), TCP(2203), UDP(2200), UDP(2201), TCP(5170), UDP(5170)},
		"top of range": {TCP(65530), TCP(65532), TCP(65533), TCP(65534), TCP(65535), UDP(65535)},
		"mixed":        {TCP(24224), TCP(9880), TCP(5170), UDP(5170), UDP(5140), TCP(4318), TCP(2020), TCP(2021), UDP(8125)},
	}
	for poolName, pool := range pools {
		for seed := uint64(1); seed <= 20; seed++ {
			t.Run(fmt.Sprintf("%s/seed=%d", poolName, seed), func(t *testing.T) {
				sim := &instanceSim{
					rng: rand.New(rand.NewPCG(seed, 42)), now: t0,
					pipelines: map[string][]PortEntry{}, status: map[string][]v1alpha1.PortStatus{},
					reserved: NewPortSet(TCP(2020)), pool: pool,
				}
				for stepNo := 0; stepNo < 150; stepNo++ {
					before := snapshot(sim.status)
					touched, reservedChanged := sim.step()
					claims := sim.claims()
					assigned, conflicts := Assign(claims, sim.reserved)
					checkInvariants(t, stepNo, sim, claims, assigned, conflicts, before, touched, reservedChanged)
					groups := Group(assigned, conflicts)
					sim.status = map[string][]v1alpha1.PortStatus{}
					for name := range sim.pipelines {
						if g := groups[name]; g != nil {
							sim.status[name] = g.Ports
						}
					}
					if t.Failed() {
						return
					}
				}
			})
		}
	}
}

func snapshot(status map[string][]v1alpha1.PortStatus) map[string]int32 {
	out := map[string]int32{}
	for name, ports := range status {
		for _, p := range ports {
			out[name+" "+Port{Protocol: p.Protocol, Number: p.Backend}.String()] = p.Frontend
		}
	}
	return out
}

func checkInvariants(t *testing.T, step int, sim *instanceSim, claims []Claim, assigned []Assignment,
	conflicts []Conflict, before map[string]int32, touched map[string]bool, reservedChanged bool) {
	t.Helper()
	require.Equal(t, len(claims), len(assigned)+len(conflicts), "step %d: every claim is assigned or in conflict", step)

	held := map[Port]Assignment{}
	for _, a := range assigned {
		f := Port{Protocol: a.Protocol, Number: a.Frontend}
		if other, dup := held[f]; dup {
			t.Errorf("step %d: frontend %s given to %s and %s", step, f, other.describe(), a.describe())
		}
		held[f] = a
		if a.Frontend < a.Backend || a.Frontend > MaxPort {
			t.Errorf("step %d: %s: frontend %d outside [backend %d, %d]", step, a.describe(), a.Frontend, a.Backend, MaxPort)
		}
		if sim.reserved.Has(f) {
			t.Errorf("step %d: %s got reserved frontend %s", step, a.describe(), f)
		}
		// Backend unchanged: the claim's backend is the entry's port.
		entry := sim.pipelines[a.Pipeline][a.Index]
		if entry.Port != a.Port() {
			t.Errorf("step %d: %s: backend %s, entry says %s", step, a.describe(), a.Port(), entry.Port)
		}
	}
	for _, a := range assigned {
		key := a.Pipeline + " " + a.Port().String()
		prev, existed := before[key]
		unchanged := existed && !touched[key] && prev != 0
		if unchanged && a.Frontend != prev {
			prevPort := Port{Protocol: a.Protocol, Number: prev}
			if !(reservedChanged && sim.reserved.Has(prevPort)) {
				t.Errorf("step %d: unchanged %s moved from %d to %d", step, key, prev, a.Frontend)
			}
		}
		if !unchanged || a.Frontend == prev {
			// A searching claim got the lowest free number: everything from the
			// backend up to its frontend is held by another claim or reserved.
			if !unchanged {
				for n := a.Backend; n < a.Frontend; n++ {
					p := Port{Protocol: a.Protocol, Number: n}
					if _, ok := held[p]; !ok && !sim.reserved.Has(p) {
						t.Errorf("step %d: %s skipped free %s to take %d", step, key, p, a.Frontend)
						break
					}
				}
			}
		}
	}
	for _, c := range conflicts {
		require.Equal(t, ConflictExhausted, c.Reason, "step %d: %s", step, c.Error())
		for n := c.Backend; n <= MaxPort; n++ {
			p := Port{Protocol: c.Protocol, Number: n}
			if _, ok := held[p]; !ok && !sim.reserved.Has(p) {
				t.Errorf("step %d: %s in conflict while %s is free (wrap-around or miss)", step, c.describe(), p)
				break
			}
		}
	}
	// Deterministic: reversing the claims changes nothing.
	rev := slices.Clone(claims)
	slices.Reverse(rev)
	a2, c2 := Assign(rev, sim.reserved)
	require.Equal(t, assigned, a2, "step %d: result depends on claim order", step)
	require.Equal(t, conflicts, c2, "step %d: result depends on claim order", step)
}
