package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/itemjson"
	"github.com/goatdb/goatdb/query/filter"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/schema"
	"github.com/goatdb/goatdb/syncproto"
)

// The JSON API (see the package doc's routes). It reads and writes
// through the same decisions as the sync route: a repository or item is
// readable exactly when the session's sync view would hold it (the
// Policy's View, with purges), and a write is a commit that the Policy's
// AcceptCommit and AdmitCommit must let through, as a commit arriving by
// sync must. Writes need a web session (its key signs them) on a server
// with authentication; without authentication the server's own session
// signs them.

// Bounds of the JSON API.
const (
	maxAPIBody      = 1 << 20 // bytes of a PUT or PATCH body
	defaultPageSize = 50
	maxPageSize     = 1000
	maxHistory      = 10_000 // commits a history answer lists
)

func (s *Server) apiRoutes(r chi.Router) {
	r.Post("/auth/token", s.handleToken)
	r.Group(func(r chi.Router) {
		r.Use(s.authenticateAPI, s.chargeRequest)
		r.Delete("/auth/token", s.handleTokenDelete)
		r.Get("/auth/session", s.handleSession)
		r.Get("/server", s.handleServerInfo)
		r.Get("/repos", s.handleRepos)
		r.Get("/repos/{type}/{repo}", s.handleRepoInfo)
		r.Get("/repos/{type}/{repo}/items", s.handleItems)
		r.Get("/items/{type}/{repo}/{key}", s.handleGetItem)
		r.Put("/items/{type}/{repo}/{key}", s.handlePutItem)
		r.Patch("/items/{type}/{repo}/{key}", s.handlePatchItem)
		r.Delete("/items/{type}/{repo}/{key}", s.handleDeleteItem)
		r.Get("/items/{type}/{repo}/{key}/history", s.handleHistory)
		r.Get("/items/{type}/{repo}/{key}/diff", s.handleDiff)
		r.Get("/changes", s.handleChanges)
	})
}

// errNoRepo and errNoItem are answered 404 with the same shape whether
// the repository or item is missing or the principal may not read it.
var (
	errNoRepo = errors.New("no such repository")
	errNoItem = errors.New("no such item")
)

func repoPathOf(r *http.Request) string {
	return "/" + chi.URLParam(r, "type") + "/" + chi.URLParam(r, "repo")
}

func itemPathOf(r *http.Request) string {
	return repoPathOf(r) + "/" + chi.URLParam(r, "key")
}

// readable returns repository rp held for the request and the
// principal's view of it (nil: all of it), or errNoRepo when it does not
// exist or the principal may read nothing there.
func (s *Server) readable(ctx context.Context, rp string) (*repo.Repo, syncproto.View, error) {
	if err := goatdb.CheckRepoPath(rp); err != nil {
		return nil, nil, errNoRepo
	}
	if s.policy != nil && !s.policy.readable(ctx, rp) {
		return nil, nil, errNoRepo
	}
	rr, err := s.holdRepo(ctx, rp, false)
	switch {
	case errors.Is(err, goatdb.ErrNotFound):
		return nil, nil, errNoRepo
	case err != nil:
		return nil, nil, err
	}
	v, err := s.readPolicy.View(ctx, rp, rr)
	switch {
	case errors.Is(err, syncproto.ErrUnknownRepo):
		return nil, nil, errNoRepo
	case err != nil:
		return nil, nil, err
	}
	if _, own := v.(*ownView); own {
		return nil, nil, errNoRepo // a drop box: nothing to read
	}
	return rr, v, nil
}

func mayRead(v syncproto.View, key string) bool { return v == nil || v.MayRead(key) }

// readFailed answers an error of readable or of a read.
func (s *Server) readFailed(w http.ResponseWriter, r *http.Request, path string, err error) {
	switch {
	case errors.Is(err, errNoRepo):
		apiError(w, http.StatusNotFound, "repository %s does not exist on this server", path)
	case errors.Is(err, errNoItem), errors.Is(err, goatdb.ErrNotFound):
		apiError(w, http.StatusNotFound, "item %s does not exist on this server", path)
	case errors.Is(err, goatdb.ErrInvalidPath):
		apiError(w, http.StatusBadRequest, "%v", err)
	default:
		s.storageError(w, r, path, err)
	}
}

// apiItem is an item as the JSON API shows it.
type apiItem struct {
	Path    string         `json:"path"`
	Key     string         `json:"key"`
	Head    string         `json:"head"`
	Schema  string         `json:"schema"`
	Deleted bool           `json:"deleted"`
	Time    string         `json:"time,omitempty"`
	Fields  map[string]any `json:"fields"`
}

