package prom

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/moatcloud/moat/internal/nodeapi"
)

// Label sets.
var (
	nodeLabels    = []string{"node", "tenant"}
	appLabels     = []string{"app", "tenant"}
	replicaLabels = []string{"replica", "app", "tenant", "node"}
	routeLabels   = []string{"host", "app", "tenant", "node"}
)

// labelNames are each family's label names, in the order values are
// given (emitter.send).
var labelNames = map[*prometheus.Desc][]string{}

func desc(name, help string, labels []string, extra ...string) *prometheus.Desc {
	names := append(append([]string(nil), labels...), extra...)
	d := prometheus.NewDesc(name, help, names, nil)
	labelNames[d] = names
	return d
}

// States of a node and of an app's target revision, each shown as a
// state set: one series per state, 1 for the one it is in. A replica has
// one series, of its state (pending, starting, ready, failed, unknown,
// stopping).
var (
	nodeStates  = []string{"up", "down", "connecting", "unwatched"}
	appStatuses = []string{"progressing", "canary", "promoted", "deployed", "failed", "superseded"}
)

var (
	scrapeErrorDesc = desc("moat_scrape_error", "The master's state could not be read.", nil)

	nodeUp          = desc("moat_node_up", "1 while the master's SSH connection to the node is up.", nodeLabels)
	nodeState       = desc("moat_node_state", "The node's state as the master sees it: 1 for the state it is in.", nodeLabels, "state")
	nodeStateSince  = desc("moat_node_state_since_seconds", "When the node entered its state (Unix time).", nodeLabels)
	nodeCordoned    = desc("moat_node_cordoned", "1 while the node is cordoned (takes no new replicas).", nodeLabels)
	nodeDraining    = desc("moat_node_draining", "1 while the node is drained.", nodeLabels)
	nodeReplicas    = desc("moat_node_replicas", "Replicas the master wants running on the node.", nodeLabels)
	nodeCPUAlloc    = desc("moat_node_cpu_allocated_cores", "CPU reserved by the replicas placed on the node, in cores.", nodeLabels)
	nodeCPUCap      = desc("moat_node_cpu_capacity_cores", "The node's CPUs.", nodeLabels)
	nodeMemAlloc    = desc("moat_node_memory_allocated_bytes", "Memory reserved by the replicas placed on the node.", nodeLabels)
	nodeMemCap      = desc("moat_node_memory_capacity_bytes", "The node's memory.", nodeLabels)
	nodeSampleTime  = desc("moat_node_sample_timestamp_seconds", "When the node's newest sample the master holds was taken (Unix time, the node's clock).", nodeLabels)
	appDesired      = desc("moat_app_replicas_desired", "Replicas the app's target revision asks for.", appLabels)
	appReady        = desc("moat_app_replicas_ready", "Replicas of the app's target revision that are ready.", appLabels)
	appRevision     = desc("moat_app_revision", "The app's target revision.", appLabels)
	appStable       = desc("moat_app_stable_revision", "The app's last fully healthy revision (0: none yet).", appLabels)
	appStatus       = desc("moat_app_status", "The status of the app's target revision: 1 for the one it has.", appLabels, "status")
	replicaState    = desc("moat_replica_state", "The replica's state (pending, starting, ready, failed, unknown, stopping): one series, 1, of the state it is in.", replicaLabels, "state")
	replicaRevision = desc("moat_replica_revision", "The app revision the replica runs.", replicaLabels)
	replicaRestarts = desc("moat_replica_restarts_total", "Times the replica's container was restarted by its node.", replicaLabels)
	replicaHealth   = desc("moat_replica_health", "The replica's health check: 1 healthy, 0.5 starting, 0 unhealthy (absent without a check).", replicaLabels)
	replicaTime     = desc("moat_replica_sample_timestamp_seconds", "When the replica's newest sample was taken (Unix time, its node's clock).", replicaLabels)
	routeTime       = desc("moat_route_sample_timestamp_seconds", "When the route's newest sample was taken (Unix time, its edge node's clock).", routeLabels)

	sshConnections = desc("moat_ssh_connections", "The master's SSH connections to nodes, by state.", nil, "state")
	sshConnects    = desc("moat_ssh_connects_total", "Times the master's SSH connection to the node came up (1 + reconnects).", []string{"node"})
	sshRoundTrip   = desc("moat_ssh_round_trip_seconds", "The last keepalive's round trip to the node.", []string{"node"})
	pullLag        = desc("moat_metrics_pull_lag_seconds", "Age of the node's newest sample the master holds.", []string{"node"})
	pullLagRecords = desc("moat_metrics_pull_lag_records", "Records the node holds that the master has not pulled yet.", []string{"node"})
	pullLast       = desc("moat_metrics_pull_last_timestamp_seconds", "When the node last answered a pull (Unix time).", []string{"node"})
	pullBytes      = desc("moat_metrics_pull_bytes_total", "Bytes of samples the master has pulled from the node.", []string{"node"})
	pullRecords    = desc("moat_metrics_pull_records_total", "Records pulled from the node, by outcome (ingested; undecodable: skipped; refused: refused in part by the history).", []string{"node", "outcome"})
	pullGaps       = desc("moat_metrics_pull_gaps_total", "Pulls that found records lost on the node (its ring overwrote them first).", []string{"node"})
	pullLost       = desc("moat_metrics_pull_lost_records_total", "Records lost on the node before the master pulled them, as far as known.", []string{"node"})
	pullErrors     = desc("moat_metrics_pull_errors_total", "Pull requests to the node that failed.", []string{"node"})
	ingestGroups   = desc("moat_metrics_ingested_groups_total", "Sample groups from nodes the master's history took or turned away, by outcome (taken, dropped: not newer than the last; refused: another node's, a future time, a bad name; ignored: unknown route or kind).", nil, "outcome")
	archives       = desc("moat_metrics_archives", "Archive files of monitoring history the master holds open.", nil)
	fileBytes      = desc("moat_master_state_bytes", "Size of the master's state on disk, by file (the metrics archives as one).", nil, "file")
)

