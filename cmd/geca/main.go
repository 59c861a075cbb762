// Command geca runs and inspects Generative Cellular Automata: the GUI by
// default, and headless subcommands for sampling, debugging and training.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"

	"geca/engine/compute"
)

// version is set at link time (-ldflags "-X main.version=...").
var version = "0.1.0-dev"

// command is one subcommand. Each lives in its own file and registers itself
// from init, so main.go never changes when a command is added.
type command struct {
	name    string
	summary string // one line for `geca help`
	usage   string // argument synopsis, e.g. "--ckpt FILE --out OUT.png"
	run     func(args []string) error
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

// usageError marks errors caused by how geca was called; they exit with 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// newFlags returns a flag set for a subcommand whose errors come back as
// usage errors instead of exiting the process.
func newFlags(c *command) *flag.FlagSet {
	fs := flag.NewFlagSet("geca "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args and turns flag errors into usage errors that show the
// command's synopsis.
func parseFlags(fs *flag.FlagSet, c *command, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printCommandHelp(os.Stdout, c, fs)
			return errHelpShown
		}
		return usagef("%v\nusage: geca %s %s", err, c.name, c.usage)
	}
	return nil
}

var errHelpShown = errors.New("help shown")

func printCommandHelp(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "geca %s: %s\n\nusage: geca %s %s\n\nflags:\n", c.name, c.summary, c.name, c.usage)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

func main() {
	os.Exit(run(os.Args[1:]))
}

// defaultCommand runs when geca is called without a subcommand (the GUI once
// it is registered as "view").
const defaultCommand = "view"

func run(args []string) int {
	name := defaultCommand
	if len(args) > 0 {
		switch a := args[0]; {
		case a == "-h", a == "-help", a == "--help":
			name, args = "help", args[1:]
		case a == "-version", a == "--version":
			name, args = "version", args[1:]
		case !strings.HasPrefix(a, "-"):
			name, args = a, args[1:]
		}
	}
	switch name {
	case "help":
		if len(args) > 0 {
			c, ok := commands[args[0]]
			if !ok {
				fmt.Fprintf(os.Stderr, "geca help: unknown command %q\nRun 'geca help' for the list of commands.\n", args[0])
				return 2
			}
			// Flags are declared inside each command's run; -h prints them.
			_ = c.run([]string{"-h"})
			return 0
		}
		printHelp(os.Stdout)
		return 0
	case "version":
		fmt.Println(versionLine())
		return 0
	}
	c, ok := commands[name]
	switch {
	case !ok && name == defaultCommand:
		fmt.Fprintf(os.Stderr, "geca: this build has no viewer (command %q) yet.\nRun 'geca help' for the commands it has.\n", name)
		return 2
	case !ok:
		fmt.Fprintf(os.Stderr, "geca: unknown command %q\nRun 'geca help' for the list of commands.\n", name)
		return 2
	}
	err := c.run(args)
	switch {
	case err == nil, errors.Is(err, errHelpShown):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintf(os.Stderr, "geca %s: %v\n", name, err)
		return 2
	default:
		fmt.Fprintf(os.Stderr, "geca %s: %v\n", name, err)
		return 1
	}
}

// versionLine is what `geca version` prints: the version, the commit when
// the build recorded one, the Go toolchain and platform, and the BLAS the
// binary multiplies matrices with.
func versionLine() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			v += "+" + rev + dirty
		}
	}
	return fmt.Sprintf("geca %s (%s %s/%s, BLAS: %s)", v, runtime.Version(), runtime.GOOS, runtime.GOARCH, compute.BLASName)
}

func printHelp(w io.Writer) {
	fmt.Fprintf(w, "geca %s: Generative Cellular Automata, grown one pix-cell at a time.\n\n", version)
	fmt.Fprintln(w, "usage: geca [command] [flags]   (no command opens the viewer)")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "  %-10s %s\n  %-10s %s\n", "help", "show this help, or a command's flags: geca help COMMAND", "version", "print the version")
}
