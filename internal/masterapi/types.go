// Package masterapi is the master's wire contract: the JSON types of its
// HTTP API under /v1 (served on a unix socket) and a client. The CLI talks
// to the master only through it.
package masterapi

import (
	"time"

	"github.com/moatcloud/moat/internal/nodeapi"
)

// DeployRequest carries an app spec as the operator wrote it (YAML).
type DeployRequest struct {
	Spec string `json:"spec"`
	File string `json:"file,omitempty"` // for error messages
}

// DeployResponse says which revision the deploy made.
type DeployResponse struct {
	App      string `json:"app"`
	Revision int    `json:"revision"`
	Image    string `json:"image"` // the manifest digest the revision pins
}

// App is an app's state.
type App struct {
	Name     string    `json:"name"`
	Tenant   string    `json:"tenant"`
	Revision int       `json:"revision"` // target
	Stable   int       `json:"stable"`   // last fully healthy
	Image    string    `json:"image"`
	Desired  int       `json:"desired"`
	Ready    int       `json:"ready"`
	Status   string    `json:"status"` // of the target revision
	Message  string    `json:"message,omitempty"`
	Created  time.Time `json:"created"`
	Strategy string    `json:"strategy"`
}

// Revision is one revision of an app.
type Revision struct {
	Revision int       `json:"revision"`
	Image    string    `json:"image"`
	Replicas int       `json:"replicas"`
	Cause    string    `json:"cause"`
	Status   string    `json:"status"`
	Message  string    `json:"message,omitempty"`
	Created  time.Time `json:"created"`
	Target   bool      `json:"target"`
}

// Replica is one replica, as the master wants it and as its node reports.
type Replica struct {
	ID       string    `json:"id"`
	App      string    `json:"app"`
	Tenant   string    `json:"tenant"`
	Revision int       `json:"revision"`
	Node     string    `json:"node"`
	Desired  string    `json:"desired"` // run, stop
	State    string    `json:"state"`   // pending, starting, ready, failed, unknown, stopping
	Health   string    `json:"health,omitempty"`
	Restarts int       `json:"restarts"`
	Created  time.Time `json:"created"`
	Started  time.Time `json:"started,omitzero"`
	Message  string    `json:"message,omitempty"`
}

// Node is a node as the master sees it.
type Node struct {
	Name     string            `json:"name"`
	Addr     string            `json:"addr"`
	State    string            `json:"state"` // up, down, connecting
	Since    time.Time         `json:"since"`
	Error    string            `json:"error,omitempty"`
	Cordoned bool              `json:"cordoned"`
	Draining bool              `json:"draining"`
	Labels   map[string]string `json:"labels,omitempty"`
	Info     nodeapi.NodeInfo  `json:"info"`
	Replicas int               `json:"replicas"`
	MilliCPU int64             `json:"allocatedMilliCPU"`
	Memory   int64             `json:"allocatedMemory"`
	Enrolled time.Time         `json:"enrolled"`
	HostKey  string            `json:"hostKey"`
	User     string            `json:"user"`
	Operator Access            `json:"operator"` // how node rm reaches it again
	Tenant   string            `json:"tenant"`
	Shared   bool              `json:"shared,omitempty"` // runs every tenant's replicas
}

// Access is how the operator's ssh reached a node at enrolment; node rm
// and debug reach it the same way.
type Access struct {
	Dest      string `json:"dest"` // USER@HOST or an ssh_config alias
	Port      int    `json:"port,omitempty"`
	Identity  string `json:"identity,omitempty"`
	Jump      string `json:"jump,omitempty"`
	SSHConfig string `json:"sshConfig,omitempty"`
}

// NewNode registers an enrolled node with the master (moat node add).
type NewNode struct {
	Name     string            `json:"name"`
	Addr     string            `json:"addr"` // host:port the master connects to
	User     string            `json:"user"`
	HostKey  string            `json:"hostKey"`
	Labels   map[string]string `json:"labels,omitempty"`
	Enrolled time.Time         `json:"enrolled"`
	Info     nodeapi.NodeInfo  `json:"info"`
	Operator Access            `json:"operator"`
	Tenant   string            `json:"tenant,omitempty"` // whose replicas it runs; "" is the default tenant
	Shared   bool              `json:"shared,omitempty"` // it runs every tenant's replicas
}