// A sampled field as a metric: its name, help and type; value scaled.
type fieldMetric struct {
	desc    *prometheus.Desc
	counter bool
	// skipZero: 0 means none (a memory limit), not a value.
	skipZero bool
}

// Names of the sampled fields nodeapi knows now; a field added later
// becomes moat_<kind>_<field> (fieldDescs).
var fieldNames = map[byte]map[string][3]string{
	nodeapi.GroupNode: {
		"cpu":        {"moat_node_cpu_usage_cores", "CPU in use on the node, in cores (2: two cores busy)."},
		"load1":      {"moat_node_load1", "The node's 1-minute load average."},
		"mem_used":   {"moat_node_memory_used_bytes", "Memory in use on the node."},
		"mem_total":  {"moat_node_memory_total_bytes", "The node's memory."},
		"disk_used":  {"moat_node_disk_used_bytes", "Used space of the filesystem holding the node's state."},
		"disk_total": {"moat_node_disk_total_bytes", "Size of the filesystem holding the node's state."},
		"disk_read":  {"moat_node_disk_read_bytes_per_second", "Bytes read from the node's block devices per second."},
		"disk_write": {"moat_node_disk_written_bytes_per_second", "Bytes written to the node's block devices per second."},
		"net_rx":     {"moat_node_network_receive_bytes_per_second", "Bytes received per second on the node's interfaces but loopback."},
		"net_tx":     {"moat_node_network_transmit_bytes_per_second", "Bytes sent per second on the node's interfaces but loopback."},
		"containers": {"moat_node_containers_running", "Containers running on the node."},
	},
	nodeapi.GroupContainer: {
		"cpu":       {"moat_replica_cpu_usage_cores", "CPU the replica uses, in cores."},
		"mem":       {"moat_replica_memory_bytes", "Memory the replica uses."},
		"mem_limit": {"moat_replica_memory_limit_bytes", "The replica's memory limit (absent: none).", "skipZero"},
		"oom_kills": {"moat_replica_oom_kills_total", "Processes of the replica killed for want of memory since its container was created.", "counter"},
		"pids":      {"moat_replica_pids", "Processes and threads in the replica."},
		"restarts":  {}, // from the master's view of the replica (replicaRestarts)
		"health":    {}, // likewise (replicaHealth)
		"net_rx":    {"moat_replica_network_receive_bytes_per_second", "Bytes received per second in the replica's network namespace."},
		"net_tx":    {"moat_replica_network_transmit_bytes_per_second", "Bytes sent per second in the replica's network namespace."},
	},
	nodeapi.GroupRoute: {
		"requests":    {"moat_route_requests_per_second", "Requests per second the edge answered for the route."},
		"errors":      {"moat_route_errors_per_second", "Requests per second answered 5xx, or by no replica."},
		"latency_avg": {"moat_route_latency_average_seconds", "Mean time to answer a request of the route."},
		"latency_max": {"moat_route_latency_max_seconds", "Longest time to answer a request of the route."},
		"cert_expiry": {"moat_route_certificate_expiry_seconds", "Seconds until the certificate the edge serves the route's host with expires (absent: no TLS, or none yet)."},
	},
}

// fields is each group kind's fields as metrics, in nodeapi's order
// (nil: not shown).
var fields = map[byte][]*fieldMetric{
	nodeapi.GroupNode:      fieldDescs(nodeapi.GroupNode, "node", nodeLabels),
	nodeapi.GroupContainer: fieldDescs(nodeapi.GroupContainer, "replica", replicaLabels),
	nodeapi.GroupRoute:     fieldDescs(nodeapi.GroupRoute, "route", routeLabels),
}

func fieldDescs(kind byte, prefix string, labels []string) []*fieldMetric {
	var out []*fieldMetric
	for _, f := range nodeapi.FieldsOf(kind) {
		n, ok := fieldNames[kind][f.Name]
		if ok && n[0] == "" {
			out = append(out, nil)
			continue
		}
		if !ok {
			unit := ""
			if f.Unit != "" {
				unit = " (" + f.Unit + ")"
			}
			n = [3]string{"moat_" + prefix + "_" + sanitize(f.Name), "The " + f.Name + unit + " of the newest sample."}
		}
		out = append(out, &fieldMetric{desc: desc(n[0], n[1], labels), counter: n[2] == "counter", skipZero: n[2] == "skipZero"})
	}
	return out
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, strings.ToLower(s))
}

func allDescs() []*prometheus.Desc {
	out := []*prometheus.Desc{scrapeErrorDesc, nodeUp, nodeState, nodeStateSince, nodeCordoned, nodeDraining, nodeReplicas,
		nodeCPUAlloc, nodeCPUCap, nodeMemAlloc, nodeMemCap, nodeSampleTime, appDesired, appReady, appRevision, appStable, appStatus,
		replicaState, replicaRevision, replicaRestarts, replicaHealth, replicaTime, routeTime,
		sshConnections, sshConnects, sshRoundTrip, pullLag, pullLagRecords, pullLast, pullBytes, pullRecords, pullGaps, pullLost, pullErrors, ingestGroups, archives, fileBytes}
	for _, fs := range fields {
		for _, f := range fs {
			if f != nil {
				out = append(out, f.desc)
			}
		}
	}
	return out
}
