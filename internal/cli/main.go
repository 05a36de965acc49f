// Package cli is moat's command line: one file per command, each building
// a cobra command that calls into the domain packages.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/runtime"
	"github.com/moatcloud/moat/internal/version"
)

// app holds what every command shares.
type app struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	json           bool
	logLevel       string
}

// Main runs the moat command line and returns the process exit status:
// 0 only on success (see errs.ExitCode for the others).
func Main(ctx context.Context, args []string) int {
	if len(args) == 2 && args[0] == "shim" {
		// One shim runs per container for as long as it lives: skip
		// building the whole command tree, which its memory would keep.
		return runtime.RunShim(args[1])
	}
	a := &app{stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin}
	root := a.rootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var exit exitError
	if errors.As(err, &exit) {
		return exit.code
	}
	fmt.Fprintf(a.stderr, "moat: %v\n", err)
	if hint := hintFor(err); hint != "" {
		fmt.Fprintf(a.stderr, "hint: %s\n", hint)
	}
	return errs.ExitCode(err)
}

// exitError carries a status a command decided on (a debug tool's exit
// code), with nothing more to print.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "moat",
		Short:         "A self-hosted cloud of sealed nodes, reached only through SSH",
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.setupLogging(cmd)
		},
	}
	root.PersistentFlags().BoolVar(&a.json, "json", false, "print machine-readable JSON")
	root.PersistentFlags().StringVar(&a.logLevel, "log-level", os.Getenv("MOAT_LOG_LEVEL"), "log level: debug, info, warn, error (default: info for daemons, warn for commands)")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w\nsee: %s --help", err, cmd.CommandPath())}
	})
	root.AddCommand(a.nodeCommand(), a.runtimeCommand(), a.imageCommand(), a.debugExecCommand(), a.devCommand(), a.gateCommand(),
		a.initCommand(), a.masterCommand(), a.deployCommand(), a.appsCommand(), a.psCommand(), a.historyCommand(),
		a.rollbackCommand(), a.scaleCommand(), a.rmCommand(), a.promoteCommand(), a.logsCommand(), a.debugCommand(), a.dialCommand())
	return root
}

// usageError is a command-line mistake: exit status 2.
type usageError struct{ error }

func (u usageError) Unwrap() []error { return []error{u.error, errs.ErrInvalid} }

// daemon marks commands that run for long and log as they go.
const daemon = "daemon"

func (a *app) setupLogging(cmd *cobra.Command) error {
	name := a.logLevel
	if name == "" {
		name = "warn"
		if cmd.Annotations[daemon] != "" {
			name = "info"
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(name)); err != nil {
		return usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", a.logLevel)}
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level})))
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// hintFor suggests what to do about common failures.
func hintFor(err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, errs.ErrUnavailable) && strings.Contains(msg, "connect: no such file"):
		return "is the node daemon running? start it with: moat node serve --root /var/lib/moat"
	case errors.Is(err, errs.ErrUnavailable) && strings.Contains(msg, "permission denied"):
		return "the node socket belongs to root: run as root"
	}
	return ""
}
