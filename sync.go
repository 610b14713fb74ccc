package goatdb

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/syncproto"
	"github.com/goatdb/goatdb/transport"
	"github.com/goatdb/goatdb/vfs"
)

// SyncStats is what one sync moved: round trips, bytes on the wire, commits
// each way, and the commits either side refused.
type SyncStats = syncproto.Stats

// SyncContentType is the media type of sync messages on the wire.
const SyncContentType = transport.SyncContentType

// NodeCertHeader carries, on every request of a server node replicating
// its peers (SyncOptions.Node), the node's certificate (base64 of
// authz.NodeCertificate.Encode): a server of the same deployment that
// verifies it against its root key treats the request, signed by the
// node's key, as the node's.
const NodeCertHeader = transport.NodeCertHeader

// NodeHistoryHeader carries, beside NodeCertHeader, how long the node
// keeps history (NodeAuth.History), in seconds: a peer that keeps another
// length refuses the node (403), since each would refuse as below its
// horizon commits the other still accepts.
const NodeHistoryHeader = transport.NodeHistoryHeader

// Sync syncs repositories with the goatdb server at serverURL (for example
// "http://127.0.0.1:8080") until each holds the same commits as the
// server's copy, and returns what moved. With no repositories named it
// syncs every repository in the data directory; a named one that does not
// exist here is created, so an empty peer catches up by naming it.
//
// The error wraps ErrUnreachable if the server could not be reached,
// *ServerError if it answered with an HTTP error, and ErrRejected (after a
// complete sync) if the server refused commits, and
// syncproto.ErrNotConverged if writes on either side kept the two from
// agreeing within the round budget (a later sync goes on from there); the
// stats are valid in every case and list each rejection with its reason.
//
// A write the server refused is quarantined, not dropped: it leaves its
// item's value and what this peer syncs (so the sync converges and the
// next one does not send it again), and DB.Rejected lists it until
// DB.Reauthor, DB.Discard or DB.Restore. A refusal worth retrying
// unchanged (its reason starts with repo.MissingParents) quarantines
// nothing: a later sync sends the commit again. Commits the server
// answers as hidden (SyncStats.Hidden: it holds them, but this session
// may no longer read their item) are forgotten: the item leaves every
// read here (Watch yields ErrAccessRemoved), until the server sends them
// again (read access regained): then they are restored. An error doing
// any of this is joined to the sync's.
// On a read-only database Sync fails with ErrReadOnly: receiving commits
// is a write. A sync that ends in agreement also resolves quarantined
// damage whose lost commits are back (see DB.Health).
//
// serverURL may list several nodes of one deployment separated by commas
// ("http://a:8080,http://b:8080"): Sync then syncs with the first that
// answers, moving to the next while a node is unreachable or answers a
// temporary error (5xx, 429). In a sharded cluster, a repository the node
// does not own is answered as moved to its owners: Sync then syncs it with
// the first owner among the nodes listed that answers (only those).
func (db *DB) Sync(ctx context.Context, serverURL string, repos ...string) (SyncStats, error) {
	if !strings.Contains(serverURL, ",") {
		return db.syncOne(ctx, serverURL, repos...)
	}
	var nodes []string
	for _, u := range strings.Split(serverURL, ",") {
		n, err := NormalizeServerURL(strings.TrimSpace(u))
		if err != nil {
			return SyncStats{}, err
		}
		nodes = append(nodes, n)
	}
	var st SyncStats
	var err error
	for _, u := range nodes {
		if st, err = db.syncOne(ctx, u, repos...); err == nil || ctx.Err() != nil {
			break
		}
		if ok, _ := retryable(err); !ok {
			break
		}
		db.opts.Logger.Warn("sync: node failed, trying the next", "server", u, "err", err)
	}
	return db.followMoved(ctx, nodes, st, err)
}

