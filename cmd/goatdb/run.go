package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/schema"
)

// Exit statuses.
const (
	exitOK    = 0 // success
	exitFail  = 1 // not found, or a check failed
	exitUsage = 2 // bad usage, bad input, or any other error
)

// env is what a command runs with: the standard streams and the global
// flags. One env serves one run.
type env struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer

	dir     string // --dir
	schemas string // --schemas
	quiet   bool   // discard library warnings (verify reports them itself)

	registry *schema.Registry // loaded on first use by reg
}

// runFunc runs a command with its positional arguments.
type runFunc func(e *env, args []string) error

// command is one verb. setup registers the verb's flags on fs and returns
// the function that runs it with their values, so that help can list the
// flags without running anything.
type command struct {
	name    string
	args    string // positional arguments, for the usage line
	summary string // one line, for the command list
	about   string // paragraphs for 'goatdb help NAME'
	raw     bool   // pass the arguments unparsed (serve)
	setup   func(fs *flag.FlagSet) runFunc
}

// commands in the order help lists them; set in init because help refers
// to the list.
var commands []*command

func init() {
	commands = []*command{
		initCommand, putCommand, getCommand, rmCommand, lsCommand, queryCommand, logCommand, diffCommand,
		importCommand, exportCommand, verifyCommand, gcCommand, purgeCommand, backupCommand, schemaCommand,
		serveCommand, rootCommand, nodeCommand, clusterCommand, devCommand, userCommand, sessionCommand, syncCommand, rejectedCommand, reauthorCommand,
		discardCommand, loginCommand, whoamiCommand, logoutCommand, versionCommand, helpCommand,
	}
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// run is the whole program: it parses the global flags, runs the command
// and returns the exit status. Everything it prints goes to stdout and
// stderr; a failure is one line on stderr starting with "goatdb:".
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, dir: defaultDir()}
	fs := newFlagSet("goatdb")
	e.globalFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout)
			return exitOK
		}
		return report(stderr, usagef("", "%s", flagMessage(err)))
	}
	if fs.NArg() == 0 {
		printUsage(stderr)
		return exitUsage
	}
	cmd := lookup(fs.Arg(0))
	if cmd == nil {
		return report(stderr, usagef("", "unknown command %q", fs.Arg(0)))
	}
	return report(stderr, e.exec(cmd, fs.Args()[1:]))
}

// exec parses a command's flags (the global ones included, before or after
// the positional arguments) and runs it.
func (e *env) exec(cmd *command, args []string) error {
	if cmd.raw {
		return cmd.setup(nil)(e, args)
	}
	fs := newFlagSet(cmd.name)
	fn := cmd.setup(fs)
	e.globalFlags(fs)
	pos, err := parseInterspersed(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		cmd.printHelp(e.stdout)
		return nil
	case err != nil:
		return usagef(cmd.name, "%s", flagMessage(err))
	case e.dir == "":
		return usagef(cmd.name, "--dir is empty; give the data directory")
	}
	return fn(e, pos)
}

func defaultDir() string {
	if d := os.Getenv("GOATDB_DIR"); d != "" {
		return d
	}
	return "goatdb-data"
}

func (e *env) globalFlags(fs *flag.FlagSet) {
	fs.StringVar(&e.dir, "dir", e.dir, "data `DIR`ectory (default $GOATDB_DIR, else ./goatdb-data)")
	fs.StringVar(&e.schemas, "schemas", e.schemas, "schema `FILE` (default DIR/schemas.json when present)")
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseInterspersed parses flags wherever they are among the positional
// arguments, which it returns in order. After "--" everything is
// positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func flagMessage(err error) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		return "unknown flag " + name
	}
	return msg
}

