package goatdb

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/schema"
)

// PutOption changes what a write does: Put, Create, Update, Delete, and
// their Batch and Tx forms. Delete heeds only IfHead and IfAbsent.
type PutOption func(*putConfig)

type putConfig struct {
	ns      string    // schema namespace; "" keeps the item's own
	replace bool      // fields not named are removed
	ifHead  bool      // write only if the item's head is head
	head    commit.ID // with ifHead: the head expected; zero for none
	signer  ed25519.PrivateKey
	admit   func(c *commit.Commit, before, after item.Item) error
}

// SignedBy signs the write's commit with key, the private key of another
// session than the database's own: that session is the commit's author.
// A server uses it to write for a session whose key it holds (a web
// session of its JSON API); a commit a session did not sign must never be
// made to look as if it had.
func SignedBy(key ed25519.PrivateKey) PutOption { return func(c *putConfig) { c.signer = key } }

// Admit asks fn about the write's commit once it is built and signed, with
// the item's value before it (the zero item.Item for a new item) and
// after it: an error fails the write (the batch's writes to the
// repository), which then writes nothing. fn may run more than once, like
// an Update's function, and must not write to the database. A server asks
// its authorization rules here, as it does for commits that arrive by
// sync.
func Admit(fn func(c *commit.Commit, before, after item.Item) error) PutOption {
	return func(c *putConfig) { c.admit = fn }
}

// WithSchema validates the item against the newest version of the
// registered schema namespace ns (upgrading it if it had an older one).
func WithSchema(ns string) PutOption { return func(c *putConfig) { c.ns = ns } }

// Replace makes Put set the item to exactly the given fields, removing the
// others.
func Replace() PutOption { return func(c *putConfig) { c.replace = true } }

// IfHead makes a write conditional: it happens only if the item's head
// commit is still id (as returned by Put or read from Item.Head), and
// otherwise fails with ErrConflict and writes nothing. The zero id means
// the item must not exist (IfAbsent). The head is compared where the
// write is committed, under the repository's own check that heads did not
// move, so no other local write can come between.
func IfHead(id commit.ID) PutOption {
	return func(c *putConfig) { c.ifHead, c.head = true, id }
}

// IfAbsent makes a write happen only if the item does not exist (has no
// commit at all; a deleted item exists), and otherwise fail with
// ErrConflict: create-if-absent. It is IfHead(commit.ID{}).
func IfAbsent() PutOption { return IfHead(commit.ID{}) }

