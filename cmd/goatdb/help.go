package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

var helpCommand = &command{
	name:    "help",
	args:    "[COMMAND]",
	summary: "print this list, or a command's arguments and flags",
	about:   `Help prints the list of commands, or the usage, description and flags of COMMAND.`,
	setup:   func(*flag.FlagSet) runFunc { return help },
}

func help(e *env, args []string) error {
	switch len(args) {
	case 0:
		printUsage(e.stdout)
		return nil
	case 1:
		cmd := lookup(args[0])
		if cmd == nil {
			return usagef("", "unknown command %q", args[0])
		}
		cmd.printHelp(e.stdout)
		return nil
	}
	return usagef("help", "help takes at most one COMMAND")
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `goatdb reads and writes a goatdb data directory: version-controlled
documents at paths /type/repo/item, one log file per repository /type/repo.

Usage: goatdb [global flags] COMMAND [flags] [ARGS]

Commands:
`)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.name, c.args, c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, `
Global flags (before or after the command):
  --dir DIR       data directory (default $GOATDB_DIR, else ./goatdb-data);
                  created by the first command that writes. The commands
                  that only read (get, ls, log, query, export, verify,
                  backup, whoami) create nothing and work beside 'goatdb
                  serve'.
  --schemas FILE  schema file (default DIR/schemas.json when present)

Flags may come before or after the arguments; after -- everything is an
argument. Exit status: 0 success, 1 not found or a failed check, 2 bad
usage, bad input or any other error, with a one-line message on standard
error. Bad input writes nothing.

Run 'goatdb help COMMAND' for a command's arguments and flags.
`)
}

func (c *command) printHelp(w io.Writer) {
	fmt.Fprintf(w, "Usage: goatdb %s", c.name)
	fs := newFlagSet(c.name)
	if !c.raw {
		c.setup(fs)
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprint(w, " [flags]")
	}
	if c.args != "" {
		fmt.Fprint(w, " "+c.args)
	}
	fmt.Fprintf(w, "\n\n%s\n", strings.TrimSpace(c.about))
	if n > 0 {
		fmt.Fprint(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	fmt.Fprint(w, "\nGlobal flags: --dir DIR, --schemas FILE (see 'goatdb help').\n")
}