// exitError is an error whose message is final (report adds no hint) and
// that carries its exit status.
type exitError struct {
	code   int
	err    error
	hinted bool // the message already says what to do about damage
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// failf returns an error that exits with exitFail: not found, or a failed
// check.
func failf(format string, args ...any) error {
	return &exitError{code: exitFail, err: fmt.Errorf(format, args...)}
}

// usagef returns a bad-usage error pointing at the command's help.
func usagef(cmd, format string, args ...any) error {
	help := "'goatdb help'"
	if cmd != "" {
		help = "'goatdb help " + cmd + "'"
	}
	return &exitError{code: exitUsage, err: fmt.Errorf(format+"; see "+help, args...)}
}

// final marks err as explained: report prints it as it is, exit status 2.
func final(err error) error { return &exitError{code: exitUsage, err: err} }

// report prints err as one line on w and returns the exit status.
func report(w io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	code := exitUsage
	msg := err.Error()
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if damaged(err) && (ee == nil || !ee.hinted) {
		msg += "; the log file is damaged or not a goatdb log: 'goatdb verify' lists the problems; restore the file from a backup or move it aside"
	}
	fmt.Fprintln(w, "goatdb: "+oneLine(msg))
	return code
}

func damaged(err error) bool {
	return errors.Is(err, repo.ErrCorrupt) || errors.Is(err, repo.ErrNotLog) || errors.Is(err, repo.ErrVersion)
}

// oneLine drops the library's "goatdb: " prefixes, which report adds once,
// and folds the lines of joined errors.
func oneLine(msg string) string {
	msg = strings.TrimPrefix(msg, "goatdb: ")
	msg = strings.ReplaceAll(msg, ": goatdb: ", ": ")
	msg = strings.ReplaceAll(msg, "\ngoatdb: ", "\n")
	return strings.ReplaceAll(strings.TrimSpace(msg), "\n", "; ")
}

// reg returns the schema registry: --schemas FILE, else DIR/schemas.json
// if it exists, else an empty one.
func (e *env) reg() (*schema.Registry, error) {
	if e.registry != nil {
		return e.registry, nil
	}
	reg := schema.NewRegistry()
	path := e.schemas
	if path == "" {
		if p := filepath.Join(e.dir, "schemas.json"); fileExists(p) {
			path = p
		}
	}
	if path != "" {
		if err := reg.RegisterFile(path); err != nil {
			return nil, final(fmt.Errorf("load schemas from %s: %w; fix the file or give another with --schemas", path, err))
		}
	}
	e.registry = reg
	return reg, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// withDB opens the data directory, runs fn and closes it. The directory
// must be a goatdb data directory (see openError): only init and serve
// create one. Read-only opens create, repair and write nothing, and work
// beside a running writer such as 'goatdb serve'.
func (e *env) withDB(readOnly bool, fn func(db *goatdb.DB) error) error {
	return e.withOpts(goatdb.Options{ReadOnly: readOnly, MustExist: true}, fn)
}

// withOpts opens the data directory with o (schemas and logger added),
// runs fn and closes it.
func (e *env) withOpts(o goatdb.Options, fn func(db *goatdb.DB) error) error {
	reg, err := e.reg()
	if err != nil {
		return err
	}
	o.Schemas = reg
	o.Logger = slog.New(slog.DiscardHandler)
	if !e.quiet {
		o.Logger = slog.New(&warnHandler{mu: new(sync.Mutex), w: e.stderr})
	}
	db, err := goatdb.Open(e.dir, &o)
	if err != nil {
		return e.openError(err, "in use by another goatdb process; stop it, or give another --dir")
	}
	err = fn(db)
	if cerr := db.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close %s: %w", e.dir, cerr))
	}
	return err
}

// openError turns an error of goatdb.Open on the data directory into the
// command's: a directory that is not a data directory exits 1 and says
// how to make one; locked says what to do when another process holds it.
func (e *env) openError(err error, locked string) error {
	switch {
	case errors.Is(err, goatdb.ErrNotDataDir):
		return failf("%v; run 'goatdb init --dir %s' to create one, or check --dir", err, e.dir)
	case errors.Is(err, goatdb.ErrLocked):
		return final(fmt.Errorf("data directory %s is %s", e.dir, locked))
	}
	return &exitError{code: exitUsage, err: err, hinted: true}
}

// warnHandler prints library warnings (a damaged log record skipped, a
// torn tail cut) as "goatdb: warning: message (key=value, ...)".
type warnHandler struct {
	mu    *sync.Mutex // guards w, shared by the handler's copies
	w     io.Writer
	attrs []slog.Attr
}

func (h *warnHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *warnHandler) Handle(_ context.Context, r slog.Record) error {
	var parts []string
	add := func(a slog.Attr) bool {
		parts = append(parts, a.Key+"="+a.Value.String())
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	kind := "warning"
	if r.Level >= slog.LevelError {
		kind = "error"
	}
	line := "goatdb: " + kind + ": " + r.Message
	if len(parts) > 0 {
		line += " (" + strings.Join(parts, ", ") + ")"
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := fmt.Fprintln(h.w, strings.ReplaceAll(line, "\n", "; "))
	return err
}

func (h *warnHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

func (h *warnHandler) WithGroup(string) slog.Handler { return h }
