package server

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/zeebo/blake3"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
)

// Purge (excision) removes an item's whole history everywhere, for
// erasure requests (research §B.4.8, DESIGN §9). It is the root's act
// alone: the operator runs goatdb purge, through the admin socket or on a
// stopped server's data directory (Purge).
//
// A purge writes a shun record in ShunRepo, /sys/shun: the item's path,
// the ids of every commit of the item at that moment, the reason and the
// time. /sys is written only by nodes and the root (authz's built-in
// rules), and it replicates to every node of the deployment like the
// accounts; each node indexes the records (shunIndex) as soon as it sees
// them change (the hub's onChange) and applies them at once:
//
//   - Sync never sends a shunned commit, nor one that descends from one
//     (a merge a node made of the old history and a new one, say), to a
//     client or to a node: the server's Policy gives every requester of
//     a repository with shunned commits a view without them (shunView).
//   - A peer that pushes a shunned commit this node still holds is
//     answered that it is hidden (syncproto's RepoResponse.Hidden): it
//     forgets the item, exactly as when it loses read access to it
//     (goatdb.ErrAccessRemoved). One this node does not hold (it never
//     received it, or compaction dropped it), and any commit that
//     descends from a shunned one, is refused with a reason that says
//     "purged"; nodes and the root are refused too.
//   - The item may be written again afterwards: a commit with no shunned
//     ancestor starts a fresh history and is accepted.
//   - The next compaction drops the shunned commits and their
//     descendants from the log (ShunDrop, for gc.Options.Drop), however
//     new; until then they stay on disk, and this node's own reads
//     (DB.Get on the server's database) still show the item.
//   - A record older than the history horizon whose commits this node no
//     longer holds is evicted from the index (Shun.Evicted): those
//     commits are refused as below the horizon, and what builds on them
//     for its missing parents, so the record costs nothing any more. It
//     stays in ShunRepo, as the record of the purge.
//
// Not promised: a client that had the item keeps what it read (a
// malicious one keeps it for good, as it could have copied it anyway);
// backups made before the purge keep it; the shun records stay in /sys
// with their reasons (they hold no values).

// ShunRepo is the repository of the shun records: one item per purge of
// one item's history (several for an item of more than maxShunIDs
// commits), keyed by a hash of what it shuns. Fields: "path"
// (/type/repo/item), "commits" (a set of hex commit ids), "reason" and
// "at" (a date).
const ShunRepo = "/sys/shun"

// MaxPurgeReason bounds the bytes of a purge's reason.
const MaxPurgeReason = 1024

// maxShunIDs bounds the commit ids of one shun record, so that a record
// stays well within a sync message (about 7 MB): an item with more
// commits gets several records.
const maxShunIDs = 100_000

// ErrPurgeInput is returned (wrapped) for a purge that cannot be made as
// asked: a path that is not an item's, an item of /sys, a reason that is
// missing, too long or not UTF-8.
var ErrPurgeInput = errors.New("server: bad purge")

// Shun is the record of one purge.
type Shun struct {
	Path    string      // the item, /type/repo/item
	Commits []commit.ID // the item's commits when it was purged, sorted
	Reason  string
	At      time.Time
	Records []string // the keys of the records in ShunRepo
	// Evicted is set, in Server.Shuns, for a record older than the
	// history horizon whose commits this node no longer holds: it is no
	// longer needed to refuse them (see shunIndex.evictable).
	Evicted bool
}

// Purge shuns every commit of the item at path (/type/repo/item) held in
// db, writing the shun record in ShunRepo with the reason and the time
// now, and returns it. A server applies it at once; run on a stopped
// server's database, the server applies it when it starts. An item with
// no commits that are not shunned already is an error wrapping
// goatdb.ErrNotFound.
func Purge(db *goatdb.DB, path, reason string, now time.Time) (Shun, error) {
	rp, key, err := checkPurge(path, reason)
	if err != nil {
		return Shun{}, err
	}
	ids, err := purgeable(db, rp, key)
	if err != nil {
		return Shun{}, err
	}
	sh := Shun{Path: path, Commits: ids, Reason: strings.TrimSpace(reason), At: now.UTC().Truncate(time.Millisecond)}
	for chunk := range slices.Chunk(ids, maxShunIDs) {
		hexes := make([]string, len(chunk))
		h := blake3.New()
		h.WriteString("goatdb shun record\x00" + path + "\x00")
		for i, id := range chunk {
			hexes[i] = id.String()
			h.Write(id[:])
		}
		k := hex.EncodeToString(h.Sum(nil)[:16])
		if _, err := db.Put(ShunRepo+"/"+k, goatdb.Fields{"path": path, "commits": item.StringSet(hexes...),
			"reason": sh.Reason, "at": item.Date(sh.At)}, goatdb.Replace()); err != nil {
			return sh, fmt.Errorf("purge %s: write the shun record: %w", path, err)
		}
		sh.Records = append(sh.Records, k)
	}
	return sh, nil
}

