package nodeapi

import (
	"time"

	"github.com/moatcloud/moat/internal/wire"
)

// ErrorBody is the JSON body of every error response.
type ErrorBody = wire.ErrorBody

// NodeInfo describes a node: what `moat node add` reports and the
// scheduler later weighs.
type NodeInfo struct {
	Version     string `json:"version"`
	Hostname    string `json:"hostname"`
	OS          string `json:"os"`
	Kernel      string `json:"kernel"`
	Arch        string `json:"arch"`
	Runc        string `json:"runc"`
	CgroupMode  string `json:"cgroupMode"`
	CPUs        int    `json:"cpus"`
	MemoryBytes int64  `json:"memoryBytes"`
	// The disk of Root, as df shows it: DiskBytes is its size (df's
	// Size), DiskUsedBytes what is written on it (Used), DiskFreeBytes what
	// is left for use (Avail). Blocks reserved for root are in neither
	// used nor free: the disk's usable part is used plus free.
	DiskBytes     int64  `json:"diskBytes"`
	DiskUsedBytes int64  `json:"diskUsedBytes"`
	DiskFreeBytes int64  `json:"diskFreeBytes"`
	Root          string `json:"root"`
	Containers    int    `json:"containers"`
	Running       int    `json:"running"`
	// RequireSigned: the node runs only images signed by one of Signers
	// (principal and key fingerprint, from its allowed_signers file).
	RequireSigned bool     `json:"requireSigned"`
	Signers       []string `json:"signers,omitempty"`
	ImageBytes    int64    `json:"imageBytes"` // disk used by the image store
	PeerFetch     bool     `json:"peerFetch"`  // has the peer key: fetches blobs from other nodes
	// Edge: the operator made this node an edge (node.conf edge=true): it
	// serves ingress on EdgeHTTP and EdgeHTTPS, the only listeners besides
	// sshd.
	Edge      bool   `json:"edge,omitempty"`
	EdgeHTTP  string `json:"edgeHTTP,omitempty"`  // e.g. :80
	EdgeHTTPS string `json:"edgeHTTPS,omitempty"` // e.g. :443
}

// Image is an image in a node's store.
type Image struct {
	Name         string    `json:"name,omitempty"`
	Digest       string    `json:"digest"`
	Size         int64     `json:"size"`
	Layers       int       `json:"layers"`
	Architecture string    `json:"architecture,omitempty"`
	Entrypoint   []string  `json:"entrypoint,omitempty"`
	Cmd          []string  `json:"cmd,omitempty"`
	User         string    `json:"user,omitempty"`
	Imported     time.Time `json:"imported"`
	Signers      []string  `json:"signers,omitempty"` // key fingerprints
	// Privileges are what the image's signed config declares beyond the
	// strict defaults (cap:NAME, root, writable-root, ...).
	Privileges []string `json:"privileges,omitempty"`
}

// LogEntry is one line of a container's output.
type LogEntry struct {
	Time    time.Time `json:"time"`
	Stream  string    `json:"stream"`
	Partial bool      `json:"partial,omitempty"`
	Line    string    `json:"line"`
}
