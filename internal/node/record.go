package node

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/runtime"
)

// record is a container's persistent state, in containers/ID/state.json.
// It survives daemon restarts: with the shim's pid and start time the next
// daemon re-adopts a running container instead of starting it again.
type record struct {
	ID          string                `json:"id"`
	Spec        nodeapi.ContainerSpec `json:"spec"`
	ImageDigest string                `json:"imageDigest"`
	Config      runtime.Config        `json:"config"`
	State       string                `json:"state"`
	Created     time.Time             `json:"created"`
	Started     time.Time             `json:"started,omitzero"`
	Finished    time.Time             `json:"finished,omitzero"`
	Restarts    int                   `json:"restarts"`
	// Failures counts quick consecutive failures, for the backoff.
	Failures      int                 `json:"failures"`
	Exit          *runtime.ExitStatus `json:"exit,omitempty"`
	NextRestart   time.Time           `json:"nextRestart,omitzero"`
	StoppedByUser bool                `json:"stoppedByUser,omitempty"`
	FenceStopped  bool                `json:"fenceStopped,omitempty"` // the stop was the fence's
	ShimPid       int                 `json:"shimPid,omitempty"`
	ShimStart     uint64              `json:"shimStart,omitempty"`
	InitPid       int                 `json:"initPid,omitempty"`
	// Health of the current run, not kept across daemon restarts.
	Health       string `json:"-"`
	HealthOutput string `json:"-"`
	Seq          uint64 `json:"-"`
}

const stateFile = "state.json"

func loadRecord(dir string) (record, error) {
	var r record
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%s: %w", filepath.Join(dir, stateFile), err)
	}
	return r, nil
}

func (r record) save(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save container %s: %w", r.ID, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, stateFile)); err != nil {
		return fmt.Errorf("save container %s: %w", r.ID, err)
	}
	return nil
}

// wire converts the record to what the API reports.
func (r record) wire() nodeapi.Container {
	c := nodeapi.Container{
		ID: r.ID, Image: r.Spec.Image, ImageDigest: r.ImageDigest, State: r.State,
		Restarts: r.Restarts, Created: r.Created, Started: r.Started, Finished: r.Finished,
		NextRestart: r.NextRestart, Spec: wireSpec(r.Spec), Health: r.Health, HealthOutput: r.HealthOutput, Seq: r.Seq,
		FenceStopped: r.FenceStopped,
	}
	if r.State == nodeapi.StateRunning {
		c.Pid = r.InitPid
	}
	if e := r.Exit; e != nil {
		code := e.Code
		c.ExitCode, c.Signal, c.OOMKilled, c.Error = &code, e.Signal, e.OOMKilled, e.Error
	}
	return c
}