// checkPurge checks a purge's path and reason and returns the item's
// repository and key.
func checkPurge(path, reason string) (rp, key string, err error) {
	rp, key, err = goatdb.SplitPath(path)
	switch {
	case err != nil:
		return "", "", fmt.Errorf("%w: %w", ErrPurgeInput, err)
	case strings.HasPrefix(rp, "/sys/"):
		return "", "", fmt.Errorf("%w: %s: the /sys repositories hold the deployment's accounts and purges, which cannot be purged", ErrPurgeInput, path)
	case strings.TrimSpace(reason) == "":
		return "", "", fmt.Errorf("%w: a purge needs a reason (it is recorded with the purge)", ErrPurgeInput)
	case len(reason) > MaxPurgeReason || !utf8.ValidString(reason):
		return "", "", fmt.Errorf("%w: the reason must be UTF-8 of at most %d bytes", ErrPurgeInput, MaxPurgeReason)
	}
	return rp, key, nil
}

// purgeable returns the commits of item key of repository rp that no
// shun record of db names yet, sorted: those in its graph and those
// excluded from it.
func purgeable(db *goatdb.DB, rp, key string) ([]commit.ID, error) {
	r, release, err := db.AcquireExisting(rp)
	if err != nil {
		return nil, fmt.Errorf("purge %s/%s: %w", rp, key, err)
	}
	defer release()
	if err := r.Flush(); err != nil { // writes under way join the graph
		return nil, fmt.Errorf("purge %s/%s: %w", rp, key, err)
	}
	shunned := map[commit.ID]bool{}
	if sr, err := db.LookupRepo(ShunRepo); err == nil {
		for _, s := range readShuns(sr, nil) {
			for _, id := range s.Commits {
				shunned[id] = true
			}
		}
	} else if !errors.Is(err, goatdb.ErrNotFound) {
		return nil, fmt.Errorf("purge %s/%s: read the shun records: %w", rp, key, err)
	}
	set := map[commit.ID]bool{}
	all, _ := r.CommitsSince(0)
	for _, c := range all {
		if c.Key() == key && !shunned[c.ID()] {
			set[c.ID()] = true
		}
	}
	for _, e := range r.Excluded() {
		if e.Key == key && !shunned[e.ID] {
			set[e.ID] = true
		}
	}
	if len(set) == 0 {
		return nil, fmt.Errorf("purge %s/%s: %w: no commits of this item that are not purged already", rp, key, goatdb.ErrNotFound)
	}
	ids := make([]commit.ID, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, commit.CompareIDs)
	return ids, nil
}

// readShuns reads the shun records of r (ShunRepo), warning on log (if
// set) about those that do not parse.
func readShuns(r *repo.Repo, log *slog.Logger) map[string]*Shun {
	out := map[string]*Shun{}
	for _, k := range r.Keys(false) {
		it, _, ok := r.Get(k)
		if !ok {
			continue
		}
		s, err := parseShun(it)
		if err != nil {
			if log != nil {
				log.Warn("shun record ignored", "item", ShunRepo+"/"+k, "err", err)
			}
			continue
		}
		s.Records = []string{k}
		out[k] = s
	}
	return out
}

func parseShun(it item.Item) (*Shun, error) {
	s := &Shun{}
	p, ok := it.Get("path")
	if !ok || p.Type() != item.TypeString {
		return nil, errors.New("no path")
	}
	s.Path = p.Str()
	if _, _, err := goatdb.SplitPath(s.Path); err != nil {
		return nil, err
	}
	cs, ok := it.Get("commits")
	if !ok || cs.Type() != item.TypeSet {
		return nil, errors.New("no commits")
	}
	for _, e := range cs.Elems() {
		id, err := commit.ParseID(e.Str())
		if err != nil {
			return nil, err
		}
		s.Commits = append(s.Commits, id)
	}
	if r, ok := it.Get("reason"); ok && r.Type() == item.TypeString {
		s.Reason = r.Str()
	}
	if at, ok := it.Get("at"); ok && at.Type() == item.TypeDate {
		s.At = at.Time()
	}
	return s, nil
}