// followMoved syncs each repository that a node of a sharded cluster
// answered as moved (syncproto.MovedPrefix) with its owners that are
// among nodes, the URLs the caller gave, in turn until one answers: a
// node never sends this peer's commits anywhere the caller did not name.
// Moves are followed once; a repository whose owners are none of nodes
// keeps its error.
func (db *DB) followMoved(ctx context.Context, nodes []string, st SyncStats, err error) (SyncStats, error) {
	moved, rest := syncproto.SplitMoved(err)
	if len(moved) == 0 {
		return st, err
	}
	for _, path := range slices.Sorted(maps.Keys(moved)) {
		var owners []string
		for _, o := range moved[path] {
			if n, nerr := NormalizeServerURL(o); nerr == nil && slices.Contains(nodes, n) {
				owners = append(owners, n)
			}
		}
		if len(owners) == 0 {
			rest = append(rest, fmt.Errorf("sync %s: it lives on %s, none of the nodes given (%s)", path,
				strings.Join(moved[path], " "), strings.Join(nodes, ",")))
			continue
		}
		// The owners in turn, while one is unreachable or answers a
		// temporary error (another owner holds the same commits).
		var berr error
		for _, to := range owners {
			var b SyncStats
			b, berr = db.syncOne(ctx, to, path)
			st = addStats(st, b)
			if ok, _ := retryable(berr); berr == nil || !ok || ctx.Err() != nil {
				break
			}
		}
		if berr != nil {
			rest = append(rest, berr)
		}
	}
	return st, errors.Join(rest...)
}

// SyncAsNode is Sync with one server, authenticated as the server node
// node instead of as this database's session: what a server does when it
// hands repositories to another node of its deployment. repos must name
// at least one repository.
func (db *DB) SyncAsNode(ctx context.Context, serverURL string, node *NodeAuth, repos ...string) (SyncStats, error) {
	if node == nil || len(repos) == 0 {
		return SyncStats{}, errors.New("goatdb: SyncAsNode needs node credentials and at least one repository")
	}
	return db.syncWith(ctx, serverURL, node, repos...)
}

// syncOne is Sync with one server.
func (db *DB) syncOne(ctx context.Context, serverURL string, repos ...string) (SyncStats, error) {
	return db.syncWith(ctx, serverURL, nil, repos...)
}

// syncWith is Sync with one server, as node if it is not nil.
func (db *DB) syncWith(ctx context.Context, serverURL string, node *NodeAuth, repos ...string) (SyncStats, error) {
	if db.opts.ReadOnly {
		return SyncStats{}, fmt.Errorf("goatdb: sync with %s: %w", serverURL, ErrReadOnly)
	}
	paths, err := db.syncPaths(repos)
	if err != nil {
		return SyncStats{}, err
	}
	rm, err := db.remoteAs(serverURL, nil, node)
	if err != nil {
		return SyncStats{}, err
	}
	var st SyncStats
	var done settled
	var errs, qerrs []error
	for batch := range slices.Chunk(paths, db.syncBatch(len(paths))) {
		b := db.syncSome(ctx, rm, batch, len(repos) == 0)
		st = addStats(st, b.st)
		done.add(b.done)
		errs, qerrs = append(errs, b.err), append(qerrs, b.qerr)
		if b.err != nil && stopsSync(ctx, b.err) {
			break
		}
	}
	err, qerr := errors.Join(errs...), errors.Join(qerrs...)
	if serr := db.resumes.save(); serr != nil {
		db.opts.Logger.Warn("save sync resume points", "err", serr)
	}
	if len(done.quarantined) > 0 || done.forgotten > 0 || done.restored > 0 || done.collected > 0 {
		db.opts.Logger.Info("sync settled refused, unreadable and collected commits", "server", rm.url,
			"quarantined", len(done.quarantined), "forgotten", done.forgotten, "restored", done.restored, "collected", done.collected)
	}
	if err == nil && len(st.Rejected) > 0 {
		err = rejectedError(st.Rejected)
	}
	return st, errors.Join(err, qerr)
}

// synced is what a sync of some repositories did: its stats, what it
// settled, its error and that of settling.
type synced struct {
	st        SyncStats
	done      settled
	err, qerr error
}

