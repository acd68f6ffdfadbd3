package pipeline

import (
	"math/rand/v2"
	"testing"
	"time"
)

// bench10kx3 builds 10,000 pipelines with 3 ports each. Every pipeline asks
// for forward (24224/tcp) and http (9880/tcp), so those two numbers clash
// 9,999 times each and push frontends through long runs of taken numbers;
// the third port is spread over the unprivileged range, TCP or UDP.
func bench10kx3() []Claim {
	rng := rand.New(rand.NewPCG(10000, 3))
	claims := make([]Claim, 0, 30000)
	for i := range 10000 {
		name := "pipeline-" + itoa5(i)
		since := t0.Add(time.Duration(i) * time.Second)
		third := Port{Protocol: "TCP", Number: int32(1024 + rng.IntN(40000))}
		if rng.IntN(2) == 0 {
			third.Protocol = "UDP"
		}
		claims = append(claims,
			Claim{Pipeline: name, Index: 0, Protocol: "TCP", Backend: 24224, Since: since},
			Claim{Pipeline: name, Index: 1, Protocol: "TCP", Backend: 9880, Since: since},
			Claim{Pipeline: name, Index: 2, Protocol: third.Protocol, Backend: third.Number, Since: since},
		)
	}
	return claims
}

func itoa5(i int) string {
	b := []byte("00000")
	for j := 4; j >= 0; j-- {
		b[j] = byte('0' + i%10)
		i /= 10
	}
	return string(b)
}

func benchReserved() PortSet { return NewPortSet(TCP(2020), TCP(6443), TCP(10250), UDP(8472)) }

// BenchmarkAssign10kx3 assigns 10,000 pipelines × 3 ports from scratch (no
// previous frontends: the first reconcile of a restored instance).
func BenchmarkAssign10kx3(b *testing.B) {
	claims := bench10kx3()
	reserved := benchReserved()
	b.ReportAllocs()
	for b.Loop() {
		a, c := Assign(claims, reserved)
		if len(a)+len(c) != len(claims) {
			b.Fatalf("lost claims: %d + %d != %d", len(a), len(c), len(claims))
		}
	}
}

// BenchmarkAssign10kx3Steady is the operator's usual case: every entry has a
// previous frontend and one new pipeline arrives.
func BenchmarkAssign10kx3Steady(b *testing.B) {
	claims := bench10kx3()
	reserved := benchReserved()
	assigned, _ := Assign(claims, reserved)
	prev := make([]Claim, 0, len(assigned)+3)
	for _, a := range assigned {
		c := a.Claim
		c.Previous = a.Frontend
		prev = append(prev, c)
	}
	since := t0.Add(20000 * time.Second)
	prev = append(prev, Claim{Pipeline: "new", Protocol: "TCP", Backend: 24224, Since: since})
	b.ReportAllocs()
	for b.Loop() {
		a, c := Assign(prev, reserved)
		if len(a)+len(c) != len(prev) {
			b.Fatalf("lost claims: %d + %d != %d", len(a), len(c), len(prev))
		}
	}
}
