package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The README's tour was recorded in this directory; the test's temporary
// directory stands for it.
const tourDir = "/tmp/tour"

const readmePath = "../../README.md"

// TestREADMETour replays the console blocks of the README's "The goatdb
// command" section, in order, in one temporary working directory, and
// checks that every command prints what the README shows. A command the
// replay cannot run fails the test, so the README cannot drift from the
// command.
//
// A block is lines "$ COMMAND", each followed by its output (standard
// output and standard error, merged as a terminal shows them) up to the
// next "$ " line. Commands are words, optionally in single quotes, with
// "< FILE" and "> FILE" redirections; the commands are goatdb (run
// in-process), "echo $?", "cat FILE" (which creates FILE from the shown
// output when it does not exist yet) and "cp SRC DST". Commit ids, session
// ids, the times of log entries and the temporary directory differ from
// the README's: ids are matched to the README's in order of appearance and
// must stay consistent, so an id used in a later command is the one an
// earlier command printed.
func TestREADMETour(t *testing.T) { replay(t, readmeSection{name: "The goatdb command"}) }

// TestREADMEQueries replays the console blocks of the README's "Queries"
// section after the tour, whose data they query. The section's Go blocks
// are examples run elsewhere.
func TestREADMEQueries(t *testing.T) {
	replay(t, readmeSection{name: "The goatdb command"}, readmeSection{name: "Queries", mixed: true})
}

// readmeSection names a README section to replay; mixed says it also has
// fenced blocks other than console ones, which the replay leaves alone.
type readmeSection struct {
	name  string
	mixed bool
}

// replay replays the console blocks of README sections, in order, in one
// temporary working directory.
func replay(t *testing.T, secs ...readmeSection) {
	readme := readREADME(t)
	var blocks [][]step
	for _, sec := range secs {
		blocks = append(blocks, consoleBlocks(t, readme, sec.name, sec.mixed)...)
	}

	tmp := t.TempDir()
	t.Chdir(tmp)
	t.Setenv("GOATDB_DIR", filepath.Join(tmp, "goatdb-data"))

	s := &tour{
		t:        t,
		tmpDirs:  tempDirForms(t, tmp),
		commits:  newIDMap("commit id"),
		sessions: newIDMap("session id"),
		codes:    newIDMap("login code"),
	}
	for _, b := range blocks {
		for _, st := range b {
			s.step(st)
		}
	}
}

// TestREADMETwoCommands checks the README's "Two commands" block: it runs
// the tests with 'go test ./...' and the command with a verb that exists,
// which runs and exits 0.
func TestREADMETwoCommands(t *testing.T) {
	readme := readREADME(t)
	sec, start := section(t, readme, "Two commands")
	block, ln := fencedBlock(t, sec, start, "sh")

	var goTest, badVerb bool
	var verbArgs []string
	for i, line := range block {
		cmd, _, _ := strings.Cut(line, "#")
		cmd = strings.TrimSpace(cmd)
		switch {
		case cmd == "go test ./...":
			goTest = true
		case strings.HasPrefix(cmd, "go run ./cmd/goatdb "):
			verbArgs = strings.Fields(strings.TrimPrefix(cmd, "go run ./cmd/goatdb "))
			if lookup(verbArgs[0]) == nil {
				t.Errorf("README line %d: %q: goatdb has no command %q", ln+i, line, verbArgs[0])
				verbArgs, badVerb = nil, true
			}
		}
	}
	if !goTest {
		t.Errorf("README line %d: the Two commands block does not say 'go test ./...'", ln)
	}
	if verbArgs == nil {
		if badVerb {
			t.FailNow()
		}
		t.Fatalf("README line %d: the Two commands block has no 'go run ./cmd/goatdb VERB' of a goatdb command", ln)
	}

	tmp := t.TempDir()
	t.Chdir(tmp)
	t.Setenv("GOATDB_DIR", filepath.Join(tmp, "goatdb-data"))
	limit := 5 * time.Second
	if verbArgs[0] == "serve" {
		// The server runs until stopped: stop it after a moment, on a
		// free loopback port. It must have started and stop cleanly.
		verbArgs = append(verbArgs, "--addr", "127.0.0.1:0")
		limit = 500 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	var out bytes.Buffer
	w := &lockedWriter{w: &out}
	if code := run(ctx, verbArgs, strings.NewReader(""), w, w); code != exitOK {
		t.Errorf("goatdb %s: exit %d, want 0; output:\n%s", strings.Join(verbArgs, " "), code, out.String())
	}
}

// step is one command of a console block and the output the README shows
// for it.
type step struct {
	line int    // README line of the command
	cmd  string // after "$ "
	want []string
}

func readREADME(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(b), "\n")
}