// shunIndex is a node's index of the shun records, following ShunRepo.
// Its methods are safe for concurrent use.
type shunIndex struct {
	db  *goatdb.DB
	log *slog.Logger
	// changed, if set, is called by refresh, once the index is up to
	// date, with the repositories whose shuns changed; it must not call
	// refresh.
	changed func(repos []string)
	// horizon, if set, is the history horizon now: a record older than
	// it whose commits this node no longer holds is evicted (evictable).
	horizon func() time.Time

	refreshMu sync.Mutex // serializes refresh: the last to index read last

	mu    sync.RWMutex    // guards the fields below
	r     *repo.Repo      // ShunRepo, once it exists
	at    position        // of r, as indexed
	h     time.Time       // the horizon when indexed
	out   map[string]bool // keys of the records evicted (evictable)
	due   []epochOf       // repositories whose compaction may evict records
	ids   map[commit.ID]*Shun
	repos map[string]*repoShuns // by repository path

	// cacheMu guards what is known of commits: whether each descends
	// from a shunned commit (tainted, for the current records), and the
	// commits refused as purged (not stored, so that their own
	// descendants, sent in the same request or later, are refused too).
	cacheMu sync.Mutex
	tainted map[commit.ID]bool
	refused map[commit.ID]*Shun
}

// repoShuns are the shuns of one repository.
type repoShuns struct {
	keys map[string]*Shun // items with shunned commits, with their latest purge
	ids  []commit.ID
	tag  string // changes with the repository's records: part of its views' keys

	mu   sync.Mutex // guards seen
	seen heldAt     // whether the repository held shunned commits, when last asked
}

// heldAt is whether a repository, open as r, held shunned commits at
// sequence number seq.
type heldAt struct {
	r    *repo.Repo
	seq  uint64
	held bool
}

// Bounds on what the index remembers of commits: past them it forgets
// all of it (and finds it again from the repositories).
const (
	maxTainted = 1 << 20
	maxRefused = 1 << 16
)

func newShunIndex(db *goatdb.DB, log *slog.Logger) *shunIndex {
	return &shunIndex{db: db, log: log, ids: map[commit.ID]*Shun{}, repos: map[string]*repoShuns{},
		tainted: map[commit.ID]bool{}, refused: map[commit.ID]*Shun{}}
}