func toAPIItem(rr *repo.Repo, it goatdb.Item) apiItem {
	_, key, _ := goatdb.SplitPath(it.Path())
	a := apiItem{Path: it.Path(), Key: key, Head: it.Head().String(), Deleted: it.Deleted(), Fields: itemjson.Fields(it.Data())}
	if ns := it.Schema(); ns.NS != "" {
		a.Schema = ns.String()
	}
	if c, ok := rr.Commit(it.Head()); ok {
		a.Time = formatTime(time.UnixMilli(c.Time()))
	}
	return a
}

func etag(id commit.ID) string { return `"` + id.String() + `"` }

// writeItem answers an item with its ETag.
func writeItem(w http.ResponseWriter, status int, rr *repo.Repo, it goatdb.Item) {
	w.Header().Set("ETag", etag(it.Head()))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	b, _ := json.Marshal(toAPIItem(rr, it))
	w.Write(append(b, '\n'))
}

// handleRepos lists the repositories the principal may read.
func (s *Server) handleRepos(w http.ResponseWriter, r *http.Request) {
	paths, err := s.db.Repos()
	if err != nil {
		s.storageError(w, r, "", err)
		return
	}
	type repoEntry struct {
		Path  string `json:"path"`
		Items int    `json:"items"`
	}
	out := []repoEntry{}
	slices.Sort(paths)
	for _, rp := range paths {
		if strings.HasPrefix(rp, "/sys/") {
			if p, ok := PrincipalFrom(r.Context()); ok && !p.Node && !p.Root {
				continue // accounts: only their own certificate is readable, by sync
			}
		}
		rr, v, err := s.readable(r.Context(), rp)
		if err != nil {
			continue // missing, unreadable or unavailable: not listed
		}
		out = append(out, repoEntry{Path: rp, Items: s.countReadable(rr, v)})
	}
	writeJSON(w, struct {
		Repos []repoEntry `json:"repos"`
	}{out})
}

// countReadable counts the live items of rr in view v.
func (s *Server) countReadable(rr *repo.Repo, v syncproto.View) int {
	if v == nil {
		return rr.Count()
	}
	n := 0
	for _, k := range rr.Keys(false) {
		if v.MayRead(k) {
			n++
		}
	}
	return n
}

// cursorOf names a position in a repository's log: its epoch and
// sequence number.
func cursorOf(epoch, seq uint64) string {
	return strconv.FormatUint(epoch, 36) + "." + strconv.FormatUint(seq, 36)
}

func parseCursor(s string) (epoch, seq uint64, ok bool) {
	a, b, found := strings.Cut(s, ".")
	if !found {
		return 0, 0, false
	}
	e, err1 := strconv.ParseUint(a, 36, 64)
	q, err2 := strconv.ParseUint(b, 36, 64)
	return e, q, err1 == nil && err2 == nil
}

func (s *Server) handleRepoInfo(w http.ResponseWriter, r *http.Request) {
	rp := repoPathOf(r)
	if s.redirectUnowned(w, r, rp) {
		return
	}
	rr, v, err := s.readable(r.Context(), rp)
	if err != nil {
		s.readFailed(w, r, rp, err)
		return
	}
	_, seq := rr.CommitsSince(^uint64(0))
	writeJSON(w, struct {
		Path   string `json:"path"`
		Items  int    `json:"items"`
		Cursor string `json:"cursor"`
	}{rp, s.countReadable(rr, v), cursorOf(rr.Epoch(), seq)})
}

// handleItems answers a page of a repository's items: in key order
// (after= the last key of the previous page), or sorted by a field
// (after= the position in the sorted results), filtered by an
// expression of package query/filter.
func (s *Server) handleItems(w http.ResponseWriter, r *http.Request) {
	rp := repoPathOf(r)
	if s.redirectUnowned(w, r, rp) {
		return
	}
	q := r.URL.Query()
	limit := defaultPageSize
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxPageSize {
			apiError(w, http.StatusBadRequest, "limit %q: give a number of items from 1 to %d", l, maxPageSize)
			return
		}
		limit = n
	}
	var match func(item.Item) bool
	if expr := q.Get("filter"); expr != "" {
		f, err := filter.Compile(expr)
		if err != nil {
			apiError(w, http.StatusBadRequest, "filter: %v", err)
			return
		}
		match = func(it item.Item) bool { ok, _ := f.Match(it); return ok }
	}
	desc, _ := strconv.ParseBool(q.Get("desc"))
	rr, v, err := s.readable(r.Context(), rp)
	if err != nil {
		s.readFailed(w, r, rp, err)
		return
	}
	var page []goatdb.Item
	var next string
	if sortBy := q.Get("sort"); sortBy != "" {
		page, next, err = s.sortedPage(r.Context(), rp, v, match, sortBy, desc, q.Get("after"), limit)
		if errors.Is(err, errBadCursor) {
			apiError(w, http.StatusBadRequest, "after %q: a sorted listing continues from the \"next\" of its previous page", q.Get("after"))
			return
		}
	} else {
		page, next, err = s.keyPage(rp, v, match, q.Get("after"), limit)
	}
	if err != nil {
		s.storageError(w, r, rp, err)
		return
	}
	items := make([]apiItem, len(page))
	for i, it := range page {
		items[i] = toAPIItem(rr, it)
	}
	writeJSON(w, struct {
		Items []apiItem `json:"items"`
		Next  string    `json:"next,omitempty"`
	}{items, next})
}