func newPutConfig(opts []PutOption) putConfig {
	var cfg putConfig
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

// inTxn refuses the options a transaction does not take: its commits are
// the database's own.
func (c *putConfig) inTxn(op, path string) error {
	if c.signer != nil || c.admit != nil {
		return fmt.Errorf("%s %s: SignedBy and Admit apply to Put, Update, Delete and Batch, not inside a Txn", op, path)
	}
	return nil
}

// check fails with ErrConflict, as op on path, when the item's head is not
// the one the write is conditional on.
func (c *putConfig) check(op, path string, head commit.ID) error {
	if !c.ifHead || head == c.head {
		return nil
	}
	return conflictError(op, path, c.head, head)
}

// conflictError says that the item at path has head found where want was
// expected, and what to do.
func conflictError(op, path string, want, found commit.ID) error {
	return &conflict{op: op, path: path, want: want, found: found}
}

// conflict is ErrConflict with the heads compared, for awaitConflict.
type conflict struct {
	op, path    string
	want, found commit.ID
}

func (c *conflict) Unwrap() error { return ErrConflict }

func (c *conflict) Error() string {
	var what string
	switch {
	case c.want == commit.ID{}:
		what = fmt.Sprintf("the item exists (head %s), expected absent", c.found.Short())
	case c.found == commit.ID{}:
		what = fmt.Sprintf("the item does not exist, expected head %s", c.want.Short())
	default:
		what = fmt.Sprintf("head moved from %s to %s since it was read", c.want.Short(), c.found.Short())
	}
	return fmt.Sprintf("%s %s: %v: %s; read it again and retry, or use DB.Update, which retries by itself",
		c.op, c.path, ErrConflict, what)
}

// maxConflictWait bounds awaitConflict, for a write that never becomes
// durable.
const maxConflictWait = time.Second

// awaitConflict returns once readers of r can see the move that made a
// conditional write fail with err. The move may be another write still
// waiting for its fsync (a write builds on it at once while readers see
// it only once durable): a caller that read the item again at once would
// read the same head again and conflict again. It waits until the item's
// head readers see is no longer the one expected, at most
// maxConflictWait.
func awaitConflict(r *repo.Repo, err error) {
	var c *conflict
	if !errors.As(err, &c) {
		return
	}
	_, key, _ := SplitPath(c.path)
	deadline := time.NewTimer(maxConflictWait)
	defer deadline.Stop()
	for {
		changed := r.Changed()
		if head, _ := r.Head(key); head != c.want || r.Closed() {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			return
		}
	}
}

// Put sets the named fields of the item at path, creating the item if
// needed and restoring it if deleted; a nil field value removes the field,
// and other fields keep their values. An item with a registered schema is
// validated against it (and upgraded to its newest version); with none,
// field types come from the values. On any error nothing is written. It
// returns the item's new head commit id. With IfHead or IfAbsent it writes
// only if the item's head is the one given, else fails with ErrConflict.
// On a read-only database every write fails with ErrReadOnly.
func (db *DB) Put(path string, fields Fields, opts ...PutOption) (commit.ID, error) {
	b := Batch{db: db, ops: make([]batchOp, 0, 1)}
	b.Put(path, fields, opts...)
	var id [1]commit.ID
	if err := b.commitOne(id[:]); err != nil {
		return commit.ID{}, err
	}
	return id[0], nil
}

// Create creates an item with a new random key in the repository
// /type/repo and returns its path.
func (db *DB) Create(repoPath string, fields Fields, opts ...PutOption) (string, error) {
	path := repoPath + "/" + NewKey()
	if _, err := db.Put(path, fields, opts...); err != nil {
		return "", err
	}
	return path, nil
}

// Delete marks the item deleted (a soft delete: its history stays, and Put
// restores it). Deleting a missing item fails with ErrNotFound. With
// IfHead it deletes only if the item's head is the one given, else fails
// with ErrConflict; other options are ignored.
func (db *DB) Delete(path string, opts ...PutOption) error {
	b := db.Batch()
	b.Delete(path, opts...)
	_, err := b.Commit()
	return err
}

var keyEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// NewKey returns a random item key of 16 characters (80 bits).
func NewKey() string {
	var b [10]byte
	rand.Read(b[:])
	return keyEncoding.EncodeToString(b[:])
}

// Batch collects writes and commits them together: the writes to each
// repository are atomic (all or none) and share one fsync. Writes to
// different repositories are committed one repository after another.
// Writes made conditional with IfHead or IfAbsent are checked together
// when their repository's writes are committed: if any finds its item
// moved, Commit fails with ErrConflict and none of that repository's
// writes happens.
type Batch struct {
	db  *DB
	ops []batchOp
}

type batchOp struct {
	repo, path string
	update     repo.Update
	err        error
}

// Batch starts a batch.
func (db *DB) Batch() *Batch { return &Batch{db: db} }

// Put adds a Put to the batch.
func (b *Batch) Put(path string, fields Fields, opts ...PutOption) {
	cfg := newPutConfig(opts)
	b.add(path, cfg, func(cur repo.Current) (item.Item, commit.Schema, error) {
		if err := cfg.check("put", path, cur.Head); err != nil {
			return item.Item{}, commit.Schema{}, err
		}
		return b.db.applyPut(cur, path, fields, cfg)
	})
}

// Create adds the creation of an item with a new key and returns its path.
func (b *Batch) Create(repoPath string, fields Fields, opts ...PutOption) string {
	path := repoPath + "/" + NewKey()
	b.Put(path, fields, opts...)
	return path
}

// Delete adds a Delete to the batch.
func (b *Batch) Delete(path string, opts ...PutOption) {
	cfg := newPutConfig(opts)
	b.add(path, cfg, func(cur repo.Current) (item.Item, commit.Schema, error) {
		if err := cfg.check("delete", path, cur.Head); err != nil {
			return item.Item{}, commit.Schema{}, err
		}
		return applyDelete(cur, path)
	})
}

// applyDelete computes the item after a Delete.
func applyDelete(cur repo.Current, path string) (item.Item, commit.Schema, error) {
	if !cur.Exists {
		return item.Item{}, commit.Schema{}, fmt.Errorf("delete %s: %w", path, ErrNotFound)
	}
	return cur.Value.WithDeleted(true), cur.Schema, nil
}

func (b *Batch) add(path string, cfg putConfig, fn func(repo.Current) (item.Item, commit.Schema, error)) {
	rp, key, err := SplitPath(path)
	u := repo.Update{Key: key, Fn: fn, Signer: cfg.signer, Admit: cfg.admit}
	b.ops = append(b.ops, batchOp{repo: rp, path: path, update: u, err: err})
}

// Commit writes the batch and returns each item's head commit id after it,
// in the order of the operations (an operation that changed nothing gets
// the item's existing head). On error, the repositories written before the failing
// one keep their writes; the failing one and the rest get none.
func (b *Batch) Commit() ([]commit.ID, error) {
	if err := b.db.writable(); err != nil {
		return nil, err
	}
	ids := make([]commit.ID, len(b.ops))
	if len(b.ops) == 1 {
		return ids, b.commitOne(ids)
	}
	byRepo := map[string][]int{}
	var order []string
	for i, op := range b.ops {
		if op.err != nil {
			return nil, op.err
		}
		if _, ok := byRepo[op.repo]; !ok {
			order = append(order, op.repo)
		}
		byRepo[op.repo] = append(byRepo[op.repo], i)
	}
	for _, rp := range order {
		if err := b.commitRepo(rp, byRepo[rp], ids); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// commitOne commits a batch of one operation.
func (b *Batch) commitOne(ids []commit.ID) error {
	if err := b.db.writable(); err != nil {
		return err
	}
	if b.ops[0].err != nil {
		return b.ops[0].err
	}
	return b.commitRepo(b.ops[0].repo, []int{0}, ids)
}

func (b *Batch) commitRepo(rp string, idx []int, ids []commit.ID) error {
	updates := make([]repo.Update, len(idx))
	for i, j := range idx {
		updates[i] = b.ops[j].update
	}
	r, release, err := b.db.hold(rp, false)
	if err != nil {
		return err
	}
	if r == nil {
		// A new repository: check the writes before its log is created, so
		// that bad input leaves nothing behind.
		if err := dryRun(updates); err != nil {
			return err
		}
		if r, release, err = b.db.Acquire(rp); err != nil {
			return err
		}
	}
	defer release()
	commits, err := r.Write(updates...)
	if err != nil {
		awaitConflict(r, err)
		return err
	}
	written := make(map[string]commit.ID, len(commits))
	for _, c := range commits {
		written[c.Key()] = c.ID()
	}
	for _, j := range idx {
		key := b.ops[j].update.Key
		if id, ok := written[key]; ok {
			ids[j] = id
		} else {
			ids[j], _ = r.Head(key) // unchanged, or merged meanwhile
		}
	}
	return nil
}

// writable fails with ErrReadOnly on a read-only database.
func (db *DB) writable() error {
	if db.opts.ReadOnly {
		return fmt.Errorf("write to %s: %w", db.dir, ErrReadOnly)
	}
	return nil
}

// dryRun runs updates against empty items, as they would run in a new
// repository.
func dryRun(updates []repo.Update) error {
	cur := map[string]repo.Current{}
	for _, u := range updates {
		c, ok := cur[u.Key]
		if !ok {
			c = repo.Current{Key: u.Key}
		}
		v, s, err := u.Fn(c)
		if err != nil {
			return err
		}
		c.Value, c.Schema, c.Exists = v, s, true
		cur[u.Key] = c
	}
	return nil
}

// applyPut computes the item after a Put.
func (db *DB) applyPut(cur repo.Current, path string, fields Fields, cfg putConfig) (item.Item, commit.Schema, error) {
	wrap := func(err error) error { return fmt.Errorf("put %s: %w", path, err) }
	base, sch, err := db.target(cur, cfg.ns)
	if err != nil {
		return item.Item{}, commit.Schema{}, wrap(err)
	}
	if cfg.replace || !cur.Exists {
		base = item.Item{}
	}
	set := make([]item.Field, 0, len(fields))
	var remove []string
	for name, x := range fields {
		if x == nil {
			remove = append(remove, name)
			continue
		}
		v, err := db.fieldValue(sch, name, x)
		if err != nil {
			return item.Item{}, commit.Schema{}, wrap(err)
		}
		set = append(set, item.Field{Name: name, Value: v})
	}
	next := base.WithDeleted(false).Update(set, remove)
	if sch != nil {
		next = sch.WithDefaults(next)
		err = sch.Check(next)
	} else {
		err = schema.CheckDynamic(next)
	}
	if err != nil {
		return item.Item{}, commit.Schema{}, wrap(err)
	}
	var ref commit.Schema
	if sch != nil {
		ref = sch.Ref()
	}
	return next, ref, nil
}

// target returns the item's current value upgraded to the schema it is to
// be written with, and that schema (nil for the dynamic schema).
func (db *DB) target(cur repo.Current, ns string) (item.Item, *schema.Schema, error) {
	if ns == "" {
		ns = cur.Schema.NS
	}
	if ns == "" {
		return cur.Value, nil, nil
	}
	sch, ok := db.opts.Schemas.Latest(ns)
	if !ok {
		return item.Item{}, nil, fmt.Errorf("%w: schema %q is not registered", schema.ErrUnknownSchema, ns)
	}
	if !cur.Exists || cur.Schema == sch.Ref() || cur.Schema.NS == "" {
		// New, current, or dynamic items take the schema as they are and
		// are checked against it in full.
		return cur.Value, sch, nil
	}
	if cur.Schema.NS != ns {
		return item.Item{}, nil, fmt.Errorf("item has schema %s, not %s", cur.Schema, ns)
	}
	v, err := db.opts.Schemas.Upgrade(cur.Value, cur.Schema, sch.Version)
	return v, sch, err
}

func (db *DB) fieldValue(sch *schema.Schema, name string, x any) (item.Value, error) {
	if strings.TrimSpace(name) == "" {
		return item.Value{}, errors.New("empty field name")
	}
	if sch != nil {
		return sch.CoerceAny(name, x)
	}
	v, err := item.FromAny(x)
	if err != nil {
		return item.Value{}, fmt.Errorf("field %q: %w", name, err)
	}
	return v, nil
}