// refresh brings the index up to date with ShunRepo. It looks the
// repository up only if find is set or it was open before (it stays open
// once opened: /sys repositories are kept), so that a request costs a
// comparison of positions.
func (x *shunIndex) refresh(find bool) error {
	if x.current(find) {
		return nil
	}
	x.refreshMu.Lock()
	defer x.refreshMu.Unlock()
	x.mu.RLock()
	cur, at := x.r, x.at
	x.mu.RUnlock()
	r := cur
	if r == nil || r.Closed() {
		if !find && r == nil {
			return nil
		}
		var err error
		if r, err = x.db.LookupRepo(ShunRepo); errors.Is(err, goatdb.ErrNotFound) {
			return nil
		} else if err != nil {
			return fmt.Errorf("server: open the shun records: %w", err)
		}
	}
	now := position{epoch: r.Epoch(), seq: r.Seq(), ok: true}
	h := x.horizonNow()
	x.mu.RLock()
	same := h.Equal(x.h) && dueSame(x.due)
	x.mu.RUnlock()
	if now == at && r == cur && same {
		return nil
	}
	shuns := readShuns(r, x.log)
	out := map[string]bool{}
	var due []epochOf
	for k, s := range shuns {
		switch evict, held := x.evictable(s, h); {
		case evict:
			delete(shuns, k)
			out[k] = true
		case held != nil:
			due = append(due, epochOf{held, held.Epoch()})
		}
	}
	ids := map[commit.ID]*Shun{}
	repos := map[string]*repoShuns{}
	keys := make([]string, 0, len(shuns))
	for k := range shuns {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	tags := map[string]*blake3.Hasher{}
	for _, k := range keys {
		s := shuns[k]
		rp, key, _ := goatdb.SplitPath(s.Path)
		rs := repos[rp]
		if rs == nil {
			rs = &repoShuns{keys: map[string]*Shun{}}
			repos[rp] = rs
			tags[rp] = blake3.New()
		}
		if old := rs.keys[key]; old == nil || s.At.After(old.At) {
			rs.keys[key] = s
		}
		tags[rp].WriteString(k + "\x00")
		for _, id := range s.Commits {
			if ids[id] == nil {
				ids[id] = s
				rs.ids = append(rs.ids, id)
			}
		}
	}
	for rp, h := range tags {
		repos[rp].tag = hex.EncodeToString(h.Sum(nil)[:8])
	}
	x.mu.Lock()
	changed := changedRepos(repos, x.repos)
	x.r, x.at, x.ids, x.repos, x.h, x.out, x.due = r, now, ids, repos, h, out, due
	x.mu.Unlock()
	if len(changed) > 0 {
		x.cacheMu.Lock()
		clear(x.tainted)
		x.cacheMu.Unlock()
		if x.changed != nil {
			x.changed(changed)
		}
	}
	return nil
}

// current reports whether the index is up to date, without waiting for a
// refresh under way: ShunRepo did not move since it was indexed (or does
// not exist, unless find).
func (x *shunIndex) current(find bool) bool {
	x.mu.RLock()
	r, at, h, due := x.r, x.at, x.h, x.due
	x.mu.RUnlock()
	if r == nil {
		return !find
	}
	return dueSame(due) && !r.Closed() && at == position{epoch: r.Epoch(), seq: r.Seq(), ok: true} && h.Equal(x.horizonNow())
}

// dueSame reports whether the repositories whose commits keep records
// from eviction were not compacted (or closed) since: they hold them
// still.
func dueSame(due []epochOf) bool {
	for _, d := range due {
		if d.r.Epoch() != d.epoch || d.r.Closed() {
			return false
		}
	}
	return true
}

// epochOf is a repository and its epoch.
type epochOf struct {
	r     *repo.Repo
	epoch uint64
}

// horizonNow returns the history horizon now, or the zero time if the
// index evicts nothing.
func (x *shunIndex) horizonNow() time.Time {
	if x.horizon == nil {
		return time.Time{}
	}
	return x.horizon()
}

// evictable reports whether record s can leave the index: it was made
// before the horizon h (by more than the clock skew a commit may have),
// so every commit it names is older than h and refused as below the
// horizon by this node, and none of those commits is held here any more
// (a compaction dropped them: until then the record hides them). A
// record stays in ShunRepo, for the record; what builds on its commits
// is refused for its missing parents.
// If only the commits held keep it, held is their repository.
func (x *shunIndex) evictable(s *Shun, h time.Time) (evict bool, held *repo.Repo) {
	if h.IsZero() || !s.At.Add(repo.DefaultMaxSkew).Before(h) {
		return false, nil
	}
	rp, _, _ := goatdb.SplitPath(s.Path)
	r, err := x.db.LookupRepo(rp)
	if errors.Is(err, goatdb.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, nil
	}
	if slices.ContainsFunc(s.Commits, r.Has) {
		return false, r
	}
	return true, nil
}

// evicted reports whether the record of key k was evicted.
func (x *shunIndex) evicted(k string) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.out[k]
}

// changedRepos returns the repositories whose shuns differ between now
// and before, sorted.
func changedRepos(now, before map[string]*repoShuns) []string {
	var out []string
	for rp, rs := range now {
		if o := before[rp]; o == nil || o.tag != rs.tag {
			out = append(out, rp)
		}
	}
	for rp := range before {
		if now[rp] == nil {
			out = append(out, rp)
		}
	}
	slices.Sort(out)
	return out
}

// of returns the shuns of repository path, or nil.
func (x *shunIndex) of(path string) *repoShuns {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.repos[path]
}

// shunned returns the record that shuns commit id, or nil.
func (x *shunIndex) shunned(id commit.ID) *Shun {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.ids[id]
}

// commitSource finds commits by id: a repository.
type commitSource interface {
	Commit(id commit.ID) (*commit.Commit, bool)
}