// keyPage reads up to limit readable matching items after key after, in
// key order, and the key to continue from if there are more.
func (s *Server) keyPage(rp string, v syncproto.View, match func(item.Item) bool, after string, limit int) ([]goatdb.Item, string, error) {
	var page []goatdb.Item
	for it, err := range s.db.Range(rp, goatdb.RangeOptions{After: after}) {
		if err != nil {
			return nil, "", err
		}
		_, key, _ := goatdb.SplitPath(it.Path())
		if !mayRead(v, key) || match != nil && !match(it.Data()) {
			continue
		}
		if len(page) == limit {
			_, last, _ := goatdb.SplitPath(page[len(page)-1].Path())
			return page, last, nil
		}
		page = append(page, it)
	}
	return page, "", nil
}

var errBadCursor = errors.New("bad cursor")

// sortedPage runs the query once and answers the results from position
// after ("o" and a number) on.
func (s *Server) sortedPage(ctx context.Context, rp string, v syncproto.View, match func(item.Item) bool, sortBy string, desc bool, after string, limit int) ([]goatdb.Item, string, error) {
	off := 0
	if after != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(after, "o"))
		if !strings.HasPrefix(after, "o") || err != nil || n < 0 {
			return nil, "", errBadCursor
		}
		off = n
	}
	spec := goatdb.QuerySpec{Repo: rp, SortBy: sortBy, Desc: desc, Where: func(it goatdb.Item) bool {
		_, key, _ := goatdb.SplitPath(it.Path())
		return mayRead(v, key) && (match == nil || match(it.Data()))
	}}
	spec.Limit = off + limit + 1 // one more says whether there is a next page
	if spec.Limit <= 0 {         // overflow
		spec.Limit = 0
	}
	items, err := s.db.QueryOnce(ctx, spec)
	if err != nil {
		return nil, "", err
	}
	if off >= len(items) {
		return nil, "", nil
	}
	page := items[off:]
	if len(page) > limit {
		return page[:limit:limit], "o" + strconv.Itoa(off+limit), nil
	}
	return page, "", nil
}

// getReadable reads an item the principal may read, or errNoItem.
func (s *Server) getReadable(ctx context.Context, path string) (*repo.Repo, goatdb.Item, error) {
	rp, key, err := goatdb.SplitPath(path)
	if err != nil {
		return nil, goatdb.Item{}, errNoItem
	}
	rr, v, err := s.readable(ctx, rp)
	if err != nil {
		if errors.Is(err, errNoRepo) {
			err = errNoItem
		}
		return nil, goatdb.Item{}, err
	}
	it, err := s.db.GetAny(path)
	if err != nil || !it.Exists() || !mayRead(v, key) {
		if err == nil || errors.Is(err, goatdb.ErrNotFound) {
			err = errNoItem
		}
		return nil, goatdb.Item{}, err
	}
	return rr, it, nil
}

// readableItem returns the request's item path and the item, if this
// member owns its repository (else it redirected: redirectUnowned) and
// the principal may read it (else it answered as for a missing one).
func (s *Server) readableItem(w http.ResponseWriter, r *http.Request) (string, *repo.Repo, goatdb.Item, bool) {
	path := itemPathOf(r)
	if s.redirectUnowned(w, r, repoPathOf(r)) {
		return "", nil, goatdb.Item{}, false
	}
	rr, it, err := s.getReadable(r.Context(), path)
	if err != nil {
		s.readFailed(w, r, path, err)
		return "", nil, goatdb.Item{}, false
	}
	return path, rr, it, true
}

