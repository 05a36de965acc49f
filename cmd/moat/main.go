// Command moat is the whole of moat in one binary: the CLI, the master, the
// node daemon, the SSH gate and the per-container shim.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/moatcloud/moat/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