// syncSome syncs the repositories at paths, holding them meanwhile, and
// settles what the server refused or hides; all says the caller named
// none (see ignoreEmptyUnknown).
func (db *DB) syncSome(ctx context.Context, rm *remote, paths []string, all bool) synced {
	var held leases
	defer held.release()
	locals, err := db.syncLocals(paths, &held)
	if err != nil {
		return synced{err: err}
	}
	var out synced
	out.st, out.err = rm.syncer.Sync(ctx, locals...)
	if all {
		out.err = ignoreEmptyUnknown(out.err, locals)
	}
	out.done, out.qerr = rm.settle(locals, out.st)
	if out.err == nil && out.qerr == nil && out.done.collected > 0 {
		// Leaving out history the server collected changed items'
		// leaves (a write quarantined, an older commit of the history is
		// a leaf again): one more sync sends and settles what that
		// changed, so that this one ends with the server's values.
		st, err := rm.syncer.Sync(ctx, locals...)
		if all {
			err = ignoreEmptyUnknown(err, locals)
		}
		done, qerr := rm.settle(locals, st)
		converged := st.Converged
		out.st, out.err, out.qerr = addStats(out.st, st), err, qerr
		out.st.Converged = converged
		out.done.add(done)
	}
	return out
}

// add adds what another sync settled.
func (s *settled) add(o settled) {
	s.quarantined = append(s.quarantined, o.quarantined...)
	s.forgotten += o.forgotten
	s.restored += o.restored
	s.collected += o.collected
}

// syncBatch is how many repositories one sync holds open at once: all of
// them without a bound on open repositories, else a share of the bound.
func (db *DB) syncBatch(n int) int {
	switch {
	case db.opts.MaxOpenRepos > 0:
		return max(1, db.opts.MaxOpenRepos/2)
	case db.bounded():
		return 100
	}
	return max(1, n)
}

// stopsSync reports whether a sync failure ends a sync of several batches:
// the context ended, or the server could not be reached or refused the
// request.
func stopsSync(ctx context.Context, err error) bool {
	var se *ServerError
	return ctx.Err() != nil || errors.Is(err, ErrUnreachable) || errors.As(err, &se)
}

// addStats adds b's counts to a's.
func addStats(a, b SyncStats) SyncStats {
	a.Rounds += b.Rounds
	a.BytesSent += b.BytesSent
	a.BytesReceived += b.BytesReceived
	a.CommitsSent += b.CommitsSent
	a.CommitsReceived += b.CommitsReceived
	a.Rejected = append(a.Rejected, b.Rejected...)
	a.Refused = append(a.Refused, b.Refused...)
	a.Hidden = append(a.Hidden, b.Hidden...)
	a.Converged += b.Converged
	a.Missing += b.Missing
	a.Collected = append(a.Collected, b.Collected...)
	return a
}

