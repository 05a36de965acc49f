package cli

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress is a progress bar on a terminal, and silent otherwise (logs and
// scripts want no carriage returns).
type progress struct {
	bar *progressbar.ProgressBar
}

func newProgress(w io.Writer, size int64, what string) *progress {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return &progress{}
	}
	return &progress{bar: progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(f), progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true), progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(), progressbar.OptionSpinnerType(14),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(f) }),
	)}
}

func (p *progress) Write(b []byte) (int, error) {
	if p.bar != nil {
		p.bar.Write(b)
	}
	return len(b), nil
}

func (p *progress) Finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
}
