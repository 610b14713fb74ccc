package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestREADMEJSONAPI replays the console blocks of the README's "The JSON
// API and the console" section like the tour: 'goatdb serve' starts in
// the background on a free port (its output shown up to the console's
// address), goatdb commands run in-process, "NAME=VALUE" sets a shell
// variable, and each curl command is sent with net/http to the server
// (curlFlags lists the flags it takes) and its answer printed as curl
// prints it, headers included with -i. Tokens, ids, cursors, times, dates
// and request ids differ from the README's: tokens, ids and cursors are
// paired with the README's in order of appearance and must stay
// consistent (a command that uses one gets this run's), the others are
// not compared. A -N stream is read up to as many lines as the README
// shows, then closed.
func TestREADMEJSONAPI(t *testing.T) {
	readme := readREADME(t)
	blocks := consoleBlocks(t, readme, "The JSON API and the console", false)

	tmp := t.TempDir()
	t.Chdir(tmp)
	t.Setenv("GOATDB_DIR", filepath.Join(tmp, "goatdb-data"))
	s := &apiTour{
		tour: &tour{
			t:          t,
			tmpDirs:    tempDirForms(t, tmp),
			commits:    newIDMap("commit id"),
			sessions:   newIDMap("session id"),
			codes:      newIDMap("login code"),
			serveUntil: "goatdb: console on ",
		},
		tokens:  newIDMap("token"),
		cursors: newIDMap("cursor"),
		vars:    map[string]string{},
	}
	curls := 0
	for _, b := range blocks {
		for _, st := range b {
			if s.step(st) {
				curls++
			}
		}
	}
	if curls == 0 {
		t.Fatal("the section has no curl command")
	}
}

// apiTour is the state of the JSON API's replay: the tour's, and the
// tokens, cursors and shell variables.
type apiTour struct {
	*tour
	tokens  *idMap
	cursors *idMap
	vars    map[string]string
}

var (
	tokenRE = regexp.MustCompile(`\bgdbt_[A-Za-z0-9_-]+`)
	// cursorRE finds cursors where the API shows or takes them; group 2
	// is the cursor.
	cursorRE   = regexp.MustCompile(`("cursor":"|\nid: |since=)([0-9a-z]+\.[0-9a-z]+)`)
	shortIDRE  = regexp.MustCompile(`\b[0-9a-f]{12}\b`)
	apiTimeRE  = regexp.MustCompile(`\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z\b`)
	dateRE     = regexp.MustCompile(`(?m)^Date: .+$`)
	requestRE  = regexp.MustCompile(`(?m)^X-Request-Id: \S+$`)
	assignRE   = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)=(\S+)$`)
	varRE      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`)
	curlPrefix = "curl "
)

// step replays one command and reports whether it was a curl command.
func (s *apiTour) step(st step) bool {
	t := s.t
	t.Helper()
	where := fmt.Sprintf("README line %d: $ %s", st.line, st.cmd)
	switch m := assignRE.FindStringSubmatch(st.cmd); {
	case m != nil:
		v, err := s.actual(m[2])
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		s.vars[m[1]] = v
		reportOutput(t, st, "", joinLines(st.want))
	case strings.HasPrefix(st.cmd, curlPrefix):
		s.compareAPI(st, s.curl(where, st))
		return true
	default:
		s.tour.step(st)
	}
	return false
}

// actual turns a word of the README into this run's: ids, codes, the
// server's URL, tokens and cursors.
func (s *apiTour) actual(w string) (string, error) {
	w, err := s.actualWord(w)
	if err != nil {
		return "", err
	}
	if w, err = s.tokens.toActual(w, tokenRE); err != nil {
		return "", err
	}
	return s.cursors.groupToActual(w, cursorRE)
}

// compareAPI normalises what varies in an answer and compares it with the
// README's.
func (s *apiTour) compareAPI(st step, got string) {
	want := joinLines(st.want)
	got = s.commits.toREADME(got, want, commitRE)
	got = shortIDRE.ReplaceAllStringFunc(got, func(id string) string {
		for actual, readme := range s.commits.fromRun {
			if strings.HasPrefix(actual, id) {
				return readme[:len(id)]
			}
		}
		return id
	})
	got = s.sessions.toREADME(got, want, sessionRE)
	got = s.tokens.toREADME(got, want, tokenRE)
	got = s.cursors.groupToREADME(got, want, cursorRE)
	got = strings.ReplaceAll(got, s.url, readmeURL)
	for _, n := range []struct {
		re   *regexp.Regexp
		with string
	}{{apiTimeRE, "TIME"}, {dateRE, "Date: DATE"}, {requestRE, "X-Request-Id: ID"}} {
		got = n.re.ReplaceAllString(got, n.with)
		want = n.re.ReplaceAllString(want, n.with)
	}
	reportOutput(s.t, st, got, want)
}