// ignoreEmptyUnknown drops from a sync's error the repositories that hold
// no commits here and that the server does not have: there is nothing to
// sync in them, and syncing every repository must not fail for them.
func ignoreEmptyUnknown(err error, locals []syncproto.Local) error {
	if err == nil {
		return nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	empty := map[string]bool{}
	for _, l := range locals {
		if r, ok := l.Repo.(*repo.Repo); ok && r.Stats().Commits == 0 {
			empty[l.Path] = true
		}
	}
	var keep []error
	for _, e := range errs {
		var re *syncproto.RepoError
		if errors.As(e, &re) && empty[re.Path] && errors.Is(e, syncproto.ErrUnknownRepo) {
			continue
		}
		keep = append(keep, e)
	}
	return errors.Join(keep...)
}

// syncPaths checks the named repositories, or lists every repository in
// the data directory when none are named.
func (db *DB) syncPaths(paths []string) ([]string, error) {
	if len(paths) == 0 {
		return db.Repos()
	}
	for _, p := range paths {
		if err := CheckRepoPath(p); err != nil {
			return nil, err
		}
	}
	return paths, nil
}

// syncLocals opens (or creates) the repositories at paths, adding their
// leases to held.
func (db *DB) syncLocals(paths []string, held *leases) ([]syncproto.Local, error) {
	locals := make([]syncproto.Local, 0, len(paths))
	for _, p := range paths {
		r, release, err := db.Acquire(p)
		if err != nil {
			return nil, err
		}
		held.add(release)
		locals = append(locals, syncproto.Local{Path: p, Repo: r})
	}
	return locals, nil
}

func rejectedError(rs []syncproto.RepoRejection) error {
	r := rs[0]
	more := ""
	if len(rs) > 1 {
		more = fmt.Sprintf(" (and %d more)", len(rs)-1)
	}
	return fmt.Errorf("%w: %s commit %s: %s%s", ErrRejected, r.Path, r.ID, r.Reason, more)
}

// remote is one server this database syncs with: its normalised URL, the
// signed-request client, the protocol client (which caches digests, so it
// is kept for the database's lifetime) and the renewal state of the
// stored login (auth.go).
type remote struct {
	db      *DB
	url     string
	c       *transport.Client
	syncer  *syncproto.Syncer
	resumes syncproto.ResumeStore
	node    bool // authenticated as a server node, which keeps no login

	renewMu    sync.Mutex // serialises renewals; guards renewAfter
	renewAfter time.Time  // no renewal before this, after one failed
}

// remote returns the remote for serverURL, creating it on first use.
// client, if not nil, replaces the default HTTP client of a new remote.
func (db *DB) remote(serverURL string, client *http.Client) (*remote, error) {
	return db.remoteAs(serverURL, client, nil)
}

// remoteAs is remote, authenticated as the server node node when it is
// not nil: its requests are signed with the node's key and carry its
// certificate (NodeCertHeader), it has no stored login to renew, and it
// keeps resume points of its own (a node sees every commit; a session,
// what the rules let it).
func (db *DB) remoteAs(serverURL string, client *http.Client, node *NodeAuth) (*remote, error) {
	u, err := NormalizeServerURL(serverURL)
	if err != nil {
		return nil, err
	}
	if db.isClosed() {
		return nil, ErrClosed
	}
	if err := db.saveKey(); err != nil { // before the server learns the session
		return nil, err
	}
	id := u
	cfg := transport.Config{URL: u, HTTP: client, Key: db.key, Now: db.opts.Now, Logger: db.opts.Logger}
	session := db.session
	if node != nil {
		id, cfg.Key, cfg.NodeCert = u+"#node", node.Key, base64.StdEncoding.EncodeToString(node.Certificate)
		copy(session[:], node.Key.Public().(ed25519.PublicKey))
		cfg.NodeRules = node.Rules
		if node.History > 0 {
			cfg.NodeHistory = strconv.FormatInt(int64(node.History/time.Second), 10)
		}
	}
	db.remotesMu.Lock()
	defer db.remotesMu.Unlock()
	if rm := db.remotes[id]; rm != nil {
		return rm, nil
	}
	rm := &remote{db: db, url: u, resumes: db.resumes.forServer(id), node: node != nil}
	if node == nil {
		cfg.StoredAudience = rm.storedAudience
		cfg.BeforeRequest = rm.maybeRenew
	}
	rm.c = transport.New(cfg)
	rm.syncer, err = syncproto.NewSyncer(rm.c, session,
		&syncproto.SyncerOptions{Resumes: rm.resumes, Logger: db.opts.Logger.With("server", u)})
	if err != nil {
		return nil, err
	}
	if db.remotes == nil {
		db.remotes = map[string]*remote{}
	}
	db.remotes[id] = rm
	return rm, nil
}

func (db *DB) isClosed() bool {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return db.closed
}

// NormalizeServerURL checks a server URL (http or https, with a host, no
// query or fragment) and returns it without a trailing slash.
func NormalizeServerURL(s string) (string, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", fmt.Errorf("goatdb: server URL %q: %v", s, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("goatdb: server URL %q: want http:// or https://, as in http://127.0.0.1:8080", s)
	case u.Host == "":
		return "", fmt.Errorf("goatdb: server URL %q has no host", s)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil:
		return "", fmt.Errorf("goatdb: server URL %q: remove the query, fragment or user part", s)
	}
	u.Host = strings.ToLower(u.Host)
	return strings.TrimRight(u.String(), "/"), nil
}

// ServerError is an HTTP error answer from a sync server.
type ServerError = transport.ServerError