// taint returns the record whose commits c is or descends from, looking
// up its ancestors in src, or nil. Ancestors src does not hold count as
// clean, unless they are shunned or were refused as purged.
func (x *shunIndex) taint(src commitSource, c *commit.Commit) *Shun {
	if s := x.shunned(c.ID()); s != nil {
		return s
	}
	x.mu.RLock()
	ids := x.ids
	x.mu.RUnlock()
	x.cacheMu.Lock()
	defer x.cacheMu.Unlock()
	if s := x.refused[c.ID()]; s != nil {
		return s
	}
	if len(x.tainted) > maxTainted {
		clear(x.tainted)
	}
	// Depth first over the ancestors not known yet, each decided once
	// its parents are.
	stack := []*commit.Commit{c}
	for len(stack) > 0 {
		top := stack[len(stack)-1]
		if _, done := x.tainted[top.ID()]; done {
			stack = stack[:len(stack)-1]
			continue
		}
		bad, waiting := ids[top.ID()] != nil, false
		for _, p := range top.Parents() {
			if bad {
				break
			}
			if v, ok := x.tainted[p]; ok {
				bad = v
				continue
			}
			if ids[p] != nil || x.refused[p] != nil {
				bad = true
				continue
			}
			if pc, ok := src.Commit(p); ok {
				stack = append(stack, pc)
				waiting = true
			}
		}
		if bad || !waiting {
			x.tainted[top.ID()] = bad
			stack = stack[:len(stack)-1]
		}
	}
	if !x.tainted[c.ID()] {
		return nil
	}
	return x.recordFor(ids, c)
}

// recordFor returns the record of tainted commit c: the one naming it or
// a parent, else the latest purge of its item. The caller holds cacheMu.
func (x *shunIndex) recordFor(ids map[commit.ID]*Shun, c *commit.Commit) *Shun {
	if s := ids[c.ID()]; s != nil {
		return s
	}
	for _, p := range c.Parents() {
		if s := ids[p]; s != nil {
			return s
		}
		if s := x.refused[p]; s != nil {
			return s
		}
	}
	var latest *Shun
	for _, s := range ids {
		if _, key, _ := goatdb.SplitPath(s.Path); key == c.Key() && (latest == nil || s.At.After(latest.At)) {
			latest = s
		}
	}
	return latest
}

// refuse returns why commit c sent for repository path must be refused,
// or nil: it is shunned, or it descends from a shunned commit.
func (x *shunIndex) refuse(path string, c *commit.Commit) error {
	rs := x.of(path)
	if rs == nil {
		return nil
	}
	s := x.shunned(c.ID())
	if s == nil {
		if rs.keys[c.Key()] == nil {
			return nil // a descendant is a commit of the same item
		}
		r, err := x.db.LookupRepo(path)
		if err != nil {
			return nil // the Repo refuses what it cannot store
		}
		if s = x.taint(r, c); s == nil {
			return nil
		}
		x.cacheMu.Lock()
		if len(x.refused) > maxRefused {
			clear(x.refused)
		}
		x.refused[c.ID()] = s
		x.cacheMu.Unlock()
		return fmt.Errorf("purged: it builds on the history of %s, which was purged on this deployment at %s; write the item anew",
			s.Path, s.At.Format(time.RFC3339))
	}
	return fmt.Errorf("purged: %s was purged on this deployment at %s, with its whole history", s.Path, s.At.Format(time.RFC3339))
}

// holds reports whether r, repository path, holds commits of rs (in its
// graph or excluded): only then do its views leave anything out.
func (rs *repoShuns) holds(r *repo.Repo) bool {
	seq := r.Seq()
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.seen.r == r && rs.seen.seq == seq {
		return rs.seen.held
	}
	held := false
	for _, id := range rs.ids {
		if r.Has(id) {
			held = true
			break
		}
	}
	rs.seen = heldAt{r: r, seq: seq, held: held}
	return held
}

// drop returns, for gc.Options.Drop, what compaction of repository path
// drops: its shunned commits (and, by repo.CompactOptions.Drop, their
// descendants), or nil if it holds none.
func (x *shunIndex) drop(path string) func(*commit.Commit) bool {
	if err := x.refresh(true); err != nil {
		x.log.Warn("read the shun records", "err", err)
	}
	rs := x.of(path)
	if rs == nil {
		return nil
	}
	r, err := x.db.LookupRepo(path)
	if err != nil || !rs.holds(r) {
		return nil
	}
	set := make(map[commit.ID]bool, len(rs.ids))
	for _, id := range rs.ids {
		set[id] = true
	}
	return func(c *commit.Commit) bool { return set[c.ID()] }
}

// Shuns lists the shun records, oldest first.
func (s *Server) Shuns() ([]Shun, error) {
	if err := s.shuns.refresh(true); err != nil {
		return nil, err
	}
	s.shuns.mu.RLock()
	r := s.shuns.r
	s.shuns.mu.RUnlock()
	if r == nil {
		return nil, nil
	}
	var out []Shun
	for k, sh := range readShuns(r, nil) {
		sh.Evicted = s.shuns.evicted(k)
		out = append(out, *sh)
	}
	slices.SortFunc(out, func(a, b Shun) int {
		return cmp.Or(a.At.Compare(b.At), strings.Compare(a.Records[0], b.Records[0]))
	})
	return out, nil
}