// groupToREADME is toREADME for the ids in group 2 of re's matches.
func (m *idMap) groupToREADME(got, want string, re *regexp.Regexp) string {
	var gs, ws []string
	for _, x := range re.FindAllStringSubmatch(got, -1) {
		gs = append(gs, x[2])
	}
	for _, x := range re.FindAllStringSubmatch(want, -1) {
		ws = append(ws, x[2])
	}
	for i, g := range gs {
		if _, ok := m.fromRun[g]; ok || i >= len(ws) {
			continue
		}
		if _, taken := m.fromRM[ws[i]]; !taken {
			m.fromRun[g], m.fromRM[ws[i]] = ws[i], g
		}
	}
	return replaceGroup(got, re, func(g string) string {
		if w, ok := m.fromRun[g]; ok {
			return w
		}
		return "<new " + m.kind + " " + g + ">"
	})
}

// groupToActual is toActual for the ids in group 2 of re's matches.
func (m *idMap) groupToActual(w string, re *regexp.Regexp) (string, error) {
	var err error
	w = replaceGroup(w, re, func(id string) string {
		a, ok := m.fromRM[id]
		if !ok && err == nil {
			err = fmt.Errorf("%s %s was not printed by an earlier command", m.kind, id)
		}
		return a
	})
	return w, err
}

// replaceGroup replaces group 2 of every match of re in s with f of it.
func replaceGroup(s string, re *regexp.Regexp, f func(string) string) string {
	return re.ReplaceAllStringFunc(s, func(match string) string {
		x := re.FindStringSubmatch(match)
		return x[1] + f(x[2])
	})
}

// curlFlags are the curl flags the replay takes; others fail the test.
const curlFlags = "-s, -i, -N, -X METHOD, -H HEADER, -d DATA, --json DATA"

// curlRequest is a parsed curl command.
type curlRequest struct {
	method  string
	header  http.Header
	body    *string
	include bool // -i: print the status line and headers
	stream  bool // -N: read the answer as it comes
	url     string
}

// parseCurl parses curl's arguments (after "curl").
func parseCurl(args []string) (curlRequest, error) {
	c := curlRequest{header: http.Header{}}
	value := func(i *int, flag string) (string, error) {
		if *i+1 >= len(args) {
			return "", fmt.Errorf("%s without a value", flag)
		}
		*i++
		return args[*i], nil
	}
	var contentType, accept string
	for i := 0; i < len(args); i++ {
		a := args[i]
		var v string
		var err error
		switch {
		case a == "-X" || a == "--request":
			c.method, err = value(&i, a)
		case a == "-H" || a == "--header":
			if v, err = value(&i, a); err == nil {
				name, val, ok := strings.Cut(v, ":")
				if !ok {
					return c, fmt.Errorf("header %q: want NAME: VALUE", v)
				}
				c.header.Add(name, strings.TrimSpace(val))
			}
		case a == "-d" || a == "--data" || a == "--data-raw":
			if v, err = value(&i, a); err == nil {
				c.body, contentType = &v, "application/x-www-form-urlencoded"
			}
		case a == "--json":
			if v, err = value(&i, a); err == nil {
				c.body, contentType, accept = &v, "application/json", "application/json"
			}
		case a == "--silent" || a == "--include" || a == "--no-buffer":
			c.include = c.include || a == "--include"
			c.stream = c.stream || a == "--no-buffer"
		case len(a) > 1 && a[0] == '-' && a[1] != '-':
			for _, f := range a[1:] {
				switch f {
				case 's':
				case 'i':
					c.include = true
				case 'N':
					c.stream = true
				default:
					return c, fmt.Errorf("flag -%c: the replay takes %s", f, curlFlags)
				}
			}
		case strings.HasPrefix(a, "-"):
			return c, fmt.Errorf("flag %s: the replay takes %s", a, curlFlags)
		case c.url != "":
			return c, fmt.Errorf("two URLs, %s and %s", c.url, a)
		default:
			c.url = a
		}
		if err != nil {
			return c, err
		}
	}
	if c.url == "" {
		return c, errors.New("no URL")
	}
	if c.body != nil && strings.HasPrefix(*c.body, "@") {
		return c, errors.New("data from a file (@FILE): the replay sends only literal data")
	}
	if c.method == "" {
		c.method = http.MethodGet
		if c.body != nil {
			c.method = http.MethodPost
		}
	}
	if contentType != "" && c.header.Get("Content-Type") == "" {
		c.header.Set("Content-Type", contentType)
	}
	c.header.Set("Accept", cmp.Or(c.header.Get("Accept"), accept, "*/*"))
	return c, nil
}