// resumeFile keeps every server's resume points, in DIR/resume.json. A
// stale or lost file costs a Bloom round at the next sync, never a commit:
// digests are compared whatever the resume point says.
type resumeFile struct {
	db *DB

	mu    sync.Mutex // guards the fields below
	m     map[string]map[string]syncproto.Resume
	dirty bool
	once  bool // loaded
}

const resumeFileName = "resume.json"

type resumeServer struct {
	f   *resumeFile
	url string
}

func (f *resumeFile) forServer(url string) syncproto.ResumeStore {
	return &resumeServer{f: f, url: url}
}

func (s *resumeServer) LoadResume(path string) (syncproto.Resume, bool) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.load()
	r, ok := s.f.m[s.url][path]
	return r, ok
}

func (s *resumeServer) StoreResume(path string, r syncproto.Resume) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.load()
	if s.f.m[s.url] == nil {
		s.f.m[s.url] = map[string]syncproto.Resume{}
	}
	s.f.m[s.url][path] = r
	s.f.dirty = true
}

// load reads the file once; a missing or unreadable one starts empty.
func (f *resumeFile) load() {
	if f.once {
		return
	}
	f.once = true
	f.m = map[string]map[string]syncproto.Resume{}
	b, err := f.db.fs.ReadFile(f.db.filePath(resumeFileName))
	if err != nil {
		return
	}
	if m, err := decodeResumes(b); err != nil {
		f.db.opts.Logger.Warn("ignoring damaged sync resume points; the next syncs run a full round",
			"file", f.db.filePath(resumeFileName), "err", err)
	} else {
		f.m = m
	}
}

// save writes the file if a resume point changed since the last save.
func (f *resumeFile) save() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.dirty || f.db.opts.ReadOnly {
		return nil
	}
	b, err := encodeResumes(f.m)
	if err != nil {
		return err
	}
	if err := f.db.saveKey(); err != nil { // the session the points are of
		return err
	}
	if err := vfs.WriteFileAtomic(f.db.fs, f.db.filePath(resumeFileName), b, 0o644); err != nil {
		return err
	}
	f.dirty = false
	return nil
}

// retryable reports whether a failed sync is worth retrying (the server
// could not be reached, or answered with a temporary error), and how long
// the server asked to wait.
func retryable(err error) (bool, time.Duration) {
	var se *ServerError
	switch {
	case errors.Is(err, ErrUnreachable):
		return true, 0
	case errors.As(err, &se):
		return se.Temporary(), se.RetryAfter
	}
	return false, 0
}

// resumeJSON is the resume file's format: for each server URL, for each
// repository path, the resume point.
type resumeJSON struct {
	Version int                                   `json:"version"`
	Servers map[string]map[string]resumePointJSON `json:"servers"`
}

type resumePointJSON struct {
	ServerEpoch uint64 `json:"server_epoch"`
	ServerSeq   uint64 `json:"server_seq"`
	LocalEpoch  uint64 `json:"local_epoch"`
	LocalSeq    uint64 `json:"local_seq"`
	ServerCount uint64 `json:"server_count"`
	Syncs       int    `json:"syncs"`
	Horizon     int64  `json:"horizon,omitempty"`
}

func encodeResumes(m map[string]map[string]syncproto.Resume) ([]byte, error) {
	out := resumeJSON{Version: 1, Servers: map[string]map[string]resumePointJSON{}}
	for srv, repos := range m {
		rs := map[string]resumePointJSON{}
		for p, r := range repos {
			rs[p] = resumePointJSON(r)
		}
		out.Servers[srv] = rs
	}
	return json.MarshalIndent(out, "", "  ")
}

func decodeResumes(b []byte) (map[string]map[string]syncproto.Resume, error) {
	var in resumeJSON
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&in); err != nil {
		return nil, err
	}
	if in.Version != 1 {
		return nil, fmt.Errorf("version %d, want 1", in.Version)
	}
	m := map[string]map[string]syncproto.Resume{}
	for srv, repos := range in.Servers {
		rs := map[string]syncproto.Resume{}
		for p, r := range repos {
			rs[p] = syncproto.Resume(r)
		}
		m[srv] = rs
	}
	return m, nil
}