// Purge purges the item at path (see the package function Purge) and
// applies it at once: no sync answered after it returns sends the item's
// history.
func (s *Server) Purge(path, reason string) (Shun, error) {
	now := time.Now()
	if s.accounts != nil {
		now = s.accounts.opts.Now()
	}
	sh, err := Purge(s.db, path, reason, now)
	if len(sh.Records) > 0 {
		if rerr := s.shuns.refresh(true); rerr != nil {
			err = errors.Join(err, rerr)
		}
		s.log.Info("purged", "item", path, "commits", len(sh.Commits), "records", sh.Records)
	}
	return sh, err
}

// ShunDrop returns the gc.Options.Drop of this server: per repository,
// the commits its shun records name (compaction drops them with their
// descendants), or nil for a repository that holds none, which then
// compacts only as the horizon says.
func (s *Server) ShunDrop() func(path string) func(*commit.Commit) bool { return s.shuns.drop }

// ShunDrop returns a gc.Options.Drop for the shun records of db, read
// now: for collecting a stopped server's data directory.
func ShunDrop(db *goatdb.DB) (func(path string) func(*commit.Commit) bool, error) {
	x := newShunIndex(db, slog.New(slog.DiscardHandler))
	if err := x.refresh(true); err != nil {
		return nil, err
	}
	return x.drop, nil
}

// PurgeRequest asks a running server to purge an item (goatdb purge).
type PurgeRequest struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

type purgeAnswer struct {
	Path    string   `json:"path"`
	Commits []string `json:"commits"`
	Reason  string   `json:"reason"`
	At      string   `json:"at"`
	Records []string `json:"records"`
}

// purgeRoutes adds POST /purge {"path","reason"} to the admin socket's
// API: it answers the shun record, 400 for a bad request, 404 for an item
// with nothing left to purge.
func (s *Server) purgeRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /purge", func(w http.ResponseWriter, r *http.Request) {
		var in PurgeRequest
		if err := readJSON(r, &in); err != nil {
			httpError(w, http.StatusBadRequest, "%v", err)
			return
		}
		sh, err := s.Purge(in.Path, in.Reason)
		switch {
		case errors.Is(err, ErrPurgeInput):
			httpError(w, http.StatusBadRequest, "%v", err)
			return
		case errors.Is(err, goatdb.ErrNotFound):
			httpError(w, http.StatusNotFound, "%v", err)
			return
		case err != nil:
			httpError(w, http.StatusInternalServerError, "%v", err) // the operator's own socket
			return
		}
		out := purgeAnswer{Path: sh.Path, Reason: sh.Reason, At: sh.At.Format(time.RFC3339Nano), Records: sh.Records}
		for _, id := range sh.Commits {
			out.Commits = append(out.Commits, id.String())
		}
		writeJSON(w, out)
	})
}

// Purge purges an item on the server: see Server.Purge. Its errors wrap
// ErrPurgeInput and goatdb.ErrNotFound as the server's do.
func (c *AdminClient) Purge(req PurgeRequest) (Shun, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return Shun{}, err
	}
	resp, err := c.client.Post("http://admin/purge", "application/json", bytes.NewReader(b))
	if err != nil {
		return Shun{}, fmt.Errorf("server: admin socket: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return Shun{}, fmt.Errorf("server: admin socket: %w", err)
	}
	msg := strings.TrimSpace(string(body))
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusBadRequest:
		return Shun{}, fmt.Errorf("%w: %s", ErrPurgeInput, strings.TrimPrefix(msg, ErrPurgeInput.Error()+": "))
	case http.StatusNotFound:
		return Shun{}, fmt.Errorf("%w: %s", goatdb.ErrNotFound, msg)
	default:
		return Shun{}, errors.New(msg)
	}
	var out purgeAnswer
	if err := json.Unmarshal(body, &out); err != nil {
		return Shun{}, fmt.Errorf("server: admin socket: %w", err)
	}
	sh := Shun{Path: out.Path, Reason: out.Reason, Records: out.Records}
	sh.At, _ = time.Parse(time.RFC3339Nano, out.At)
	for _, h := range out.Commits {
		id, err := commit.ParseID(h)
		if err != nil {
			return sh, fmt.Errorf("server: admin socket: %w", err)
		}
		sh.Commits = append(sh.Commits, id)
	}
	return sh, nil
}