// curl runs a curl command of the README against the server and returns
// what curl would print.
func (s *apiTour) curl(where string, st step) string {
	t := s.t
	t.Helper()
	if s.url == "" {
		t.Fatalf("%s: no server runs yet ('goatdb serve' comes first)", where)
	}
	// The README's ids become this run's before the variables, which
	// hold this run's, expand.
	line, err := s.actual(strings.TrimPrefix(st.cmd, curlPrefix))
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	words, err := shellWords(line, s.vars)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	c, err := parseCurl(words)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var body io.Reader
	if c.body != nil {
		body = strings.NewReader(*c.body)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, c.url, body)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	req.Header = c.header
	req.Header.Set("User-Agent", "curl/8")
	// A transport of its own, which keeps what the server sends, so that
	// -i prints the status line and the headers as they came.
	var tap *tapConn
	tr := &http.Transport{DisableCompression: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				tap = &tapConn{Conn: conn}
				return tap, nil
			}
			return nil, err
		}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	want := len(st.want)
	if c.include {
		head, _, ok := bytes.Cut(tap.bytes(), []byte("\r\n\r\n"))
		if !ok {
			t.Fatalf("%s: the answer's headers did not come whole", where)
		}
		out.Write(bytes.ReplaceAll(head, []byte("\r\n"), []byte("\n")))
		out.WriteString("\n\n")
		want -= bytes.Count(head, []byte("\r\n")) + 2
	}
	if !c.stream {
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		out.Write(b)
		return out.String()
	}
	// A stream does not end: read as many lines as the README shows.
	br := bufio.NewReader(resp.Body)
	for n := 0; n < want; n++ {
		line, err := br.ReadString('\n')
		out.WriteString(line)
		if err != nil {
			break // the test's timeout, or the server ended it: the comparison shows
		}
	}
	return out.String()
}

// tapConn keeps what is read from a connection.
type tapConn struct {
	net.Conn
	mu   sync.Mutex // guards read
	read bytes.Buffer
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	if c.read.Len() < 1<<20 {
		c.read.Write(p[:n])
	}
	c.mu.Unlock()
	return n, err
}

func (c *tapConn) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.read.Bytes())
}

// shellWords splits a command line as a POSIX shell would, for the forms
// the README uses: words, 'literal' parts, "parts" in which $NAME and
// ${NAME} expand (and \ escapes $, `, " and \), and unquoted $NAME.
// Anything else a shell would interpret is refused.
func shellWords(line string, vars map[string]string) ([]string, error) {
	var words []string
	var word strings.Builder
	inWord := false
	expand := func(rest string) (string, int, error) {
		braced := strings.HasPrefix(rest, "{")
		name := varRE.FindString(strings.TrimPrefix(rest, "{"))
		n := len(name)
		if braced {
			if !strings.HasPrefix(rest[1+n:], "}") {
				return "", 0, fmt.Errorf("unterminated ${%s", name)
			}
			n += 2
		}
		v, ok := vars[name]
		if name == "" || !ok {
			return "", 0, fmt.Errorf("$%s is not set by an earlier NAME=VALUE line", name)
		}
		return v, n, nil
	}
	for i := 0; i < len(line); i++ {
		switch ch := line[i]; ch {
		case ' ', '\t':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		case '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated single quote")
			}
			word.WriteString(line[i+1 : i+1+j])
			inWord, i = true, i+1+j
		case '"':
			inWord = true
			for i++; ; i++ {
				if i == len(line) {
					return nil, errors.New("unterminated double quote")
				}
				c := line[i]
				if c == '"' {
					break
				}
				switch {
				case c == '\\' && i+1 < len(line) && strings.IndexByte("$`\"\\", line[i+1]) >= 0:
					i++
					word.WriteByte(line[i])
				case c == '$':
					v, n, err := expand(line[i+1:])
					if err != nil {
						return nil, err
					}
					word.WriteString(v)
					i += n
				case c == '`':
					return nil, errors.New("unsupported command substitution")
				default:
					word.WriteByte(c)
				}
			}
		case '$':
			v, n, err := expand(line[i+1:])
			if err != nil {
				return nil, err
			}
			word.WriteString(v)
			inWord, i = true, i+n
		case '\\', '`', '|', ';', '&', '<', '>', '(', ')', '*', '?', '[', ']', '{', '}', '~', '#', '!':
			return nil, fmt.Errorf("unsupported shell syntax %q outside quotes", string(ch))
		default:
			word.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, nil
}
