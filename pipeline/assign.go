package pipeline

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// Claim is one port entry of one pipeline asking for a frontend in its core
// instance.
type Claim struct {
	// Pipeline is the pipeline's name; names are unique within an instance.
	Pipeline string
	// Index is the entry's position in the pipeline's effective port list.
	Index int
	// Name and Source describe the entry (see PortEntry); they do not
	// influence the assignment.
	Name   string
	Source string
	// Protocol and Backend are the port the pipeline's pods listen on.
	Protocol v1alpha1.Protocol
	Backend  int32
	// Since is when the entry was added or last changed: its age. Ages are
	// compared at one-second resolution, the resolution at which Kubernetes
	// stores timestamps, so a result is the same before and after a status
	// round trip.
	Since time.Time
	// Previous is the frontend the entry held until now, 0 if none.
	Previous int32
}

// Port returns the claim's backend as a Port.
func (c Claim) Port() Port { return Port{Protocol: c.Protocol, Number: c.Backend} }

func (c Claim) describe() string {
	s := fmt.Sprintf("pipeline %s", c.Pipeline)
	if c.Source != "" {
		s += " " + c.Source
	}
	return s
}

// Assignment is the frontend given to a claim.
type Assignment struct {
	Claim
	// Frontend is the port clients use, unique per protocol in the instance.
	Frontend int32

	// Why the frontend is what it is; Message renders it. Kept as plain
	// fields so that Assign allocates nothing per claim.
	kept      bool // Previous was kept
	lost      lostReason
	lostBy    holder // who holds Previous when lost is lostHeld or lostReserved
	contested string // a newer reserved holder of the kept frontend
	// skipped describes the first numbers a search passed over, from the
	// backend up; every number from the backend to the frontend is taken.
	skipped []skip
}

// skip is one number a search passed over, and who holds it.
type skip struct {
	number int32
	by     holder
}

// maxSkipsDescribed bounds the numbers a message names one by one.
const maxSkipsDescribed = 3

type lostReason uint8

const (
	lostNone lostReason = iota
	lostInvalid
	lostReserved
	lostHeld
)

// holder is a claim (pipeline and source) or a reserved port (reserved
// true, by naming the holder when known).
type holder struct {
	pipeline, source string
	reserved         bool
	by               string
}

// taken renders "is held by pipeline a ports[0]", "is reserved" or "is
// taken by Traefik (packaged component)".
func (h holder) taken() string {
	switch {
	case h.reserved && h.by == "":
		return "is reserved"
	case h.reserved:
		return "is taken by " + h.by
	}
	return "is held by " + h.String()
}

func (h holder) String() string {
	if h.source == "" {
		return "pipeline " + h.pipeline
	}
	return "pipeline " + h.pipeline + " " + h.source
}

// Message explains a frontend that differs from the backend or from the
// previous frontend, for status and events ("tcp/2200 is held by pipeline a
// ports[0]; frontend 2201"); it is empty when there is nothing to explain.
func (a Assignment) Message() string {
	var parts []string
	switch a.lost {
	case lostInvalid:
		parts = append(parts, fmt.Sprintf("previous frontend %d is not valid for backend %d", a.Previous, a.Backend))
	case lostReserved:
		parts = append(parts, fmt.Sprintf("previous frontend %d %s", a.Previous, strings.Replace(a.lostBy.taken(), "is ", "is now ", 1)))
	case lostHeld:
		parts = append(parts, fmt.Sprintf("previous frontend %d is held by older %s", a.Previous, a.lostBy))
	}
	switch {
	case a.Frontend == 0: // no frontend (a Conflict in the making)
	case a.kept && a.Frontend != a.Backend:
		parts = append(parts, fmt.Sprintf("%s keeps frontend %d: the frontend of an unchanged port never moves", a.Port(), a.Frontend))
	case !a.kept && a.Frontend != a.Backend:
		parts = append(parts, a.skips()+fmt.Sprintf("; frontend %d", a.Frontend))
	}
	if a.contested != "" {
		parts = append(parts, fmt.Sprintf("frontend %s/%d is also asked for by %s, which came later: it stays with this port",
			strings.ToLower(string(a.Protocol)), a.Frontend, a.contested))
	}
	return strings.Join(parts, "; ")
}

// skips renders the numbers a search passed over: "tcp/2200 is held by
// pipeline a ports[0], 2201 is taken by LoadBalancer Service x/y".
func (a Assignment) skips() string {
	var b strings.Builder
	for i, sk := range a.skipped {
		if i == 0 {
			fmt.Fprintf(&b, "%s %s", Port{Protocol: a.Protocol, Number: sk.number}, sk.by.taken())
		} else {
			fmt.Fprintf(&b, ", %d %s", sk.number, sk.by.taken())
		}
	}
	if more := int(a.Frontend-a.Backend) - len(a.skipped); more > 0 {
		fmt.Fprintf(&b, ", and %d more number(s) up to %d are taken", more, a.Frontend-1)
	}
	return b.String()
}

