package query

import (
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/vfs"
)

// Item is an item as a query sees it: its key, its value at its head
// commit (as the source presents it: FromRepo's upgrade decides), its
// schema and its head. Items are immutable snapshots.
type Item struct {
	Key    string
	Value  item.Item
	Schema commit.Schema
	Head   commit.ID
}

// Source is the repository a query reads. FromRepo adapts a *repo.Repo;
// tests may supply their own.
type Source interface {
	// Seq returns the log position after the last commit. It only grows
	// within an epoch.
	Seq() uint64
	// Epoch identifies the numbering of positions: it changes when they
	// start over (a compaction rewrote the log), which also closes
	// Changed's channel. A position is meaningful only in its epoch.
	Epoch() uint64
	// Since returns the keys of items with commits after seq, and Seq.
	Since(seq uint64) ([]string, uint64)
	// Keys returns the key of every item with a head, deleted ones
	// included, in any order.
	Keys() []string
	// Load returns an item's current value and head; ok is false when the
	// item has no head.
	Load(key string) (it Item, ok bool, err error)
	// LoadAt returns an item's value at commit head.
	LoadAt(key string, head commit.ID) (Item, error)
	// Changed returns a channel closed when Seq next advances or the
	// source is closed.
	Changed() <-chan struct{}
	// Closed reports whether the source is closed.
	Closed() bool
}

// Log is implemented by sources whose sequence numbers are positions in a
// log file; only their queries can be persisted.
type Log interface {
	// LogFile returns the filesystem and path of the log.
	LogFile() (vfs.FS, string)
	// Flush makes every commit up to Seq durable in the log file.
	Flush() error
}

// Upgrade presents a stored value as the query should see it (goatdb
// upgrades it to the newest version of its schema). It must be
// deterministic: a resumed query trusts the values it saw before.
type Upgrade func(key string, v item.Item, s commit.Schema) (item.Item, commit.Schema, error)

// RepoSource is a Source and a Log over a *repo.Repo.
type RepoSource struct {
	r       *repo.Repo
	fs      vfs.FS
	upgrade Upgrade
}

// FromRepo returns a source reading r, whose log is on fsys (nil means
// vfs.OS), presenting values through upgrade (nil: as stored).
func FromRepo(r *repo.Repo, fsys vfs.FS, upgrade Upgrade) *RepoSource {
	if fsys == nil {
		fsys = vfs.OS
	}
	return &RepoSource{r: r, fs: fsys, upgrade: upgrade}
}

// Repo returns the repository.
func (s *RepoSource) Repo() *repo.Repo { return s.r }

// Seq implements Source.
func (s *RepoSource) Seq() uint64 { return s.r.Seq() }

// Epoch implements Source.
func (s *RepoSource) Epoch() uint64 { return s.r.Epoch() }

// Since implements Source.
func (s *RepoSource) Since(seq uint64) ([]string, uint64) { return s.r.Since(seq) }

// Keys implements Source. It lists the keys in the order of the items'
// first commits, which is about the order their states sit in memory, so
// that a scan reads them with fewer cache misses than in map order.
func (s *RepoSource) Keys() []string {
	keys := make([]string, 0, s.r.Count())
	for e := range s.r.All() {
		keys = append(keys, e.Key)
	}
	return keys
}

// Changed implements Source.
func (s *RepoSource) Changed() <-chan struct{} { return s.r.Changed() }

// Closed implements Source.
func (s *RepoSource) Closed() bool { return s.r.Closed() }

// LogFile implements Log.
func (s *RepoSource) LogFile() (vfs.FS, string) { return s.fs, s.r.Path() }

// Flush implements Log.
func (s *RepoSource) Flush() error { return s.r.Flush() }

// Load implements Source: the value, schema and head read together.
func (s *RepoSource) Load(key string) (Item, bool, error) {
	e, ok := s.r.Lookup(key)
	if !ok {
		return Item{}, false, nil
	}
	it, err := s.present(key, e.Value, e.Schema, e.Head)
	return it, err == nil, err
}

// LoadAt implements Source: the cached head value when head is still the
// head, else the value the commit holds.
func (s *RepoSource) LoadAt(key string, head commit.ID) (Item, error) {
	if e, ok := s.r.Lookup(key); ok && e.Head == head {
		return s.present(key, e.Value, e.Schema, head)
	}
	v, sch, err := s.r.ValueAt(head)
	if err != nil {
		return Item{}, err
	}
	return s.present(key, v, sch, head)
}

func (s *RepoSource) present(key string, v item.Item, sch commit.Schema, head commit.ID) (Item, error) {
	if s.upgrade != nil {
		var err error
		if v, sch, err = s.upgrade(key, v, sch); err != nil {
			return Item{}, err
		}
	}
	return Item{Key: key, Value: v, Schema: sch, Head: head}, nil
}
