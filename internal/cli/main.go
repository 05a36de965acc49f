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
	stdout   *output // flushed once when the command ends (streams flush as they go)
	stderr   io.Writer
	stdin    io.Reader
	json     bool
	logLevel string
}

// Main runs the moat command line and returns the process exit status:
// 0 only on success, 2 for a mistake on the command line (see
// errs.ExitCode for the others).
func Main(ctx context.Context, args []string) int {
	if len(args) == 2 && args[0] == "shim" {
		// One shim runs per container for as long as it lives: skip
		// building the whole command tree, which its memory would keep.
		return runtime.RunShim(args[1])
	}
	return run(ctx, args, os.Stdin, os.Stdout, os.Stderr)
}

// run is Main with its streams given.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdout: &output{w: stdout}, stderr: stderr, stdin: stdin}
	root := a.rootCommand()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	// What the command printed goes out before any error about it.
	if ferr := a.stdout.Flush(); err == nil {
		err = ferr
	}
	if err == nil {
		return 0
	}
	var exit exitError
	if errors.As(err, &exit) {
		return exit.code
	}
	fmt.Fprintf(a.stderr, "moat: %v\n", err)
	if hint := hintFor(cmd, err); hint != "" {
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
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.PersistentFlags().BoolVar(&a.json, "json", false, "print machine-readable JSON")
	root.PersistentFlags().StringVar(&a.logLevel, "log-level", os.Getenv("MOAT_LOG_LEVEL"), "log level: debug, info, warn, error (default: info for daemons, warn for commands)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(a.nodeCommand(), a.runtimeCommand(), a.imageCommand(), a.debugExecCommand(), a.devCommand(), a.gateCommand(),
		a.initCommand(), a.masterCommand(), a.deployCommand(), a.appsCommand(), a.psCommand(), a.historyCommand(),
		a.rollbackCommand(), a.scaleCommand(), a.rmCommand(), a.promoteCommand(), a.logsCommand(), a.debugCommand(), a.dialCommand(), a.apiCommand(), a.userCommand(), a.contextCommand(), a.whoamiCommand(), a.secretCommand(), a.tenantCommand(), a.auditCommand(), a.alertsCommand(), a.eventsCommand(), a.tunnelCommand(), a.uiCommand())
	root.AddCommand(a.metricsCommand(), a.topCommand())
	root.AddCommand(a.poolCommand(), a.costCommand(), a.autoscalerCommand())
	checkUsage(root)
	return root
}

// usageError is a command-line mistake: exit status 2, and the command's
// usage as a hint.
type usageError struct{ error }

func (u usageError) Unwrap() []error { return []error{u.error, errs.ErrInvalid} }

// checkUsage makes every mistake cobra finds on a command line a
// usageError: a wrong number of arguments, an unknown command, a required
// flag left out. (Unknown flags and bad flag values come through the
// root's flag error function.) A command that only groups others shows
// its help when run alone, and refuses any argument: it can only be a
// mistyped command.
func checkUsage(c *cobra.Command) {
	for _, sub := range c.Commands() {
		checkUsage(sub)
	}
	args := c.Args
	if c.HasSubCommands() && !c.Runnable() {
		args = knownCommand
		c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	}
	if args == nil {
		args = cobra.ArbitraryArgs
	}
	// Cobra checks arguments before required flags: both are checked here.
	c.Args = func(cmd *cobra.Command, a []string) error {
		err := args(cmd, a)
		if err == nil {
			err = cmd.ValidateRequiredFlags()
		}
		if err == nil {
			err = cmd.ValidateFlagGroups()
		}
		if err != nil {
			return usageError{err}
		}
		return nil
	}
}

// knownCommand refuses what a command that only groups others is given.
func knownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	cmd.SuggestionsMinimumDistance = 2 // cobra's default, set only on its own path
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %s?)", s[0])
	}
	return errors.New(msg)
}

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

// hintFor suggests what to do about common failures: for a mistake on
// the command line, the usage of the command it was meant for.
func hintFor(cmd *cobra.Command, err error) string {
	msg := err.Error()
	switch {
	case errors.As(err, new(usageError)) && cmd != nil && cmd.HasAvailableSubCommands():
		return fmt.Sprintf("usage: %s COMMAND (%s --help lists them)", cmd.CommandPath(), cmd.CommandPath())
	case errors.As(err, new(usageError)) && cmd != nil:
		return fmt.Sprintf("usage: %s (more: %s --help)", cmd.UseLine(), cmd.CommandPath())
	case errors.Is(err, errs.ErrUnavailable) && strings.Contains(msg, "connect: no such file"):
		return "is the node daemon running? start it with: moat node serve --root /var/lib/moat"
	case errors.Is(err, errs.ErrUnavailable) && strings.Contains(msg, "permission denied"):
		return "the node socket belongs to root: run as root"
	}
	return ""
}