func (s *Server) handleGetItem(w http.ResponseWriter, r *http.Request) {
	path, rr, it, ok := s.readableItem(w, r)
	if !ok {
		return
	}
	if at := r.URL.Query().Get("at"); at != "" {
		ver, err := parseVersion(at)
		if err != nil {
			apiError(w, http.StatusBadRequest, "at=%s: %v", at, err)
			return
		}
		if it, err = s.itemAt(path, ver); err != nil {
			if errors.Is(err, goatdb.ErrNotFound) || errors.Is(err, errNoItem) {
				apiError(w, http.StatusNotFound, "%s at %s: no such version of this item (give a commit id from its history, or a time after it was created)", path, at)
				return
			}
			s.readFailed(w, r, path, err)
			return
		}
	}
	writeItem(w, http.StatusOK, rr, it)
}

// version is a version of an item named in a query: a commit or a time.
type version struct {
	id commit.ID
	t  time.Time
}

func parseVersion(s string) (version, error) {
	if id, err := commit.ParseID(s); err == nil {
		return version{id: id}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return version{t: t}, nil
	}
	return version{}, errors.New("give a commit id (from the history) or an RFC 3339 time like 2026-12-01T10:00:00Z")
}

func (v version) goatdb() goatdb.Version {
	if v.t.IsZero() {
		return goatdb.VersionAt(v.id)
	}
	return goatdb.VersionAsOf(v.t)
}

func (s *Server) itemAt(path string, v version) (goatdb.Item, error) {
	var it goatdb.Item
	var err error
	if v.t.IsZero() {
		it, err = s.db.GetAt(path, v.id)
	} else {
		it, err = s.db.GetAsOf(path, v.t)
	}
	if errors.Is(err, goatdb.ErrDeleted) {
		err = nil
	}
	if err == nil && !it.Exists() {
		err = errNoItem
	}
	return it, err
}

// writeOptions returns the options every JSON API write takes: signed by
// the web session, admitted by the Policy as a commit arriving by sync
// would be. A signed request (a goatdb client's) cannot write here: the
// server holds no key of its session.
func (s *Server) writeOptions(r *http.Request, path string) ([]goatdb.PutOption, error) {
	var opts []goatdb.PutOption
	if s.accounts != nil {
		ws, ok := webSessionFrom(r.Context())
		if !ok {
			return nil, errSignedWrite
		}
		// The Policy's checks read the accounts' index as the last View
		// left it (as for a sync): bring it up to date first.
		if err := s.accounts.refresh(); err != nil {
			return nil, fmt.Errorf("%w: %w", errAccounts, err)
		}
		opts = append(opts, goatdb.SignedBy(ws.key))
	}
	rp, _, _ := goatdb.SplitPath(path)
	ctx := r.Context()
	opts = append(opts, goatdb.Admit(func(c *commit.Commit, before, after item.Item) error {
		if err := s.readPolicy.AcceptCommit(ctx, rp, c); err != nil {
			return &refusedWrite{err}
		}
		if err := s.readPolicy.AdmitCommit(ctx, rp, c, before, after); err != nil {
			return &refusedWrite{err}
		}
		return nil
	}))
	if r.Header.Get("If-Match") == "*" {
		if it, err := s.db.GetAny(path); err != nil || !it.Exists() {
			return nil, errNoMatch
		}
	}
	if m := r.Header.Get("If-Match"); m != "" && m != "*" {
		id, err := parseETag(m)
		if err != nil {
			return nil, err
		}
		opts = append(opts, goatdb.IfHead(id))
	}
	if r.Header.Get("If-None-Match") == "*" {
		opts = append(opts, goatdb.IfAbsent())
	}
	return opts, nil
}

// errNoMatch is If-Match: * for an item that does not exist.
var errNoMatch = errors.New("no such item")

// conflictReason says why a conditional write found the item otherwise
// than its If-Match or If-None-Match said, in the API's terms (ETags).
func (s *Server) conflictReason(r *http.Request, path string) string {
	it, err := s.db.GetAny(path)
	exists := err == nil && it.Exists()
	switch {
	case r.Header.Get("If-None-Match") == "*" && exists:
		return fmt.Sprintf("item %s exists (its ETag is %s): If-None-Match: * only creates; GET it to update it with If-Match", path, etag(it.Head()))
	case !exists:
		return fmt.Sprintf("item %s does not exist: If-Match names a version of an existing item; PUT it without If-Match to create it", path)
	}
	return fmt.Sprintf("item %s changed since the version If-Match names (%s): its ETag is now %s; GET it again and retry with that ETag",
		path, r.Header.Get("If-Match"), etag(it.Head()))
}