// section returns the lines of the "## name" section, heading excluded,
// and the README line number of its first line.
func section(t *testing.T, lines []string, name string) ([]string, int) {
	t.Helper()
	for i, l := range lines {
		if l != "## "+name {
			continue
		}
		end := len(lines)
		for j := i + 1; j < len(lines); j++ {
			if strings.HasPrefix(lines[j], "## ") {
				end = j
				break
			}
		}
		return lines[i+1 : end], i + 2
	}
	t.Fatalf("README has no section %q", "## "+name)
	return nil, 0
}

// fencedBlock returns the lines of the first ```lang block in sec and the
// README line number of its first line.
func fencedBlock(t *testing.T, sec []string, start int, lang string) ([]string, int) {
	t.Helper()
	for i, l := range sec {
		if l != "```"+lang {
			continue
		}
		for j := i + 1; j < len(sec); j++ {
			if strings.HasPrefix(sec[j], "```") {
				return sec[i+1 : j], start + i + 1
			}
		}
		t.Fatalf("README line %d: ```%s block is not closed", start+i, lang)
	}
	t.Fatalf("README: no ```%s block after line %d", lang, start)
	return nil, 0
}

// consoleBlocks parses the ```console blocks of a section into steps.
// Unless the section is mixed, any other fenced block in it is an error:
// the section is for commands the test replays.
func consoleBlocks(t *testing.T, lines []string, name string, mixed bool) [][]step {
	t.Helper()
	sec, start := section(t, lines, name)
	var blocks [][]step
	for i := 0; i < len(sec); i++ {
		l := sec[i]
		if !strings.HasPrefix(l, "```") {
			continue
		}
		if l != "```console" && mixed {
			for i++; i < len(sec) && !strings.HasPrefix(sec[i], "```"); i++ {
			}
			continue
		}
		if l != "```console" {
			t.Fatalf("README line %d: %q in section %q: only ```console blocks, which TestREADMETour replays, belong there", start+i, l, name)
		}
		var b []step
		closed := false
		for i++; i < len(sec); i++ {
			l := sec[i]
			if strings.HasPrefix(l, "```") {
				closed = true
				break
			}
			if cmd, ok := strings.CutPrefix(l, "$ "); ok {
				b = append(b, step{line: start + i, cmd: cmd})
				continue
			}
			if len(b) == 0 {
				t.Fatalf("README line %d: output %q before the block's first \"$ \" command", start+i, l)
			}
			b[len(b)-1].want = append(b[len(b)-1].want, l)
		}
		if !closed {
			t.Fatalf("README section %q: ```console block is not closed", name)
		}
		if len(b) == 0 {
			t.Fatalf("README line %d: empty ```console block", start+i)
		}
		blocks = append(blocks, b)
	}
	if len(blocks) == 0 {
		t.Fatalf("README section %q has no ```console block", name)
	}
	return blocks
}

// tour is the state of a replay.
type tour struct {
	t        *testing.T
	tmpDirs  []string // the temporary directory as the command may print it
	commits  *idMap
	sessions *idMap
	codes    *idMap // one-time login codes of 'goatdb user add'
	status   int    // of the last command, for echo $?
	url      string // the server 'goatdb serve' started, standing for readmeURL
	// serveUntil, if set, is the prefix of the last line of serve's output
	// that the README shows; else the "serving" line is.
	serveUntil string
}

// readmeURL is the server URL of the README's sync walk-through; the
// replay's server listens on a free port instead.
const readmeURL = "http://127.0.0.1:8080"

// TestREADMESync replays the README's "Sync" section like the tour: its
// first block starts 'goatdb serve' (in the background, on a free port,
// stopped when the test ends), the others run in a second "terminal".
// Byte counts in sync reports vary with signatures and compression and
// are not compared, nor are the times of expiries (RFC 3339 to the
// second); login codes are matched like ids.
func TestREADMESync(t *testing.T) { replay(t, readmeSection{name: "Sync"}) }