// Contested reports whether a newer reserved holder (another LoadBalancer
// Service, say) asks for the frontend this entry keeps.
func (a Assignment) Contested() bool { return a.contested != "" }

// Reassigned reports whether the frontend differs from the backend.
func (a Assignment) Reassigned() bool { return a.Frontend != a.Backend }

// Moved reports whether the entry had a frontend before and now has another.
func (a Assignment) Moved() bool { return a.Previous != 0 && a.Previous != a.Frontend }

// ConflictReason says why a claim got no frontend.
type ConflictReason string

const (
	// ConflictExhausted: every number from the backend to 65535 is taken.
	ConflictExhausted ConflictReason = v1alpha1.ReasonPortsExhausted
	// ConflictInvalid: the claim's protocol or backend is out of range.
	ConflictInvalid ConflictReason = "InvalidPort"
	// ConflictDuplicate: the pipeline already claims this protocol and backend.
	ConflictDuplicate ConflictReason = "DuplicateBackend"
)

// Conflict is a claim that got no frontend; its pipeline should report an
// error condition.
type Conflict struct {
	Claim
	Reason  ConflictReason
	Message string
}

func (c Conflict) Error() string { return c.describe() + ": " + c.Message }

// space tracks the frontends of one protocol in pages of 1024 numbers that
// are allocated when first written, so a small instance costs a few pages
// and a crowded one at most 64. Every field means "free" at its zero value:
//
//   - owner(p) is 0 when p is free, ownerReserved when reserved, and i+1 when
//     claim i holds it;
//   - next(p) is a union-find link towards "the lowest free number at or
//     above p": 0 when p is free (a root), otherwise a higher number.
//     MaxPort+1 is never taken: it stands for "none left".
//
// Finding a free frontend thus stays near constant time however crowded the
// range is.
type space struct {
	pages [(MaxPort + 1 + pageSize) / pageSize]*page
}

const (
	pageBits      = 10
	pageSize      = 1 << pageBits
	ownerReserved = int32(-1)
)

type page struct {
	owner [pageSize]int32
	next  [pageSize]int32
}

func (s *space) owner(p int32) int32 {
	if pg := s.pages[p>>pageBits]; pg != nil {
		return pg.owner[p&(pageSize-1)]
	}
	return 0
}

func (s *space) next(p int32) int32 {
	if pg := s.pages[p>>pageBits]; pg != nil {
		return pg.next[p&(pageSize-1)]
	}
	return 0
}

func (s *space) page(p int32) *page {
	pg := s.pages[p>>pageBits]
	if pg == nil {
		pg = &page{}
		s.pages[p>>pageBits] = pg
	}
	return pg
}

func (s *space) take(p, owner int32) {
	pg := s.page(p)
	pg.owner[p&(pageSize-1)] = owner
	pg.next[p&(pageSize-1)] = p + 1
}

// holder returns the index of the claim holding p, or -1.
func (s *space) holder(p int32) int32 {
	if o := s.owner(p); o > 0 {
		return o - 1
	}
	return -1
}

// firstFree returns the lowest free number >= p, or MaxPort+1.
func (s *space) firstFree(p int32) int32 {
	root := p
	for n := s.next(root); n != 0; n = s.next(root) {
		root = n
	}
	for p != root { // path compression: every node on the way is taken
		pg := s.pages[p>>pageBits]
		p, pg.next[p&(pageSize-1)] = pg.next[p&(pageSize-1)], root
	}
	return root
}