// Progress is a revision's rollout as it goes.
type Progress struct {
	App      string `json:"app"`
	Revision int    `json:"revision"`
	Status   string `json:"status"`
	Desired  int    `json:"desired"`
	Current  int    `json:"current"` // replicas of the revision's template
	Ready    int    `json:"ready"`   // of those, ready
	Old      int    `json:"old"`     // replicas still to replace
	Message  string `json:"message,omitempty"`
	// RolledBackTo is set when this revision failed and the master went
	// back to an earlier one.
	RolledBackTo int `json:"rolledBackTo,omitempty"`
	// Transfers are the deliveries of the revision's image under way.
	Transfers []Transfer `json:"transfers,omitempty"`
}

// Transfer is an image on its way to a node.
type Transfer struct {
	Node  string `json:"node"`
	From  string `json:"from"` // "master", or the node it is fetched from
	Done  int64  `json:"done"`
	Total int64  `json:"total"`
}

// Terminal reports whether the rollout will not change any more.
func (p Progress) Terminal() bool {
	return p.Status == "deployed" || p.Status == "failed" || p.Status == "superseded" || p.Status == "canary"
}

// ScaleRequest sets an app's replica count.
type ScaleRequest struct {
	Replicas int `json:"replicas"`
}

// RollbackRequest goes back to a revision (0: the one before the target).
type RollbackRequest struct {
	Revision int `json:"revision"`
}

// LogLine is a line of a replica's output, merged across replicas.
type LogLine struct {
	Replica string `json:"replica"`
	Node    string `json:"node"`
	nodeapi.LogEntry
}

// Key is the master's public SSH key, the one nodes pin to the gate.
type Key struct {
	AuthorizedKey string `json:"authorizedKey"`
	// The peer key, which enrolment installs on every node: nodes fetch
	// image blobs from each other with it, and it can do nothing else
	// (moat gate --as peer). Private: the API socket is root's alone.
	PeerAuthorizedKey string `json:"peerAuthorizedKey"`
	PeerKey           string `json:"peerKey"`
}

// SignRequest attaches a signature to an image.
type SignRequest = nodeapi.SignRequest

// Image is an image in the master's store and what keeps it there.
type Image struct {
	nodeapi.Image
	// UsedBy lists the revisions that keep the image: each app's rollback
	// window, its current and stable revisions, and what replicas run.
	UsedBy []string `json:"usedBy,omitempty"`
}

// GCRequest asks for image garbage collection on the master and nodes.
type GCRequest struct {
	DryRun bool `json:"dryRun,omitempty"`
	// Grace keeps images imported or pulled more recently; nil: 10 minutes.
	Grace *nodeapi.Duration `json:"grace,omitempty"`
}

// GCReport is what garbage collection removed in one place.
type GCReport struct {
	Where  string   `json:"where"` // master, or a node's name
	Images []string `json:"images,omitempty"`
	Blobs  int      `json:"blobs"`
	Layers int      `json:"layers"`
	Bytes  int64    `json:"bytes"`
	Error  string   `json:"error,omitempty"`
}

// Stats counts the image bytes that travelled since the master started.
type Stats struct {
	PushedBytes int64 `json:"pushedBytes"` // uploaded by the master to nodes
	PeerBytes   int64 `json:"peerBytes"`   // fetched by nodes from other nodes
}

// ProgressStats counts the master's work for clients watching rollouts
// (GET /debug/progress): a debugging aid, not part of the /v1 contract.
type ProgressStats struct {
	Watchers int64 `json:"watchers"` // clients watching now
	Feeds    int64 `json:"feeds"`    // revisions watched now
	Changes  int64 `json:"changes"`  // signals that a progress may have changed
	Computed int64 `json:"computed"` // progress computed from the whole state
}
