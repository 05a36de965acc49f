package node

import (
	"net/http"

	"github.com/moatcloud/moat/internal/nodeapi"
)

func (d *Daemon) handleContainers(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, d.List())
}

// handleCreate creates a container and, unless ?start=false, starts it.
func (d *Daemon) handleCreate(w http.ResponseWriter, r *http.Request) error {
	spec, err := nodeapi.DecodeContainerSpec(r.Body)
	if err != nil {
		return err
	}
	start := true
	if r.URL.Query().Has("start") {
		if start, err = queryBool(r, "start"); err != nil {
			return err
		}
	}
	c, err := d.Create(r.Context(), spec)
	if err != nil {
		return err
	}
	if start {
		if c, err = d.Start(r.Context(), c.ID); err != nil {
			return err
		}
	}
	return writeJSON(w, http.StatusCreated, c)
}

func (d *Daemon) handleInspect(w http.ResponseWriter, r *http.Request) error {
	c, err := d.Inspect(r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (d *Daemon) handleStart(w http.ResponseWriter, r *http.Request) error {
	c, err := d.Start(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (d *Daemon) handleStop(w http.ResponseWriter, r *http.Request) error {
	timeout, err := queryDuration(r, "timeout")
	if err != nil {
		return err
	}
	c, err := d.Stop(r.Context(), r.PathValue("id"), timeout)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (d *Daemon) handleRemove(w http.ResponseWriter, r *http.Request) error {
	force, err := queryBool(r, "force")
	if err != nil {
		return err
	}
	if err := d.Remove(r.Context(), r.PathValue("id"), force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