// serve starts 'goatdb serve' in the background on a free port and
// returns its output up to its "serving" line (the one before says if it
// created the data directory).
func (s *tour) serve(where string, c shellCmd) string {
	t := s.t
	t.Helper()
	if s.url != "" {
		t.Fatalf("%s: a server is running already", where)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	w := &lockedWriter{w: &out}
	done := make(chan int, 1)
	go func() { done <- run(ctx, append(c.args[1:], "--addr", "127.0.0.1:0"), strings.NewReader(""), w, w) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("%s: exit %d after stop; output:\n%s", where, code, w.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		lines := splitLines(w.String())
		if !strings.HasSuffix(w.String(), "\n") && len(lines) > 0 {
			lines = lines[:len(lines)-1] // not complete yet
		}
		for n, line := range lines {
			if i := strings.Index(line, " on http://"); i >= 0 && strings.HasPrefix(line, "goatdb: serving ") {
				s.url = line[i+len(" on "):]
			}
			if s.url != "" && strings.HasPrefix(line, cmp.Or(s.serveUntil, "goatdb: serving ")) {
				return joinLines(lines[:n+1])
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no 'serving' line after 10s; output:\n%s", where, w.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var byteCountRE = regexp.MustCompile(`\(\d+(\.\d+)? (B|kB|MB)\)`)

var (
	commitRE    = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
	sessionRE   = regexp.MustCompile(`\b[A-Z2-7]{52}\b`)
	loginCodeRE = regexp.MustCompile(`\b[A-Z2-7]{8}-[A-Z2-7]{8}-[A-Z2-7]{8}\b`)
	timeRE      = regexp.MustCompile(`"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)"`)
	expiryRE    = regexp.MustCompile(`\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\b`)
)

// shellCmd is a parsed "$ " line.
type shellCmd struct {
	args          []string
	stdin, stdout string // redirections, "" for none
}

func (s *tour) step(st step) {
	t := s.t
	t.Helper()
	where := fmt.Sprintf("README line %d: $ %s", st.line, st.cmd)
	c, err := s.parse(st.cmd)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	if len(c.args) == 0 {
		t.Fatalf("%s: no command", where)
	}
	var out bytes.Buffer
	switch name, args := c.args[0], c.args[1:]; {
	case name == "goatdb" && slices.Contains(args, "serve"):
		out.WriteString(s.serve(where, c))
	case name == "goatdb":
		s.status = s.goatdb(where, c, &out)
	case name == "echo" && len(args) == 1 && args[0] == "$?" && c.stdin == "" && c.stdout == "":
		fmt.Fprintln(&out, s.status)
		s.status = 0
	case name == "cat" && len(args) == 1 && c.stdin == "" && c.stdout == "":
		file := s.local(where, args[0])
		b, err := os.ReadFile(file)
		if errors.Is(err, fs.ErrNotExist) {
			// The README introduces the file by showing it.
			if err := os.WriteFile(file, []byte(joinLines(st.want)), 0o644); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			s.status = 0
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		out.Write(b)
		s.status = 0
	case name == "cp" && len(args) == 2 && c.stdin == "" && c.stdout == "":
		s.cp(where, args[0], args[1])
		s.status = 0
	default:
		t.Fatalf("%s: TestREADMETour cannot run this; it runs goatdb ARGS [< FILE] [> FILE], echo $?, cat FILE and cp SRC DST", where)
	}
	s.compare(st, out.String())
}

// parse splits a command into words: runs of characters other than
// spaces, with single-quoted parts taken literally. Unquoted < and > are
// redirections of the word that follows. Anything else a shell would
// interpret is refused, except the word $? (for echo $?).
func (s *tour) parse(line string) (shellCmd, error) {
	var c shellCmd
	var words []string
	var word strings.Builder
	inWord := false
	end := func() {
		if inWord {
			words = append(words, word.String())
			word.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(line); i++ {
		switch ch := line[i]; ch {
		case ' ', '\t':
			end()
		case '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return c, errors.New("unterminated single quote")
			}
			word.WriteString(line[i+1 : i+1+j])
			inWord = true
			i += j + 1
		case '<', '>':
			if inWord {
				return c, fmt.Errorf("unsupported redirection %q (write %q after a space)", word.String()+string(ch), string(ch))
			}
			if i+1 < len(line) && (line[i+1] == '>' || line[i+1] == '<' || line[i+1] == '&') {
				return c, fmt.Errorf("unsupported redirection %q", line[i:i+2])
			}
			words = append(words, string(ch))
		case '"', '\\', '`', '|', ';', '&', '(', ')', '*', '[', ']', '{', '}', '~', '#', '!':
			return c, fmt.Errorf("unsupported shell syntax %q (only words, single quotes, < FILE and > FILE)", string(ch))
		case '$', '?':
			if line[i:] != "$?" || inWord {
				return c, fmt.Errorf("unsupported shell syntax %q (only the word $? of echo $?)", string(ch))
			}
			words = append(words, "$?")
			i++
		default:
			word.WriteByte(ch)
			inWord = true
		}
	}
	end()
	for i := 0; i < len(words); i++ {
		w := words[i]
		if w != "<" && w != ">" {
			a, err := s.actualWord(w)
			if err != nil {
				return c, err
			}
			c.args = append(c.args, a)
			continue
		}
		if i+1 == len(words) || words[i+1] == "<" || words[i+1] == ">" {
			return c, fmt.Errorf("%s without a file", w)
		}
		i++
		target := &c.stdin
		if w == ">" {
			target = &c.stdout
		}
		if *target != "" {
			return c, fmt.Errorf("two %s redirections", w)
		}
		*target = words[i]
	}
	return c, nil
}

// actualWord turns a word of the README into the one this run needs: the
// README's ids become the ones this run printed for them.
func (s *tour) actualWord(w string) (string, error) {
	w, err := s.commits.toActual(w, commitRE)
	if err != nil {
		return "", err
	}
	if w, err = s.sessions.toActual(w, sessionRE); err != nil {
		return "", err
	}
	if w, err = s.codes.toActual(w, loginCodeRE); err != nil {
		return "", err
	}
	if rest, ok := strings.CutPrefix(w, tourDir); ok && (rest == "" || rest[0] == '/') {
		w = s.tmpDirs[0] + rest
	}
	if s.url != "" {
		w = strings.ReplaceAll(w, readmeURL, s.url)
	}
	return w, nil
}

// goatdb runs the command in-process in the working directory and returns
// its exit status.
func (s *tour) goatdb(where string, c shellCmd, out *bytes.Buffer) int {
	t := s.t
	t.Helper()
	stdin := io.Reader(strings.NewReader(""))
	if c.stdin != "" {
		b, err := os.ReadFile(s.local(where, c.stdin))
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		stdin = bytes.NewReader(b)
	}
	merged := &lockedWriter{w: out}
	stdout := io.Writer(merged)
	var file *os.File
	if c.stdout != "" {
		var err error
		file, err = os.Create(s.local(where, c.stdout))
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		stdout = file
	}
	code := run(t.Context(), c.args[1:], stdin, stdout, merged)
	if file != nil {
		if err := file.Close(); err != nil {
			t.Fatalf("%s: %v", where, err)
		}
	}
	return code
}

func (s *tour) cp(where, src, dst string) {
	t := s.t
	t.Helper()
	b, err := os.ReadFile(s.local(where, src))
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	to := s.local(where, dst)
	if info, err := os.Stat(to); strings.HasSuffix(dst, "/") || err == nil && info.IsDir() {
		to = filepath.Join(to, filepath.Base(src))
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
}

// local checks that a file named in the README stays in the working
// directory.
func (s *tour) local(where, name string) string {
	s.t.Helper()
	p := filepath.FromSlash(strings.TrimSuffix(name, "/"))
	if !filepath.IsLocal(p) {
		s.t.Fatalf("%s: %q is not a relative path inside the working directory", where, name)
	}
	return p
}

// compare checks a command's output against the README's, after
// normalising what differs from run to run.
func (s *tour) compare(st step, got string) {
	t := s.t
	t.Helper()
	for _, d := range s.tmpDirs {
		got = strings.ReplaceAll(got, d, tourDir)
	}
	want := joinLines(st.want)
	got = timeRE.ReplaceAllString(got, `"time":"TIME"`)
	want = timeRE.ReplaceAllString(want, `"time":"TIME"`)
	got = s.commits.toREADME(got, want, commitRE)
	got = s.sessions.toREADME(got, want, sessionRE)
	got = s.codes.toREADME(got, want, loginCodeRE)
	if s.url != "" {
		got = strings.ReplaceAll(got, s.url, readmeURL)
		got = byteCountRE.ReplaceAllString(got, "(N B)")
		want = byteCountRE.ReplaceAllString(want, "(N B)")
		got = expiryRE.ReplaceAllString(got, "TIME")
		want = expiryRE.ReplaceAllString(want, "TIME")
	}
	reportOutput(t, st, got, want)
}

// reportOutput fails the test if a command's output, normalised, differs from
// the README's, showing the lines that differ.
func reportOutput(t *testing.T, st step, got, want string) {
	t.Helper()
	if got == want {
		return
	}
	var d strings.Builder
	fmt.Fprintf(&d, "README line %d: $ %s: output differs from the README", st.line, st.cmd)
	gl, wl := splitLines(got), splitLines(want)
	for i := range max(len(gl), len(wl)) {
		g, w := "(nothing)", "(nothing)"
		if i < len(gl) {
			g = strconv.Quote(gl[i])
		}
		if i < len(wl) {
			w = strconv.Quote(wl[i])
		}
		if g != w {
			fmt.Fprintf(&d, "\n  README line %d:\n    README: %s\n    got:    %s", st.line+1+i, w, g)
		}
	}
	if got != "" && !strings.HasSuffix(got, "\n") {
		d.WriteString("\n  (the output does not end in a newline)")
	}
	fmt.Fprintf(&d, "\nwhole output, ids as in the README:\n%s", got)
	t.Error(d.String())
}

// idMap pairs the ids this run prints with the README's, in order of
// appearance.
type idMap struct {
	kind    string
	fromRun map[string]string // actual → README
	fromRM  map[string]string // README → actual
}

func newIDMap(kind string) *idMap {
	return &idMap{kind: kind, fromRun: map[string]string{}, fromRM: map[string]string{}}
}

// toREADME pairs the ids in got with those in want, position by position,
// and rewrites got with the README's ids. An id is paired once: a later
// position that pairs it differently shows up as a difference.
func (m *idMap) toREADME(got, want string, re *regexp.Regexp) string {
	gs, ws := re.FindAllString(got, -1), re.FindAllString(want, -1)
	for i, g := range gs {
		if _, ok := m.fromRun[g]; ok || i >= len(ws) {
			continue
		}
		if _, taken := m.fromRM[ws[i]]; taken {
			continue // the README shows an earlier id where this run has a new one
		}
		m.fromRun[g], m.fromRM[ws[i]] = ws[i], g
	}
	return re.ReplaceAllStringFunc(got, func(g string) string {
		if w, ok := m.fromRun[g]; ok {
			return w
		}
		return "<new " + m.kind + " " + g + ">"
	})
}

// toActual rewrites the README's ids in a command word to this run's; an
// id no earlier output showed is an error.
func (m *idMap) toActual(w string, re *regexp.Regexp) (string, error) {
	var err error
	w = re.ReplaceAllStringFunc(w, func(id string) string {
		a, ok := m.fromRM[id]
		if !ok && err == nil {
			err = fmt.Errorf("%s %s was not printed by an earlier command", m.kind, id)
		}
		return a
	})
	return w, err
}

// tempDirForms returns the forms a command may print the temporary
// directory in, longest first.
func tempDirForms(t *testing.T, tmp string) []string {
	t.Helper()
	forms := []string{tmp}
	if real, err := filepath.EvalSymlinks(tmp); err == nil && real != tmp {
		forms = append(forms, real)
	}
	if wd, err := os.Getwd(); err == nil && !slices.Contains(forms, wd) {
		forms = append(forms, wd)
	}
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	return forms
}

func joinLines(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// lockedWriter lets standard output and standard error share one buffer,
// in the order they are written, as a terminal shows them.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// String returns what was written, if w is a *bytes.Buffer.
func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.w.(*bytes.Buffer); ok {
		return b.String()
	}
	return ""
}
