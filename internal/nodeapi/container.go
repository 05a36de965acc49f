// Package nodeapi is the node daemon's wire contract: the JSON types of its
// HTTP API under /v1, the strict decoding and validation of requests, and a
// client. The daemon, the CLI and the master all speak through it.
package nodeapi

import "time"

// ContainerSpec asks a node to run one container. Zero values mean "moat's
// strict default"; pointers distinguish "not given" from "false".
type ContainerSpec struct {
	Name       string            `json:"name,omitempty"`
	Image      string            `json:"image"`
	Entrypoint []string          `json:"entrypoint,omitempty"` // replaces the image's entrypoint
	Cmd        []string          `json:"cmd,omitempty"`        // replaces the image's cmd
	Env        []string          `json:"env,omitempty"`        // K=V, added to the image's env
	WorkDir    string            `json:"workdir,omitempty"`
	User       string            `json:"user,omitempty"` // uid[:gid] or a name from the image's /etc/passwd
	Hostname   string            `json:"hostname,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	Ports      []Port            `json:"ports,omitempty"`
	Mounts     []Mount           `json:"mounts,omitempty"`
	Resources  Resources         `json:"resources,omitempty"`
	Restart    RestartPolicy     `json:"restart,omitempty"`
	Security   Security          `json:"security,omitempty"`
	// StopTimeout is how long stop waits after SIGTERM before SIGKILL.
	StopTimeout Duration `json:"stopTimeout,omitempty"`
	// Health is checked by the node, inside the container's network
	// namespace; an unhealthy container is killed (its restart policy then
	// applies).
	Health *HealthCheck `json:"health,omitempty"`
	// Fenced containers run only while the node holds the master's lease:
	// when it lapses (the master cannot reach the node) the node kills
	// them, so a singleton moved elsewhere never runs twice.
	Fenced bool `json:"fenced,omitempty"`
	// Secrets are mounted read-only under /run/secrets (secret.go).
	Secrets []SecretMount `json:"secrets,omitempty"`
}

// HealthCheck is an HTTP GET (HTTPPath set) or a TCP connect to Port.
type HealthCheck struct {
	HTTPPath    string   `json:"httpPath,omitempty"`
	Port        int      `json:"port"`
	Interval    Duration `json:"interval,omitempty"`
	Timeout     Duration `json:"timeout,omitempty"`
	StartPeriod Duration `json:"startPeriod,omitempty"`
	Retries     int      `json:"retries,omitempty"`
}

// Port is a container port the container declares. Only declared ports can
// be reached from outside (through the gate's dial).
type Port struct {
	Name     string `json:"name,omitempty"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol,omitempty"` // tcp (default) or udp
}

// Mount binds a host directory into the container, or mounts a tmpfs when
// Type is "tmpfs".
type Mount struct {
	Type     string `json:"type,omitempty"` // bind (default) or tmpfs
	Source   string `json:"source,omitempty"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"`
	Size     int64  `json:"size,omitempty"` // tmpfs size in bytes
}

// Resources are cgroup limits; they are always set, to defaults when absent.
type Resources struct {
	MemoryBytes int64 `json:"memory,omitempty"`
	MilliCPU    int64 `json:"milliCPU,omitempty"` // 1000 = one core
	Pids        int64 `json:"pids,omitempty"`
}

// RestartPolicy says what the node does when the container exits.
type RestartPolicy struct {
	Policy     string `json:"policy,omitempty"`     // no (default), on-failure, always
	MaxRetries int    `json:"maxRetries,omitempty"` // on-failure only; 0 = unlimited
}

// Security overrides moat's strict defaults. Each field left empty keeps
// the default: read-only root, tmpfs /tmp, no new privileges, no
// capabilities, Docker's default seccomp profile, a network namespace with
// only loopback — or what the image's signed config declares (its
// org.moatcloud.privileges label). A strict value (readOnlyRootfs: true,
// seccomp: default, network: none) takes a declared privilege away, as
// Drop does; a wide one asks for a privilege, which the master's key gets
// only if the image declares it or the node allows it.
type Security struct {
	// Drop names declared privileges this container does without
	// (cap:NAME, root, writable-root, new-privileges, seccomp-unconfined,
	// host-network).
	Drop            []string `json:"drop,omitempty"`
	ReadOnlyRootfs  *bool    `json:"readOnlyRootfs,omitempty"`
	NoNewPrivileges *bool    `json:"noNewPrivileges,omitempty"`
	NoTmp           bool     `json:"noTmp,omitempty"` // do not mount the default tmpfs on /tmp
	CapAdd          []string `json:"capAdd,omitempty"`
	Seccomp         string   `json:"seccomp,omitempty"` // default or unconfined
	Network         string   `json:"network,omitempty"` // none (loopback only, default) or host
}

// Restart policies.
const (
	RestartNo        = "no"
	RestartOnFailure = "on-failure"
	RestartAlways    = "always"
)

// Container states.
const (
	StateCreated    = "created"
	StateRunning    = "running"
	StateRestarting = "restarting" // exited, waiting for its backoff to restart
	StateExited     = "exited"
)

// Container is what the node reports about one container.
type Container struct {
	ID          string    `json:"id"`
	Image       string    `json:"image"`
	ImageDigest string    `json:"imageDigest"`
	State       string    `json:"state"`
	Pid         int       `json:"pid,omitempty"`
	ExitCode    *int      `json:"exitCode,omitempty"`
	Signal      string    `json:"signal,omitempty"`
	OOMKilled   bool      `json:"oomKilled,omitempty"`
	Error       string    `json:"error,omitempty"`
	Restarts    int       `json:"restarts"`
	Created     time.Time `json:"created"`
	Started     time.Time `json:"started,omitzero"`
	Finished    time.Time `json:"finished,omitzero"`
	NextRestart time.Time `json:"nextRestart,omitzero"`
	// Health is "" (no check), starting, healthy or unhealthy, for the
	// current run; HealthOutput says why the last check failed.
	Health       string `json:"health,omitempty"`
	HealthOutput string `json:"healthOutput,omitempty"`
	// FenceStopped: the node's fence stopped it when the master's lease
	// lapsed, not its own exit: the master starts it again once it holds
	// the lease, whatever its restart policy.
	FenceStopped bool          `json:"fenceStopped,omitempty"`
	Spec         ContainerSpec `json:"spec"`
	// Seq orders a daemon's reports of its containers: a later change has
	// a larger Seq, so a stale report can be told from a fresh one.
	Seq uint64 `json:"seq,omitempty"`
}

// Health states.
const (
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)