var errSignedWrite = errors.New("the JSON API writes for a web session only: log in with POST /v1/auth/token and send its token (a goatdb client writes locally and syncs)")

// refusedWrite is a write the Policy refused.
type refusedWrite struct{ err error }

func (e *refusedWrite) Error() string { return "refused: " + e.err.Error() }
func (e *refusedWrite) Unwrap() error { return e.err }

type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func parseETag(s string) (commit.ID, error) {
	t := strings.TrimPrefix(strings.TrimSpace(s), "W/")
	t = strings.Trim(t, `"`)
	id, err := commit.ParseID(t)
	if err != nil {
		return commit.ID{}, &badRequest{fmt.Sprintf("If-Match %s is not an ETag of this API (a quoted commit id)", s)}
	}
	return id, nil
}

// writeFailed answers a failed write.
func (s *Server) writeFailed(w http.ResponseWriter, r *http.Request, path string, err error) {
	var rw *refusedWrite
	var br *badRequest
	switch {
	case errors.Is(err, errSignedWrite):
		apiError(w, http.StatusForbidden, "%v", err)
	case errors.As(err, &br):
		apiError(w, http.StatusBadRequest, "%v", err)
	case errors.As(err, &rw):
		apiError(w, http.StatusForbidden, "write to %s %v", path, err)
	case errors.Is(err, goatdb.ErrConflict), errors.Is(err, errNoMatch):
		apiError(w, http.StatusPreconditionFailed, "%s", s.conflictReason(r, path))
	case errors.Is(err, errNoItem), errors.Is(err, errNoRepo), errors.Is(err, goatdb.ErrNotFound):
		apiError(w, http.StatusNotFound, "item %s does not exist on this server", path)
	case errors.Is(err, goatdb.ErrInvalidPath):
		apiError(w, http.StatusBadRequest, "%v", err)
	case isValueError(err):
		var field string
		if m := fieldOfError.FindStringSubmatch(err.Error()); m != nil {
			field = m[1]
		}
		writeAPIErrorField(w, http.StatusUnprocessableEntity, err.Error(), field)
	case errors.Is(err, goatdb.ErrReadOnly):
		apiError(w, http.StatusServiceUnavailable, "this server's database is read-only")
	default:
		s.storageError(w, r, path, err)
	}
}

// fieldOfError finds the field a schema or value error names.
var fieldOfError = regexp.MustCompile(`field "([^"]+)"`)

// isValueError reports whether err says the values written are wrong
// (a schema's check, a value's type).
func isValueError(err error) bool {
	for _, e := range []error{schema.ErrInvalidSchema, schema.ErrUnknownSchema, schema.ErrUnknownField, schema.ErrWrongType,
		schema.ErrMissingField, schema.ErrValidation, schema.ErrUpgrade, item.ErrInvalidValue, item.ErrTypeMismatch} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// readFields reads a JSON object body of at most maxAPIBody bytes, and
// its size.
func readFields(r *http.Request, patch bool) (map[string]any, int, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/json" && !(patch && ct == "application/merge-patch+json") {
		want := "application/json"
		if patch {
			want = "application/merge-patch+json or application/json"
		}
		return nil, 0, &mediaError{fmt.Sprintf("Content-Type %q: send the fields as %s", r.Header.Get("Content-Type"), want)}
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxAPIBody+1))
	if err != nil {
		return nil, 0, &badRequest{fmt.Sprintf("reading the body: %v", err)}
	}
	if len(b) > maxAPIBody {
		return nil, 0, &tooLarge{}
	}
	fields, err := itemjson.DecodeObject(b, "body")
	if err != nil {
		return nil, 0, &badRequest{err.Error()}
	}
	return fields, len(b), nil
}

// chargeWrite counts a JSON write against the quotas a sync push counts
// against: one commit of about size bytes, and a new repository if it
// makes one. It answers the refusal and returns false when over them.
func (s *Server) chargeWrite(w http.ResponseWriter, r *http.Request, rp string, size int) bool {
	accts := s.accountsOf(r)
	if len(accts) == 0 {
		return true
	}
	charges := []pushCharge{
		{1, limitPushCommits, "commits", func(sc *scope) *limiter { return sc.commits }},
		{size, limitPushBytes, "commit bytes", func(sc *scope) *limiter { return sc.bytes }},
	}
	if ok, err := s.db.HasRepo(rp); err == nil && !ok {
		charges = append(charges, pushCharge{1, limitRepos, "new repository", func(sc *scope) *limiter { return sc.repos }})
	}
	now := time.Now()
	for i, c := range charges {
		if rf := charge(accts, c.n, c.limit, c.what, c.pick, now); rf != nil {
			refund(accts, charges[:i])
			s.refuse(w, rf)
			return false
		}
	}
	return true
}

