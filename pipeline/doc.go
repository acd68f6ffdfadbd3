// Package pipeline is the domain logic shared by the operator, the CLI and
// the TUI: port triplets, validation of pipeline specs, frontend assignment
// within a core instance, and port detection from Fluent Bit configurations.
// It does no I/O and talks to no cluster; callers pass everything in.
//
// # Ports
//
// A pipeline port is a triplet: protocol (TCP or UDP), frontend port (what
// clients connect to, the Service port) and backend port (what the pod
// listens on). Setting a port sets both numbers to the same value; only a
// clash moves the frontend.
//
//   - Backend (protocol, port) is unique within one pipeline: Validate and
//     ResolvePorts reject duplicates, naming both entries.
//   - Frontend (protocol, port) is unique within one core instance. TCP and
//     UDP are independent and may share a number.
//
// # Frontend assignment
//
// Assign works on claims: one claim per port entry of every pipeline of an
// instance. A claim's age is when its entry was added or last changed
// (Claims derives it from the pipeline's previous status), so changing a port
// makes that entry the newest component of the instance.
//
//   - On a clash the newer component gets backend+1, +2, … until a free
//     number is found; its backend stays. Older components never move.
//   - Reserved ports (the node's own ports, packaged components, other
//     LoadBalancer Services' frontends and the instance's health check,
//     passed in by the caller as a PortSet) are never given out; each has a
//     Hold naming its holder for the messages. A holder since always (the
//     zero time) counts as the oldest component; one with a time is older or
//     newer than a claim like any component, so a newer holder does not take
//     a kept frontend away (Assignment.Contested reports it).
//   - Past 65535 there is no frontend: the claim becomes a Conflict, which
//     the operator reports as an error condition. Numbers never wrap around.
//   - Ties in age are broken by pipeline name, then by entry index, so the
//     outcome never depends on the order in which pipelines are listed.
//
// Stability. The rules "older components never move" and "an unchanged entry
// keeps its frontend forever" could pull apart in one situation: an older
// entry that has no frontend to keep (its previous frontend just became
// reserved, or it was a Conflict until a number freed up, or its status was
// lost) and whose first free number is held by a newer, unchanged entry.
// Recomputing purely by age would hand that number to the older entry and
// push the newer one along, a cascade in which entries nobody touched move.
// Assign does not do that: claims that keep their previous frontend are
// settled first, oldest first, and every other claim searches among the
// numbers that remain. So a frontend, once given, stays with its entry for as
// long as the entry is unchanged and the number is not reserved; an older
// entry that has to find a new frontend skips numbers held by newer entries.
// Age decides only among claims that are searching at the same time (and
// between two claims that both say they held the same number, which only a
// restored or edited status can produce: the older keeps it).
//
// A consequence worth knowing: when the older holder of a backend number goes
// away, a newer entry that was moved to backend+1 keeps backend+1. Nothing
// moves without a change to its own entry; to return to its backend number,
// change the entry (for example remove and re-add it).
//
// # Port detection
//
// DetectPorts reads Fluent Bit configurations in the classic format
// ([INPUT] sections with Name/Port/Mode keys) and the YAML format
// (pipeline.inputs / pipeline.outputs lists). Plugins known to listen give
// their explicit port or their documented default:
//
//	inputs:  forward 24224/tcp, http 9880/tcp, tcp 5170/tcp, udp 5170/udp,
//	         syslog 5140 (tcp or udp by mode; the default unix modes use no port),
//	         opentelemetry 4318/tcp, splunk 8088/tcp, elasticsearch 9200/tcp,
//	         statsd 8125/udp, collectd 25826/udp, mqtt 1883/tcp,
//	         prometheus_remote_write 8080/tcp
//	outputs: prometheus_exporter 2021/tcp, vivo_exporter 2025/tcp
//
// A forward input with unix_path and a plugin bound to a loopback address
// listen on no reachable port and are skipped with a warning. The [SERVICE]
// HTTP server is not exposed: it serves the pod's own health and metrics.
// ${NAME} references are resolved from @SET lines, the YAML env section and
// literal env values of the pipeline; an unresolved reference in a setting
// that decides a port is an error rather than a guess.
package pipeline
