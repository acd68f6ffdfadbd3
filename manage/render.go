package manage

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/pipeline"
)

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// WritePipelines writes the pipelines as a table.
func WritePipelines(w io.Writer, items []v1alpha1.Pipeline) error {
	if len(items) == 0 {
		_, err := fmt.Fprintln(w, "No pipelines.")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tINSTANCE\tWORKLOAD\tSERVICE\tREADY\tSTATUS\tPORTS")
	for i := range items {
		p := &items[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.Spec.Instance, p.Spec.WorkloadKind(),
			ServiceTypeText(p), ReadyText(p), StatusText(p), dash(PortsText(p)))
	}
	return tw.Flush()
}

// WritePipeline describes one pipeline: settings, port triplets and
// conditions. Endpoints and events are added when given.
func WritePipeline(w io.Writer, p *v1alpha1.Pipeline, eps []Endpoint, events []Event, now time.Time) error {
	tw := newTable(w)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("Name", p.Name)
	row("Namespace", p.Namespace)
	row("Instance", p.Spec.Instance)
	kind := string(p.Spec.WorkloadKind())
	if a := p.Spec.Workload.Autoscaling; a != nil && p.Spec.WorkloadKind() == v1alpha1.WorkloadDeployment {
		kind += " (autoscaled)"
	} else if p.Spec.WorkloadKind() != v1alpha1.WorkloadDaemonSet {
		kind += fmt.Sprintf(" (%d replicas)", p.Spec.ReplicaCount())
	}
	row("Workload", kind)
	if s := AutoscalingText(p.Spec.Workload.Autoscaling); s != "" {
		row("Autoscaling", s)
	}
	if s := StorageText(p.Spec.Workload.Storage); s != "" {
		row("Storage", s)
	}
	row("Ready", ReadyText(p)+" "+StatusText(p))
	row("Service type", ServiceTypeText(p))
	row("Image", dash(p.Spec.Image))
	row("Resources", ResourcesText(p.Spec.Resources))
	if len(p.Spec.NodeSelector) > 0 {
		row("Node selector", pairsText(p.Spec.NodeSelector))
	}
	if len(p.Spec.Tolerations) > 0 {
		ts := make([]string, len(p.Spec.Tolerations))
		for i, t := range p.Spec.Tolerations {
			ts[i] = TolerationText(t)
		}
		row("Tolerations", strings.Join(ts, ", "))
	}
	if len(p.Spec.PodAnnotations) > 0 {
		row("Pod annotations", pairsText(p.Spec.PodAnnotations))
	}
	if len(p.Spec.Args) > 0 {
		row("Args", strings.Join(p.Spec.Args, " "))
	}
	row("Auto-detect ports", strconv.FormatBool(p.Spec.AutoDetect()))
	row("Configuration", fmt.Sprintf("%s, %d bytes", p.Spec.ConfigFormat(), len(p.Spec.Config.Content)))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nPorts:")
	if err := writeTriplets(w, p); err != nil {
		return err
	}
	if eps != nil {
		fmt.Fprintln(w, "\nEndpoints:")
		if err := writeEndpoints(w, eps, "  "); err != nil {
			return err
		}
	}
	fmt.Fprintln(w, "\nConditions:")
	if len(p.Status.Conditions) == 0 {
		fmt.Fprintln(w, "  none yet (the operator has not reported)")
	} else {
		tw = newTable(w)
		fmt.Fprintln(tw, "  TYPE\tSTATUS\tREASON\tMESSAGE")
		for _, c := range p.Status.Conditions {
			stale := ""
			if c.ObservedGeneration != p.Generation {
				stale = " (older generation)"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s%s\n", c.Type, c.Status, c.Reason, c.Message, stale)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if events != nil {
		fmt.Fprintln(w, "\nEvents:")
		if err := WriteEvents(w, events, now); err != nil {
			return err
		}
	}
	return nil
}

func writeTriplets(w io.Writer, p *v1alpha1.Pipeline) error {
	ts := Triplets(p)
	if len(ts) == 0 {
		_, err := fmt.Fprintln(w, "  none")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "  NAME\tPROTOCOL\tFRONTEND\tBACKEND\tSOURCE")
	for _, t := range ts {
		front := strconv.Itoa(int(t.Frontend))
		switch {
		case t.Pending:
			front = "pending"
		case t.Frontend == 0:
			front = "none"
		case t.Reassigned:
			front += " (reassigned)"
		}
		name := t.Name
		if name == "" {
			name = pipeline.DefaultPortName(pipeline.Port{Protocol: t.Protocol, Number: t.Backend})
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\n", name, strings.ToLower(string(t.Protocol)), front, t.Backend, dash(t.Source))
	}
	return tw.Flush()
}

// WriteEndpoints writes endpoints as a table; reassigned frontends are
// marked with '*' and explained below the table.
func WriteEndpoints(w io.Writer, eps []Endpoint) error { return writeEndpoints(w, eps, "") }

func writeEndpoints(w io.Writer, eps []Endpoint, indent string) error {
	if len(eps) == 0 {
		_, err := fmt.Fprintln(w, indent+"No endpoints: the pipeline has no assigned ports yet.")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, indent+"PROTOCOL\tFRONTEND\tBACKEND\tSERVICE\tADDRESS\tNOTE")
	marked := false
	for _, e := range eps {
		front := strconv.Itoa(int(e.Frontend))
		if e.Frontend == 0 {
			front = "none"
		} else if e.Reassigned {
			front += "*"
			marked = true
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%d\t%s\t%s\t%s\n", indent, strings.ToLower(string(e.Protocol)), front, e.Backend,
			e.ServiceType, dash(e.Address), e.Note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if marked {
		_, err := fmt.Fprintln(w, indent+"* reassigned: an older pipeline of the instance holds the backend number, so the frontend was moved up.")
		return err
	}
	return nil
}

// WriteEvents writes events, newest first, with their age.
func WriteEvents(w io.Writer, events []Event, now time.Time) error {
	if len(events) == 0 {
		_, err := fmt.Fprintln(w, "  none")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "  AGE\tTYPE\tREASON\tMESSAGE")
	for _, e := range events {
		count := ""
		if e.Count > 1 {
			count = fmt.Sprintf(" (x%d)", e.Count)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s%s\n", Age(now, e.Last), e.Type, e.Reason, e.Message, count)
	}
	return tw.Flush()
}

// Age renders how long ago t was, kubectl style: 45s, 12m, 3h, 5d.
func Age(now, t time.Time) string {
	if t.IsZero() {
		return "?"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < 2*time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + "h"
	}
	return strconv.Itoa(int(d.Hours()/24)) + "d"
}

// WriteInstances writes core instances as a table.
func WriteInstances(w io.Writer, items []v1alpha1.CoreInstance) error {
	if len(items) == 0 {
		_, err := fmt.Fprintln(w, "No core instances.")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tPIPELINES\tHEALTH CHECK\tREADY\tHTTP PROXY\tHTTPS PROXY\tNO PROXY")
	for i := range items {
		c := &items[i]
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.Status.PipelineCount, HealthCheckText(c),
			InstanceReadyText(c), ProxyText(&c.Spec, v1alpha1.ProxySecretKeyHTTP), ProxyText(&c.Spec, v1alpha1.ProxySecretKeyHTTPS), dash(c.Spec.NoProxy))
	}
	return tw.Flush()
}

// WriteInstance describes one core instance: proxies, health check,
// pipeline defaults and the frontend ports in use.
func WriteInstance(w io.Writer, c *v1alpha1.CoreInstance) error {
	tw := newTable(w)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("Name", c.Name)
	row("Namespace", c.Namespace)
	row("Ready", InstanceReadyText(c))
	row("Pipelines", strconv.Itoa(int(c.Status.PipelineCount)))
	row("HTTP proxy", ProxyText(&c.Spec, v1alpha1.ProxySecretKeyHTTP))
	row("HTTPS proxy", ProxyText(&c.Spec, v1alpha1.ProxySecretKeyHTTPS))
	row("No proxy", dash(c.Spec.NoProxy))
	hc := HealthCheckText(c)
	if c.Spec.HealthCheckEnabled() {
		hc += " (" + string(c.Spec.HealthCheckServiceType()) + ")"
	}
	row("Health check", hc)
	row("Default Service type", string(c.Spec.DefaultServiceType()))
	row("Default image", dash(c.Spec.PipelineDefaults.Image))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nFrontend ports in use:")
	if len(c.Status.FrontendPorts) == 0 {
		_, err := fmt.Fprintln(w, "  none")
		return err
	}
	tw = newTable(w)
	fmt.Fprintln(tw, "  PORT\tPIPELINE\tBACKEND")
	for _, f := range c.Status.FrontendPorts {
		fmt.Fprintf(tw, "  %s\t%s\t%d\n", pipeline.Port{Protocol: f.Protocol, Number: f.Port}, f.Pipeline, f.Backend)
	}
	return tw.Flush()
}