type mediaError struct{ msg string }

func (e *mediaError) Error() string { return e.msg }

type tooLarge struct{}

func (tooLarge) Error() string { return fmt.Sprintf("the body is over %d bytes", maxAPIBody) }

// bodyFailed answers an error of readFields.
func bodyFailed(w http.ResponseWriter, err error) {
	var me *mediaError
	var tl *tooLarge
	switch {
	case errors.As(err, &me):
		apiError(w, http.StatusUnsupportedMediaType, "%v", err)
	case errors.As(err, &tl):
		apiError(w, http.StatusRequestEntityTooLarge, "%v", err)
	default:
		apiError(w, http.StatusBadRequest, "%v", err)
	}
}

// handlePutItem sets an item to the body's fields. Unlike PATCH and
// DELETE, which answer an item the principal may not read as missing, PUT
// may create an item it may not read (a drop box), as a sync push may;
// the rules decide.
func (s *Server) handlePutItem(w http.ResponseWriter, r *http.Request) {
	path := itemPathOf(r)
	if s.redirectUnowned(w, r, repoPathOf(r)) {
		return
	}
	if _, _, err := goatdb.SplitPath(path); err != nil {
		apiError(w, http.StatusBadRequest, "%v", err)
		return
	}
	fields, opts, ok := s.prepareWrite(w, r, path, bodyFields)
	if !ok {
		return
	}
	opts = append(opts, goatdb.Replace())
	if ns := r.URL.Query().Get("schema"); ns != "" {
		opts = append(opts, goatdb.WithSchema(ns))
	}
	existed := false
	if rr, _, err := s.readable(r.Context(), repoPathOf(r)); err == nil {
		_, existed = rr.Head(chi.URLParam(r, "key"))
	}
	if _, err := s.db.Put(path, goatdb.Fields(fields), opts...); err != nil {
		s.writeFailed(w, r, path, err)
		return
	}
	s.answerWrite(w, r, path, map[bool]int{true: http.StatusOK, false: http.StatusCreated}[existed])
}

// The bodies of the writes.
const (
	bodyNone   = iota // DELETE
	bodyFields        // PUT: application/json
	bodyPatch         // PATCH: a merge patch
)

// prepareWrite reads a write's body (of kind body), its options
// (writeOptions) and charges it to the quotas (chargeWrite); on failure
// it has answered and returns false.
func (s *Server) prepareWrite(w http.ResponseWriter, r *http.Request, path string, body int) (map[string]any, []goatdb.PutOption, bool) {
	var fields map[string]any
	var size int
	if body != bodyNone {
		var err error
		if fields, size, err = readFields(r, body == bodyPatch); err != nil {
			bodyFailed(w, err)
			return nil, nil, false
		}
	}
	opts, err := s.writeOptions(r, path)
	if err != nil {
		s.writeFailed(w, r, path, err)
		return nil, nil, false
	}
	if !s.chargeWrite(w, r, repoPathOf(r), size) {
		return nil, nil, false
	}
	return fields, opts, true
}

