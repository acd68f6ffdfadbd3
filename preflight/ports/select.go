package ports

import (
	"fmt"
	"sort"
	"strings"
)

// Condition keys with a meaning in Select itself.
const (
	CondCNIFlannel = "cni=flannel"
	CondCNICilium  = "cni=cilium"
)

// Selection chooses which catalog rows apply to a host.
type Selection struct {
	// Tables names the tables to use; empty means DefaultTables (plus
	// kubernetes-cilium when cni=cilium is enabled).
	Tables []string
	// Conditions enables condition keys ("cni=cilium", "es-metrics", …). A
	// row applies when its condition is empty or enabled here. When no
	// "cni=…" key is enabled, cni=flannel is (flannel is K3s's default CNI).
	Conditions map[string]bool
	// Extra rows always apply, after the tables' rows: the frontend ports of
	// configured pipelines (see PipelineRows).
	Extra []Row
}

// Select returns the rows that apply: rows of the selected tables whose
// condition is empty or enabled, then sel.Extra.
//
// Rows with the same port, range and protocol are merged into one (so every
// key, and every "Port-<Key>" result, appears once), at the position of the
// first of them. The merged row keeps the first row's port, range and
// protocol; Component, Table, Purpose and Source list the distinct values of
// all merged rows joined with ", " (Purpose and Source with "; "); Binding is
// host if any merged row binds to the host (the stricter check); Condition is
// empty if any merged row is unconditional, otherwise the distinct conditions
// joined with ", ". Rows that share a port but differ in range or protocol
// stay apart.
func Select(all []Table, sel Selection) ([]Row, error) {
	conds := effectiveConditions(sel.Conditions)
	names := sel.Tables
	if len(names) == 0 {
		names = DefaultTables()
		if conds[CondCNICilium] {
			names = append(names, TableKubernetesCilium)
		}
	}
	tables, err := Pick(all, names)
	if err != nil {
		return nil, err
	}
	var rows []Row
	for _, t := range tables {
		for _, r := range t.Rows {
			if r.Condition == "" || conds[r.Condition] {
				if r.Table == "" {
					r.Table = t.Name
				}
				rows = append(rows, r)
			}
		}
	}
	for i, r := range sel.Extra {
		if errs := validateRow(r); len(errs) > 0 {
			return nil, fmt.Errorf("extra port row %d (%s): %s: %s", i, r.Spec(), errs[0].field, errs[0].msg)
		}
		rows = append(rows, r)
	}
	return Dedupe(rows), nil
}

// Pick returns the named tables from all, in the order named, each once. An
// unknown name is an error that lists the known names.
func Pick(all []Table, names []string) ([]Table, error) {
	byName := make(map[string]int, len(all))
	for i, t := range all {
		if _, dup := byName[t.Name]; !dup {
			byName[t.Name] = i
		}
	}
	out := make([]Table, 0, len(names))
	picked := map[string]bool{}
	for _, n := range names {
		i, ok := byName[n]
		if !ok {
			known := make([]string, 0, len(all))
			for _, t := range all {
				known = append(known, t.Name)
			}
			return nil, fmt.Errorf("unknown port table %q (known tables: %s)", n, strings.Join(known, ", "))
		}
		if !picked[n] {
			picked[n] = true
			out = append(out, all[i])
		}
	}
	return out, nil
}

// effectiveConditions copies the enabled conditions and enables cni=flannel
// when no CNI was chosen.
func effectiveConditions(in map[string]bool) map[string]bool {
	out := make(map[string]bool, len(in)+1)
	cni := false
	for k, v := range in {
		if !v {
			continue
		}
		out[k] = true
		if strings.HasPrefix(k, "cni=") {
			cni = true
		}
	}
	if !cni {
		out[CondCNIFlannel] = true
	}
	return out
}

// Dedupe merges rows with the same port, range and protocol as described on
// Select. The input is not modified.
func Dedupe(rows []Row) []Row {
	type key struct {
		port, end int
		proto     Protocol
	}
	index := make(map[key]int, len(rows))
	out := make([]Row, 0, len(rows))
	for _, r := range rows {
		k := key{r.Port, r.EndPort, r.Protocol}
		i, ok := index[k]
		if !ok {
			index[k] = len(out)
			out = append(out, r)
			continue
		}
		m := &out[i]
		m.Component = joinDistinct(m.Component, r.Component, ", ")
		m.Table = joinDistinct(m.Table, r.Table, ", ")
		m.Purpose = joinDistinct(m.Purpose, r.Purpose, "; ")
		m.Source = joinDistinct(m.Source, r.Source, "; ")
		if r.Binding == BindHost {
			m.Binding = BindHost
		}
		if m.Condition != "" {
			if r.Condition == "" {
				m.Condition = ""
			} else {
				m.Condition = joinDistinct(m.Condition, r.Condition, ", ")
			}
		}
	}
	return out
}

// joinDistinct appends add to the sep-joined list have unless it is already
// in it.
func joinDistinct(have, add, sep string) string {
	if add == "" {
		return have
	}
	if have == "" {
		return add
	}
	for _, p := range strings.Split(have, sep) {
		if p == add {
			return have
		}
	}
	return have + sep + add
}

// KnownConditions lists, sorted, every condition key used by rows of the
// given tables: the vocabulary a caller may validate user input against.
func KnownConditions(tables []Table) []string {
	set := map[string]bool{}
	for _, t := range tables {
		for _, r := range t.Rows {
			if r.Condition != "" {
				set[r.Condition] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// PipelinePort is one frontend port claimed by a configured pipeline.
type PipelinePort struct {
	Protocol Protocol
	// Port is the frontend port, the one exposed on the node (which may
	// differ from the backend port after automatic reassignment).
	Port     int
	Pipeline string
}

// PipelineRows turns pipeline frontend ports into catalog rows of the
// telemetry-pipeline table (binding host: a LoadBalancer or NodePort Service
// is reachable on every node address). Pass them to Select as
// Selection.Extra. A claim with a bad port, protocol or empty pipeline name
// is an error.
func PipelineRows(claims []PipelinePort) ([]Row, error) {
	rows := make([]Row, 0, len(claims))
	for i, c := range claims {
		r := Row{
			Port:      c.Port,
			Protocol:  c.Protocol,
			Component: "pipeline " + strings.TrimSpace(c.Pipeline),
			Binding:   BindHost,
			Purpose:   "frontend port of pipeline " + strings.TrimSpace(c.Pipeline),
			Source:    "000_428ce519970e9097.txt: Frontend and backend ports",
			Table:     TableTelemetryPipeline,
		}
		if strings.TrimSpace(c.Pipeline) == "" {
			return nil, fmt.Errorf("pipeline port %d (%s): pipeline name is empty", i, r.Spec())
		}
		if errs := validateRow(r); len(errs) > 0 {
			return nil, fmt.Errorf("pipeline %s port %d (%s): %s: %s", c.Pipeline, i, r.Spec(), errs[0].field, errs[0].msg)
		}
		rows = append(rows, r)
	}
	return rows, nil
}
