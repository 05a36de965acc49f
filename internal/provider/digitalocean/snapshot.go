package digitalocean

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/digitalocean/godo"

	"github.com/moatcloud/moat/internal/provider"
)

// Snapshot powers the droplet off (if it is not off already), snapshots
// it under name, waits for both actions, and returns the new image's id.
// A snapshot action whose answer was lost is looked for among the
// droplet's actions before it is asked for again (one snapshot, not two).
func (c *Cloud) Snapshot(ctx context.Context, serverID, name string) (string, error) {
	id, err := dropletID(serverID)
	if err != nil {
		return "", err
	}
	s, err := c.Get(ctx, serverID)
	if err != nil {
		return "", err
	}
	if s.Status != provider.Off {
		if err := c.powerOff(ctx, id); err != nil {
			return "", err
		}
	}
	before, err := c.snapshotActions(ctx, id)
	if err != nil {
		return "", err
	}
	oldImages, err := c.snapshots(ctx, id)
	if err != nil {
		return "", err
	}
	var action *godo.Action
	lost := false
	err = c.do(ctx, fmt.Sprintf("snapshot droplet %d as %s", id, name), func(ctx context.Context) error {
		if lost {
			now, err := c.snapshotActions(ctx, id)
			if err != nil {
				return err
			}
			for aid := range now {
				if !before[aid] {
					action = &godo.Action{ID: aid}
					return nil
				}
			}
		}
		a, _, err := c.client.DropletActions.Snapshot(ctx, id, name)
		if err != nil {
			if errors.Is(classify(err, c.now()), provider.ErrTemporary) {
				lost = true
			}
			return err
		}
		action = a
		return nil
	})
	if err != nil {
		return "", err
	}
	if err := c.waitAction(ctx, action.ID, "snapshot of droplet "+serverID); err != nil {
		return "", err
	}
	images, err := c.snapshots(ctx, id)
	if err != nil {
		return "", err
	}
	best := 0
	for iid, n := range images {
		if _, old := oldImages[iid]; n == name && !old && iid > best {
			best = iid
		}
	}
	if best == 0 {
		return "", fmt.Errorf("digitalocean: snapshot %s of droplet %d completed but no such image is listed", name, id)
	}
	return strconv.Itoa(best), nil
}

// powerOff sends the power_off action and waits for it. A power_off
// refused with 422 (DigitalOcean refuses one for a droplet already off, or
// while an earlier one whose answer was lost is under way) waits for the
// droplet to be off instead.
func (c *Cloud) powerOff(ctx context.Context, id int) error {
	var action *godo.Action
	err := c.do(ctx, fmt.Sprintf("power off droplet %d", id), func(ctx context.Context) error {
		a, _, err := c.client.DropletActions.PowerOff(ctx, id)
		action = a
		return err
	})
	var er *godo.ErrorResponse
	if errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusUnprocessableEntity {
		return c.waitOff(ctx, id, err)
	}
	if err != nil {
		return err
	}
	return c.waitAction(ctx, action.ID, fmt.Sprintf("power off of droplet %d", id))
}

// waitOff polls the droplet until it is off, for ActionTimeout at most;
// refused is the error to return if it never is.
func (c *Cloud) waitOff(ctx context.Context, id int, refused error) error {
	if c.ActionTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.ActionTimeout)
		defer cancel()
	}
	for {
		s, err := c.Get(ctx, strconv.Itoa(id))
		if err != nil {
			return fmt.Errorf("%w (then: %v)", refused, err)
		}
		if s.Status == provider.Off {
			return nil
		}
		t := time.NewTimer(max(c.ActionPoll, time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (droplet still %s: %v)", refused, s.Status, ctx.Err())
		case <-t.C:
		}
	}
}

// snapshotActions is the set of the droplet's snapshot actions' ids.
func (c *Cloud) snapshotActions(ctx context.Context, id int) (map[int]bool, error) {
	set := map[int]bool{}
	err := c.pages(ctx, fmt.Sprintf("list actions of droplet %d", id), func(ctx context.Context, opt *godo.ListOptions) (*godo.Response, error) {
		as, resp, err := c.client.Droplets.Actions(ctx, id, opt)
		for _, a := range as {
			if a.Type == "snapshot" {
				set[a.ID] = true
			}
		}
		return resp, err
	})
	return set, err
}

// snapshots maps the droplet's snapshot images' ids to their names.
func (c *Cloud) snapshots(ctx context.Context, id int) (map[int]string, error) {
	out := map[int]string{}
	err := c.pages(ctx, fmt.Sprintf("list snapshots of droplet %d", id), func(ctx context.Context, opt *godo.ListOptions) (*godo.Response, error) {
		is, resp, err := c.client.Droplets.Snapshots(ctx, id, opt)
		for _, i := range is {
			out[i.ID] = i.Name
		}
		return resp, err
	})
	return out, err
}

// waitAction polls an action until it completes; "errored" or
// ActionTimeout is an error.
func (c *Cloud) waitAction(ctx context.Context, id int, what string) error {
	if c.ActionTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.ActionTimeout)
		defer cancel()
	}
	poll := max(c.ActionPoll, time.Millisecond)
	for {
		var a *godo.Action
		err := c.do(ctx, fmt.Sprintf("get action %d (%s)", id, what), func(ctx context.Context) error {
			var err error
			a, _, err = c.client.Actions.Get(ctx, id)
			return err
		})
		if err != nil {
			return err
		}
		switch a.Status {
		case godo.ActionCompleted:
			return nil
		case "errored":
			return fmt.Errorf("digitalocean: %s: action %d errored", what, id)
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("digitalocean: %s: action %d still %s: %w", what, id, a.Status, ctx.Err())
		case <-t.C:
		}
	}
}

// DeleteImage deletes a snapshot; one already gone is not an error.
func (c *Cloud) DeleteImage(ctx context.Context, image string) error {
	id, err := strconv.Atoi(image)
	if err != nil || id < 1 {
		return fmt.Errorf("digitalocean: %q is not an image id", image)
	}
	err = c.do(ctx, "delete image "+image, func(ctx context.Context) error {
		_, err := c.client.Images.Delete(ctx, id)
		return err
	})
	if errors.Is(err, provider.ErrNotFound) {
		return nil
	}
	return err
}