// answerWrite answers a write with the item as it is now, or, if the
// principal may not read it (a drop box), with 204 and its ETag.
func (s *Server) answerWrite(w http.ResponseWriter, r *http.Request, path string, status int) {
	rr, it, err := s.getReadable(r.Context(), path)
	if err != nil {
		if head, herr := s.db.GetAny(path); herr == nil {
			w.Header().Set("ETag", etag(head.Head()))
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeItem(w, status, rr, it)
}

func (s *Server) handlePatchItem(w http.ResponseWriter, r *http.Request) {
	path, _, _, ok := s.readableItem(w, r)
	if !ok {
		return
	}
	patch, opts, ok := s.prepareWrite(w, r, path, bodyPatch)
	if !ok {
		return
	}
	_, err := s.db.Update(r.Context(), path, func(cur goatdb.Item) (goatdb.Fields, error) {
		if !cur.Exists() || cur.Deleted() {
			return nil, errNoItem
		}
		return mergePatch(cur.Data(), patch), nil
	}, opts...)
	if err != nil {
		s.writeFailed(w, r, path, err)
		return
	}
	s.answerWrite(w, r, path, http.StatusOK)
}

// mergePatch returns the fields a JSON merge patch (RFC 7396) of an
// item's fields sets: null removes a field, an object patches a map field
// key by key, anything else replaces the field.
func mergePatch(cur item.Item, patch map[string]any) goatdb.Fields {
	out := goatdb.Fields{}
	for name, p := range patch {
		obj, isObj := p.(map[string]any)
		v, ok := cur.Get(name)
		if isObj && ok && v.Type() == item.TypeMap {
			old, _ := itemjson.Value(v).(map[string]any)
			out[name] = mergeObject(old, obj)
			continue
		}
		if isObj {
			out[name] = mergeObject(nil, obj) // nulls inside a new object drop out
			continue
		}
		out[name] = p // nil removes
	}
	return out
}

func mergeObject(old, patch map[string]any) map[string]any {
	out := make(map[string]any, len(old)+len(patch))
	for k, v := range old {
		out[k] = v
	}
	for k, p := range patch {
		switch pv := p.(type) {
		case nil:
			delete(out, k)
		case map[string]any:
			prev, _ := out[k].(map[string]any)
			out[k] = mergeObject(prev, pv)
		default:
			out[k] = p
		}
	}
	return out
}

func (s *Server) handleDeleteItem(w http.ResponseWriter, r *http.Request) {
	path, _, _, ok := s.readableItem(w, r)
	if !ok {
		return
	}
	_, opts, ok := s.prepareWrite(w, r, path, bodyNone)
	if !ok {
		return
	}
	if err := s.db.Delete(path, opts...); err != nil {
		s.writeFailed(w, r, path, err)
		return
	}
	s.answerWrite(w, r, path, http.StatusOK)
}

type apiCommit struct {
	ID      string   `json:"id"`
	Parents []string `json:"parents"`
	Time    string   `json:"time"`
	Session string   `json:"session,omitempty"`
	Merge   bool     `json:"merge"`
}

func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) {
	path, _, _, ok := s.readableItem(w, r)
	if !ok {
		return
	}
	limit := maxHistory
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxHistory {
			apiError(w, http.StatusBadRequest, "limit %q: give a number of commits from 1 to %d", l, maxHistory)
			return
		}
		limit = n
	}
	hist, err := s.db.History(path)
	if err != nil {
		s.readFailed(w, r, path, err)
		return
	}
	out := make([]apiCommit, 0, min(len(hist), limit))
	for _, c := range hist[:min(len(hist), limit)] {
		a := apiCommit{ID: c.ID.String(), Parents: []string{}, Time: formatTime(c.Time), Merge: c.Kind == goatdb.KindMerge}
		if !c.Session.IsZero() {
			a.Session = c.Session.String()
		}
		for _, p := range c.Parents {
			a.Parents = append(a.Parents, p.String())
		}
		out = append(out, a)
	}
	writeJSON(w, struct {
		Commits []apiCommit `json:"commits"`
	}{out})
}

type apiChange struct {
	Field string `json:"field"`
	Op    string `json:"op"` // added, removed, changed
	From  any    `json:"from,omitempty"`
	To    any    `json:"to,omitempty"`
}

