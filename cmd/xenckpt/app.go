package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// app is one invocation of the command: its streams and global flags. No
// package-level mutable state: tests run many apps in parallel in-process.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	jsonOut bool
	verbose int
	// progress forces progress bars on (true) or off (false); unset
	// means "when stdout is a terminal".
	progress optionalBool

	// events prints library progress events as JSON lines on stderr.
	events bool
	// start is when the command started (for event timestamps).
	start time.Time

	log *slog.Logger
}

// optionalBool is a tri-state flag value.
type optionalBool struct{ set, v bool }

func (o *optionalBool) String() string {
	if !o.set {
		return "auto"
	}
	return strconv.FormatBool(o.v)
}

func (o *optionalBool) Set(s string) error {
	if s == "auto" {
		*o = optionalBool{}
		return nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*o = optionalBool{set: true, v: v}
	return nil
}

func (o *optionalBool) Type() string        { return "bool" }
func (o *optionalBool) IsBoolFlag() bool    { return true } // for -progress without a value
func (o *optionalBool) NoOptDefVal() string { return "true" }

// run executes the command line args and returns the process exit code. It
// is main without os.Exit, so tests run commands in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, start: time.Now()}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	if strings.HasPrefix(err.Error(), "unknown command") {
		code = exitUsage // cobra's error for a mistyped command
	}
	if ctx.Err() != nil && code == exitFailure {
		code = exitCancelled
	}
	a.reportError(err, code)
	return code
}

// reportError prints err once: as a JSON object on stdout with --json (so
// a script reading stdout always gets one document), else on stderr.
func (a *app) reportError(err error, code int) {
	if _, done := errors.AsType[*printedError](err); done && a.jsonOut {
		return
	}
	if a.jsonOut {
		_ = a.writeJSON(struct {
			Error errorJSON `json:"error"`
		}{errorJSON{Message: err.Error(), Class: exitNames[code], ExitCode: code}})
		return
	}
	fmt.Fprintf(a.stderr, "xenckpt: %v\n", err)
	if code == exitUsage {
		fmt.Fprintln(a.stderr, "Run 'xenckpt help' for usage.")
	}
}

// errorJSON is the "error" object printed with --json on failure.
type errorJSON struct {
	Message  string `json:"message"`
	Class    string `json:"class"`
	ExitCode int    `json:"exit_code"`
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "xenckpt",
		Short: "Checkpoint, save, restore, migrate and replicate Xen guests",
		Long: `xenckpt checkpoints, saves, restores, live-migrates and replicates (Remus)
Xen guest domains. A suspend is always either cancelled (the guest keeps
running) or completed only once the image or the receiver is safe; any
failure or Ctrl-C cancels it, so the guest is never left suspended.

Every domain command runs on a real dom0 (as root) or, with --sim, on an
in-process simulated Xen host. "xenckpt demo" runs the whole story on the
simulator.

Exit codes: 0 ok, 1 other failure, 2 usage, 3 not found, 4 unsupported (the
guest cannot cancel a suspend, ...), 5 guest misbehaved, 6 bad image,
7 transfer failed (source resumed), 8 no access to Xen, 130 interrupted
(guest resumed). With --json every command prints one JSON object; see
docs/cli.md for its fields.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			a.setupLogging()
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return withCode(exitUsage, err)
	})
	pf := root.PersistentFlags()
	pf.BoolVar(&a.jsonOut, "json", false, "print the result as one JSON object on stdout (stable field names, see docs/cli.md)")
	pf.CountVarP(&a.verbose, "verbose", "v", "structured logs on stderr (-v info, -vv debug)")
	pf.BoolVar(&a.events, "events", false, "progress events (phase, round, pages, dirty rate, bandwidth, pause) as JSON lines on stderr")
	pf.Var(&a.progress, "progress", "progress bars on stderr: true, false or auto (when stdout is a terminal)")
	pf.Lookup("progress").NoOptDefVal = "true"

	root.AddCommand(a.subcommands()...)
	return root
}

// setupLogging builds the slog logger from -v. Without -v nothing is logged.
func (a *app) setupLogging() {
	if a.verbose == 0 {
		a.log = slog.New(slog.DiscardHandler)
		return
	}
	level := slog.LevelInfo
	if a.verbose > 1 {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	if a.jsonOut {
		a.log = slog.New(slog.NewJSONHandler(a.stderr, opts))
		return
	}
	a.log = slog.New(slog.NewTextHandler(a.stderr, opts))
}

// writeJSON prints v as indented JSON on stdout.
func (a *app) writeJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// emit prints a command's result: v as JSON with --json, else text(w).
func (a *app) emit(v any, text func(w io.Writer)) error {
	if a.jsonOut {
		return a.writeJSON(v)
	}
	text(a.stdout)
	return nil
}

// showProgress reports whether progress bars are drawn.
func (a *app) showProgress() bool {
	if a.progress.set {
		return a.progress.v
	}
	if a.jsonOut {
		return false
	}
	return isTerminal(a.stdout)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty(f)
}

// exactArgs is cobra.ExactArgs with a usage exit code.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("expected %s, got %d argument(s)", names, len(args))
		}
		return nil
	}
}
