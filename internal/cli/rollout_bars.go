package cli

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/moatcloud/moat/internal/masterapi"
	"github.com/moatcloud/moat/internal/quantity"
)

// rolloutBars draws a rollout on a terminal: its status line, and under it
// a bar per image delivery, redrawn in place by mpb.
type rolloutBars struct {
	p          *mpb.Progress
	status     atomic.Pointer[string] // read by mpb's goroutines
	line       *mpb.Bar               // the status line, from the first update
	deliveries map[string]*delivery   // by Node+"<"+From
}

// delivery is the bar of one image transfer and the transfer as last seen.
type delivery struct {
	bar  *mpb.Bar
	last masterapi.Transfer
}

// newRolloutBars draws on w, a terminal as wide as it says. Auto refresh
// also draws on a w that is not a terminal, 80 columns wide, which is how
// the tests see the frames.
func newRolloutBars(w io.Writer) *rolloutBars {
	opts := []mpb.ContainerOption{mpb.WithOutput(w), mpb.WithAutoRefresh(), mpb.WithRefreshRate(100 * time.Millisecond)}
	if f, ok := w.(*os.File); ok {
		if cols, _, err := term.GetSize(int(f.Fd())); err != nil || cols == 0 {
			// A terminal of no size (a pty nobody sized, as under
			// script(1)) would get no rows at all: redraw 80 columns.
			opts = append(opts, mpb.WithOutput(struct{ io.Writer }{f}), mpb.ForceTTY(), mpb.WithWidth(80))
		}
	}
	return &rolloutBars{p: mpb.New(opts...), deliveries: map[string]*delivery{}}
}

// update shows a new status line and the transfers under way: a bar
// appears with its transfer and is completed when the transfer is. The
// master lists only deliveries under way, so one no longer listed has
// ended: if its last count was short of the total, it failed or its end
// was not seen, and its bar is removed rather than shown as done.
func (r *rolloutBars) update(line string, transfers []masterapi.Transfer) {
	r.status.Store(&line)
	if r.line == nil {
		text := decor.Any(func(decor.Statistics) string { return *r.status.Load() })
		r.line = r.p.New(0, mpb.NopStyle(), mpb.BarFillerTrim(), mpb.PrependDecorators(text))
	}
	listed := map[string]bool{}
	for _, t := range transfers {
		key := t.Node + "<" + t.From
		listed[key] = true
		d := r.deliveries[key]
		if d == nil {
			d = &delivery{bar: r.addBar(t)}
			r.deliveries[key] = d
		}
		d.set(t)
	}
	for key, d := range r.deliveries {
		if !listed[key] {
			if d.last.Done < d.last.Total {
				d.bar.Abort(true)
			}
			delete(r.deliveries, key)
		}
	}
}

// addBar adds "  n2 ← n1   [=====>      ] 2.1MiB / 4.6MiB  45 %". Its
// total starts unknown so that only set completes it.
func (r *rolloutBars) addBar(t masterapi.Transfer) *mpb.Bar {
	style := mpb.BarStyle().Lbound("[").Filler("=").Tip(">").Padding(" ").Rbound("]")
	return r.p.New(0, style, mpb.BarWidth(24),
		mpb.PrependDecorators(decor.Name(fmt.Sprintf("  %s ← %s", t.Node, t.From), decor.WCSyncSpaceR)),
		mpb.AppendDecorators(
			decor.Any(func(s decor.Statistics) string {
				return quantity.FormatBytes(s.Current) + " / " + quantity.FormatBytes(s.Total)
			}, decor.WCSyncWidth),
			decor.Percentage(decor.WC{W: 6}),
		))
}

func (d *delivery) set(t masterapi.Transfer) {
	d.last = t
	if t.Done >= t.Total {
		d.bar.SetTotal(t.Total, true)
		return
	}
	d.bar.SetTotal(t.Total, false)
	d.bar.SetCurrent(t.Done)
}

// done leaves the last frame on the terminal: transfers still listed stay
// where they got to. It returns once mpb has drawn it and stopped, so what
// is printed next comes after.
func (r *rolloutBars) done() {
	for _, d := range r.deliveries {
		d.bar.Abort(false)
	}
	if r.line != nil {
		r.line.SetTotal(-1, true)
	}
	r.p.Wait()
}
