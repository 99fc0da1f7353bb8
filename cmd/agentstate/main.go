// Command agentstate is the agentstate server and its command-line client.
//
// Exit status: 0 on success, 1 when a command fails (an error answered by
// the server, the server unreachable, bad input data), 2 on a usage error
// (unknown command or flag, wrong arguments).
package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the exit status. Tests
// call it with buffers and a fake environment.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{getenv: getenv, stdout: stdout, stderr: stderr}
	root := newRootCmd(a)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var re runtimeError
	if errors.As(err, &re) {
		a.printError(re.err)
		return exitError
	}
	// Anything else failed before a command ran: parsing flags and
	// arguments, finding the command.
	a.printUsageError(cmd, err)
	return exitUsage
}

// usageError is a wrong command line: exit status 2 and a pointer to --help.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// runtimeError marks an error returned by a command's RunE: the command
// line was right and running it failed (exit status 1).
type runtimeError struct{ err error }

func (e runtimeError) Error() string { return e.err.Error() }
func (e runtimeError) Unwrap() error { return e.err }

// markRuntime wraps the RunE of cmd and its subcommands so that the errors
// they return are told apart from cobra's own (usage) errors. A RunE may
// still return a usageError.
func markRuntime(cmd *cobra.Command) {
	if f := cmd.RunE; f != nil {
		cmd.RunE = func(c *cobra.Command, args []string) error {
			err := f(c, args)
			var ue usageError
			if err == nil || errors.As(err, &ue) {
				return err
			}
			return runtimeError{err}
		}
	}
	for _, sub := range cmd.Commands() {
		markRuntime(sub)
	}
}