// Assign gives every claim of one core instance a frontend port.
//
// Rules (see the package documentation for the reasoning):
//   - frontend (protocol, number) is unique; TCP and UDP are independent;
//   - reserved ports are never given out by a search; each has a Hold naming
//     its holder, which the messages of claims that skip it repeat;
//   - a claim keeps its Previous frontend while that number is still valid for
//     it, not kept by an older claim and not reserved by a holder as old as
//     the claim or older (a holder since always counts as the oldest):
//     unchanged entries never move, and no newer claim or holder can take a
//     frontend away (a newer holder is reported: Assignment.Contested);
//   - every other claim, oldest first (Since, then pipeline name, then index),
//     gets the lowest free number from its backend up: the backend itself, or
//     backend+1, +2, …;
//   - when no number up to 65535 is free, the claim is a Conflict; numbers
//     never wrap around.
//
// The result does not depend on the order of claims; assignments are sorted
// by pipeline name and index. Assign does not modify its arguments.
func Assign(claims []Claim, reserved PortSet) ([]Assignment, []Conflict) {
	var conflicts []Conflict
	order := make([]int32, 0, len(claims))
	for i, c := range claims {
		if !c.Protocol.Valid() || c.Backend < MinPort || c.Backend > MaxPort {
			conflicts = append(conflicts, Conflict{Claim: c, Reason: ConflictInvalid,
				Message: fmt.Sprintf("protocol %q and backend %d: want TCP or UDP and %d–%d", c.Protocol, c.Backend, MinPort, MaxPort)})
			continue
		}
		order = append(order, int32(i))
	}
	slices.SortFunc(order, func(a, b int32) int { return compareAge(&claims[a], &claims[b]) })

	spaces := map[v1alpha1.Protocol]*space{}
	spaceOf := func(p v1alpha1.Protocol) *space {
		s := spaces[p]
		if s == nil {
			s = &space{}
			for port := range reserved {
				if port.Protocol == p && port.Number >= MinPort && port.Number <= MaxPort {
					s.take(port.Number, ownerReserved)
				}
			}
			spaces[p] = s
		}
		return s
	}

	// A pipeline listing the same backend twice is invalid; the younger
	// entry is dropped so that it cannot take a second frontend.
	type backendKey struct {
		pipeline string
		port     Port
	}
	firstOf := make(map[backendKey]int32, len(order))
	kept := order[:0]
	for _, i := range order {
		c := &claims[i]
		k := backendKey{c.Pipeline, c.Port()}
		if j, dup := firstOf[k]; dup {
			conflicts = append(conflicts, Conflict{Claim: *c, Reason: ConflictDuplicate,
				Message: fmt.Sprintf("%s is already claimed by %s", c.Port(), claims[j].describe())})
			continue
		}
		firstOf[k] = i
		kept = append(kept, i)
	}
	order = kept

	results := make([]Assignment, len(claims))
	done := make([]bool, len(claims))
	holderAt := func(s *space, p v1alpha1.Protocol, n int32) holder {
		if o := s.holder(n); o >= 0 {
			return holder{pipeline: claims[o].Pipeline, source: claims[o].Source}
		}
		return holder{reserved: true, by: reserved[Port{Protocol: p, Number: n}].By}
	}
	// Phase 1: unchanged entries keep their frontend, oldest first.
	for _, i := range order {
		c := &claims[i]
		r := &results[i]
		r.Claim = *c
		if c.Previous == 0 {
			continue
		}
		s := spaceOf(c.Protocol)
		switch {
		case c.Previous < c.Backend || c.Previous > MaxPort:
			r.lost = lostInvalid
		case s.owner(c.Previous) == ownerReserved:
			h := reserved[Port{Protocol: c.Protocol, Number: c.Previous}]
			if h.newerThan(c.Since) {
				// The holder came after this entry took the number.
				s.take(c.Previous, i+1)
				r.Frontend, r.kept, r.contested, done[i] = c.Previous, true, h.By, true
				if r.contested == "" {
					r.contested = "a reserved port"
				}
				continue
			}
			r.lost, r.lostBy = lostReserved, holder{reserved: true, by: h.By}
		case s.owner(c.Previous) != 0:
			r.lost, r.lostBy = lostHeld, holderAt(s, c.Protocol, c.Previous)
		default:
			s.take(c.Previous, i+1)
			r.Frontend, r.kept, done[i] = c.Previous, true, true
		}
	}
	// Phase 2: everything else, oldest first, from its backend up.
	for _, i := range order {
		if done[i] {
			continue
		}
		c := &claims[i]
		r := &results[i]
		s := spaceOf(c.Protocol)
		f := s.firstFree(c.Backend)
		if f > MaxPort {
			msg := fmt.Sprintf("no free %s frontend from %d to %d", strings.ToLower(string(c.Protocol)), c.Backend, MaxPort)
			if lost := r.Message(); lost != "" {
				msg = lost + "; " + msg
			}
			conflicts = append(conflicts, Conflict{Claim: *c, Reason: ConflictExhausted, Message: msg})
			continue
		}
		if f != c.Backend {
			n := min(int(f-c.Backend), maxSkipsDescribed)
			r.skipped = make([]skip, n)
			for k := range n {
				num := c.Backend + int32(k)
				r.skipped[k] = skip{number: num, by: holderAt(s, c.Protocol, num)}
			}
		}
		s.take(f, i+1)
		r.Frontend, done[i] = f, true
	}

	out := make([]Assignment, 0, len(order))
	for _, i := range order {
		if results[i].Frontend != 0 {
			out = append(out, results[i])
		}
	}
	slices.SortFunc(out, func(a, b Assignment) int { return compareIdentity(&a.Claim, &b.Claim) })
	slices.SortFunc(conflicts, func(a, b Conflict) int { return compareIdentity(&a.Claim, &b.Claim) })
	return out, conflicts
}

// compareAge orders claims oldest first; the remaining keys make the order
// total so that the result never depends on the input order.
func compareAge(a, b *Claim) int {
	if c := cmp.Compare(a.Since.Unix(), b.Since.Unix()); c != 0 {
		return c
	}
	return compareIdentity(a, b)
}

func compareIdentity(a, b *Claim) int {
	if c := strings.Compare(a.Pipeline, b.Pipeline); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Index, b.Index); c != 0 {
		return c
	}
	if c := strings.Compare(string(a.Protocol), string(b.Protocol)); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Backend, b.Backend); c != 0 {
		return c
	}
	return cmp.Compare(a.Previous, b.Previous)
}