// handleDiff compares two versions of an item field by field.
func (s *Server) handleDiff(w http.ResponseWriter, r *http.Request) {
	path, _, _, ok := s.readableItem(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	to := goatdb.Version{}
	if t := q.Get("to"); t != "" {
		v, err := parseVersion(t)
		if err != nil {
			apiError(w, http.StatusBadRequest, "to=%s: %v", t, err)
			return
		}
		to = v.goatdb()
	}
	from, err := s.versionBefore(path, to)
	if f := q.Get("from"); f != "" {
		v, perr := parseVersion(f)
		if perr != nil {
			apiError(w, http.StatusBadRequest, "from=%s: %v", f, perr)
			return
		}
		from, err = v.goatdb(), nil
	}
	if err != nil {
		s.readFailed(w, r, path, err)
		return
	}
	d, err := s.db.Diff(path, from, to)
	if err != nil {
		if strings.Contains(err.Error(), "no commit") || errors.Is(err, goatdb.ErrNotFound) {
			apiError(w, http.StatusNotFound, "%v", err)
			return
		}
		s.readFailed(w, r, path, err)
		return
	}
	a, errA := s.fieldsAt(path, d.From)
	b, errB := s.fieldsAt(path, d.To)
	if err := errors.Join(errA, errB); err != nil {
		s.readFailed(w, r, path, err)
		return
	}
	changes := []apiChange{}
	names := make([]string, 0, len(a)+len(b))
	for k := range a {
		names = append(names, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		x, inA := a[k]
		y, inB := b[k]
		switch {
		case !inA:
			changes = append(changes, apiChange{Field: k, Op: "added", To: y})
		case !inB:
			changes = append(changes, apiChange{Field: k, Op: "removed", From: x})
		case !reflect.DeepEqual(x, y):
			changes = append(changes, apiChange{Field: k, Op: "changed", From: x, To: y})
		}
	}
	idStr := func(id commit.ID) string {
		if id == (commit.ID{}) {
			return ""
		}
		return id.String()
	}
	writeJSON(w, struct {
		From     string      `json:"from"`
		To       string      `json:"to"`
		Deleted  bool        `json:"deleted,omitempty"`
		Restored bool        `json:"restored,omitempty"`
		Changes  []apiChange `json:"changes"`
	}{idStr(d.From), idStr(d.To), d.Deleted, d.Restored, changes})
}

// versionBefore is the version before to: its first parent, or the
// item's absence for its first commit.
func (s *Server) versionBefore(path string, to goatdb.Version) (goatdb.Version, error) {
	d, err := s.db.Diff(path, to, to)
	if err != nil {
		return goatdb.Version{}, err
	}
	hist, err := s.db.History(path)
	if err != nil {
		return goatdb.Version{}, err
	}
	for _, c := range hist {
		if c.ID == d.To {
			if len(c.Parents) == 0 {
				return goatdb.VersionAbsent(), nil
			}
			return goatdb.VersionAt(c.Parents[0]), nil
		}
	}
	return goatdb.VersionAbsent(), nil
}

// fieldsAt returns the item's fields at commit id as JSON values; none
// for the zero id.
func (s *Server) fieldsAt(path string, id commit.ID) (map[string]any, error) {
	if id == (commit.ID{}) {
		return map[string]any{}, nil
	}
	it, err := s.db.GetAt(path, id)
	if errors.Is(err, goatdb.ErrDeleted) {
		err = nil
	}
	if err != nil {
		return nil, err
	}
	return plainJSON(itemjson.Fields(it.Data())), nil
}

// plainJSON round-trips values through encoding/json, so that equal
// values compare equal whatever Go types they came as.
func plainJSON(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

// handleServerInfo answers the console's server page: health, the
// quotas and key counters. The counters are the whole server's, so, with
// authentication, only admins, nodes and the root see them (as /metrics
// is for operators only).
func (s *Server) handleServerInfo(w http.ResponseWriter, r *http.Request) {
	h, err := s.db.Health()
	status := h.Status
	if err != nil {
		status = "degraded"
	}
	q := s.opts.quotas().withDefaults()
	type info struct {
		Auth         bool           `json:"auth"`
		Status       string         `json:"status"`
		Quotas       map[string]any `json:"quotas"`
		ReposOpen    *int           `json:"repos_open,omitempty"`
		EventStreams *int64         `json:"event_streams,omitempty"`
		Connections  *int64         `json:"connections,omitempty"`
		Metrics      map[string]any `json:"metrics,omitempty"`
	}
	out := info{Auth: s.accounts != nil, Status: status,
		Quotas: map[string]any{"session": quotaJSON(q.Session), "user": quotaJSON(q.User), "address": quotaJSON(q.Address),
			"push_window_seconds": q.PushWindow.Seconds()}}
	p, authed := PrincipalFrom(r.Context())
	if !authed || p.Node || p.Root || slices.Contains(p.Roles, AdminRole) {
		open, streams, conns := s.hub.count(), s.metrics.streams.Load(), s.metrics.connections.Load()
		out.ReposOpen, out.EventStreams, out.Connections = &open, &streams, &conns
		out.Metrics = map[string]any{
			"sync_rounds": s.metrics.rounds.Get(), "commits_in": s.metrics.commitsIn.Get(), "commits_out": s.metrics.commitsOut.Get(),
			"bytes_in": s.metrics.bytesIn.Get(), "bytes_out": s.metrics.bytesOut.Get(),
			"rate_limited": s.metrics.rateLimited.Get(), "unauthorized": s.metrics.unauthorized.Get(),
			"storage_errors": s.metrics.storageErrors.Get(),
		}
	}
	writeJSON(w, out)
}

// quotaJSON names a quota's limits as the JSON API names things, the
// defaults filled in (0: no limit).
func quotaJSON(q Quota) map[string]any {
	return map[string]any{"requests_per_second": q.Requests, "request_burst": q.RequestBurst,
		"push_bytes": q.PushBytes, "push_commits": q.PushCommits, "repos": q.Repos, "event_streams": q.EventStreams}
}
