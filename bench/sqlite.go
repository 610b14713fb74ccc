package main

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/goatdb/goatdb"
	_ "modernc.org/sqlite" // the "sqlite" driver, pure Go
)

// The SQL of the workload. A repository is a table; tags are a JSON array.
const (
	sqlCreate   = `CREATE TABLE %[1]s (id TEXT PRIMARY KEY, title TEXT, count REAL, tags TEXT)`
	sqlIndex    = `CREATE INDEX %[1]s_count ON %[1]s (count)`
	sqlInsert   = `INSERT INTO %s (id, title, count, tags) VALUES (?, ?, ?, ?)`
	sqlUpdate   = `UPDATE writes SET title = ?, count = ?, tags = ? WHERE id = ?`
	sqlGet      = `SELECT title, count, tags FROM basic WHERE id = ?`
	sqlAll      = `SELECT id, title, count, tags FROM basic`
	sqlCount    = `SELECT COUNT(*) FROM basic`
	sqlKeys     = `SELECT id FROM basic ORDER BY id`
	sqlSimple   = `SELECT id, title, count, tags FROM basic WHERE count > 50`
	sqlComplex  = `SELECT id, title, count, tags FROM basic WHERE count > 30 AND count < 70 AND EXISTS (SELECT 1 FROM json_each(basic.tags) WHERE value = 'tag50') ORDER BY count DESC`
	sqliteBasic = "basic"  // the workload's repository
	sqliteWrite = "writes" // where writes go, so that basic keeps smallN items
)

// sqliteEngine runs the workload on SQLite (modernc.org/sqlite) in WAL
// mode, through database/sql with one connection.
type sqliteEngine struct {
	synchronous string // FULL or OFF

	dir     string
	db      *sql.DB // the main instance
	stmts   sqliteStmts
	ids     []string // ids[i] is item i of basic
	updates []string // items of writes that updates change
	n       int      // items of the big instance
	bigID   string   // item n/2 of the big instance
}

// open opens (or creates) a database file and connects to it, which sets
// the journal mode and synchronous pragmas.
func (e *sqliteEngine) open(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous("+e.synchronous+")")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	return db, nil
}

func (e *sqliteEngine) setup(dir string, n int, big bool) error {
	e.dir, e.n = dir, n
	if big {
		if err := e.buildBig(); err != nil {
			return fmt.Errorf("build %d items: %w", n, err)
		}
	}
	var err error
	if e.db, err = e.open(filepath.Join(dir, "main.db")); err != nil {
		return err
	}
	for _, t := range []string{sqliteBasic, sqliteWrite} {
		if err := sqliteTable(e.db, t); err != nil {
			return err
		}
	}
	if e.ids, err = sqliteInsert(e.db, sqliteBasic, 0, smallN); err != nil {
		return err
	}
	if e.updates, err = sqliteInsert(e.db, sqliteWrite, 0, updateN); err != nil {
		return err
	}
	return e.prepare()
}

// sqliteStmts are the main instance's prepared statements.
type sqliteStmts struct {
	insert, update, get, count, keys, simple, complex *sql.Stmt
}

func (s *sqliteStmts) all() map[string]**sql.Stmt {
	return map[string]**sql.Stmt{
		fmt.Sprintf(sqlInsert, sqliteWrite): &s.insert, sqlUpdate: &s.update, sqlGet: &s.get,
		sqlCount: &s.count, sqlKeys: &s.keys, sqlSimple: &s.simple, sqlComplex: &s.complex,
	}
}

func (e *sqliteEngine) prepare() error {
	for q, stmt := range e.stmts.all() {
		var err error
		if *stmt, err = e.db.Prepare(q); err != nil {
			return fmt.Errorf("prepare %s: %w", q, err)
		}
	}
	return nil
}

func (e *sqliteEngine) bigPath() string { return filepath.Join(e.dir, "big.db") }

func (e *sqliteEngine) buildBig() error {
	db, err := e.open(e.bigPath())
	if err != nil {
		return err
	}
	var ids []string
	if err = sqliteTable(db, sqliteBasic); err == nil {
		ids, err = sqliteInsert(db, sqliteBasic, 0, e.n)
	}
	if err == nil {
		e.bigID = ids[e.n/2]
	}
	return errors.Join(err, db.Close())
}

// sqliteTable creates a table and its index on count, in one transaction.
func sqliteTable(db *sql.DB, name string) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	_, err = tx.Exec(fmt.Sprintf(sqlCreate, name))
	if err == nil {
		_, err = tx.Exec(fmt.Sprintf(sqlIndex, name))
	}
	if err != nil {
		return errors.Join(err, tx.Rollback())
	}
	return tx.Commit()
}

// sqliteInsert inserts items lo..hi-1 in one transaction and returns
// their ids.
func sqliteInsert(db *sql.DB, table string, lo, hi int) ([]string, error) {
	tx, err := db.Begin()
	if err != nil {
		return nil, err
	}
	ids, err := sqliteInsertTx(tx, nil, table, lo, hi)
	if err != nil {
		return nil, errors.Join(err, tx.Rollback())
	}
	return ids, tx.Commit()
}

// sqliteInsertTx inserts items lo..hi-1 with stmt, an insert into table,
// or, if it is nil, a statement prepared for the call.
func sqliteInsertTx(tx *sql.Tx, stmt *sql.Stmt, table string, lo, hi int) ([]string, error) {
	if stmt == nil {
		s, err := tx.Prepare(fmt.Sprintf(sqlInsert, table))
		if err != nil {
			return nil, err
		}
		defer s.Close()
		stmt = s
	}
	ids := make([]string, 0, hi-lo)
	for i := lo; i < hi; i++ {
		id := goatdb.NewKey()
		if err := sqliteExec(stmt, id, recordOf(i)); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// sqliteExec runs an insert of r under id.
func sqliteExec(stmt *sql.Stmt, id string, r record) error {
	tags, err := json.Marshal(r.Tags)
	if err == nil {
		_, err = stmt.Exec(id, r.Title, r.Count, tags)
	}
	return err
}

func (e *sqliteEngine) close() error {
	if e.db == nil {
		return nil
	}
	var errs []error
	for _, s := range e.stmts.all() {
		if *s != nil {
			errs = append(errs, (*s).Close())
		}
	}
	return errors.Join(append(errs, e.db.Close())...)
}

func (e *sqliteEngine) task(op opID) (task, error) {
	switch op {
	case opCreateInstance:
		return e.createInstance(), nil
	case opOpenEmptyRepo:
		return task{run: func(k int) error { return sqliteTable(e.db, "empty"+strconv.Itoa(k)) }}, nil
	case opOpenBig:
		return e.openBig(), nil
	case opReadAll:
		return e.readAll(), nil
	case opCreate:
		return task{run: func(k int) error { return sqliteExec(e.stmts.insert, goatdb.NewKey(), recordOf(k)) }}, nil
	case opUpdate:
		return task{run: e.update}, nil
	case opBulkCreate:
		return task{run: e.bulkCreate}, nil
	case opReadByPath:
		return task{batch: true, run: func(k int) error { return e.read(e.stmts.get, k%smallN) }}, nil
	case opBulkRead:
		return task{batch: true, run: func(int) error { return e.bulkRead() }}, nil
	case opQuerySimple:
		return e.query(simpleQuery, e.stmts.simple), nil
	case opQueryComplex:
		return e.query(complexQuery, e.stmts.complex), nil
	case opCount:
		return task{batch: true, run: func(int) error { return e.count() }}, nil
	case opKeys:
		return task{batch: true, run: func(int) error { return e.keys() }}, nil
	case opCompact:
		return e.compact()
	}
	return task{}, errUnknownOp(op)
}

func (e *sqliteEngine) createInstance() task {
	var db *sql.DB
	path := func(k int) string { return filepath.Join(e.dir, "instance"+strconv.Itoa(k)+".db") }
	return task{
		run: func(k int) (err error) {
			db, err = e.open(path(k))
			return err
		},
		after: func(k int) error {
			errs := []error{db.Close()}
			for _, suffix := range []string{"", "-wal", "-shm"} {
				if err := os.Remove(path(k) + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		},
	}
}

// openBig opens the big instance and reads one item.
func (e *sqliteEngine) openBig() task {
	var db *sql.DB
	return task{
		gc: true,
		run: func(int) (err error) {
			if db, err = e.open(e.bigPath()); err != nil {
				return err
			}
			var r record
			return sqliteGet(db.QueryRow(sqlGet, e.bigID), &r)
		},
		after: func(int) error { return db.Close() },
	}
}

// readAll reads every item of the big instance, opened and read once
// before each sample, untimed.
func (e *sqliteEngine) readAll() task {
	var db *sql.DB
	var all *sql.Stmt
	return task{
		gc: true,
		before: func(int) (err error) {
			if db, err = e.open(e.bigPath()); err != nil {
				return err
			}
			if all, err = db.Prepare(sqlAll); err != nil {
				return err
			}
			return sqliteReadAll(all, e.n)
		},
		run:   func(int) error { return sqliteReadAll(all, e.n) },
		after: func(int) error { return errors.Join(all.Close(), db.Close()) },
	}
}

func sqliteReadAll(all *sql.Stmt, n int) error {
	var got int
	var sum float64
	err := sqliteRows(all, func(id string, r record) error {
		if r.Title == "" || len(r.Tags) != 2 {
			return fmt.Errorf("read all: bad item %s", id)
		}
		sum += r.Count
		got++
		return nil
	})
	if err == nil && (got != n || sum != countSum(n)) {
		err = fmt.Errorf("read all: %d items with count sum %v, want %d and %v", got, sum, n, countSum(n))
	}
	return err
}

// sqliteRows runs a query of (id, title, count, tags) and calls fn with
// each row, decoded.
func sqliteRows(stmt *sql.Stmt, fn func(id string, r record) error) error {
	rows, err := stmt.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	var id string
	var tags sql.RawBytes
	for rows.Next() {
		var r record
		if err := rows.Scan(&id, &r.Title, &r.Count, &tags); err != nil {
			return err
		}
		if err := json.Unmarshal(tags, &r.Tags); err != nil {
			return err
		}
		if err := fn(id, r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// sqliteGet scans a row of (title, count, tags) into r.
func sqliteGet(row *sql.Row, r *record) error {
	var tags []byte
	if err := row.Scan(&r.Title, &r.Count, &tags); err != nil {
		return err
	}
	return json.Unmarshal(tags, &r.Tags)
}

func (e *sqliteEngine) read(get *sql.Stmt, i int) error {
	var r record
	if err := sqliteGet(get.QueryRow(e.ids[i]), &r); err != nil {
		return err
	}
	return checkRead(i, r.Count)
}

// bulkRead reads bulkN items in one transaction.
func (e *sqliteEngine) bulkRead() error {
	tx, err := e.db.Begin()
	if err != nil {
		return err
	}
	get := tx.Stmt(e.stmts.get)
	for i := range bulkN {
		if err = e.read(get, i); err != nil {
			break
		}
	}
	return errors.Join(err, tx.Commit())
}

func (e *sqliteEngine) update(k int) error {
	r := recordOf(updateN + k)
	tags, err := json.Marshal(r.Tags)
	if err != nil {
		return err
	}
	res, err := e.stmts.update.Exec(r.Title, r.Count, tags, e.updates[k%updateN])
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return errors.Join(fmt.Errorf("update: %d rows", n), err)
	}
	return nil
}

// bulkCreate inserts bulkN items in one transaction.
func (e *sqliteEngine) bulkCreate(k int) error {
	tx, err := e.db.Begin()
	if err != nil {
		return err
	}
	insert := tx.Stmt(e.stmts.insert)
	if _, err := sqliteInsertTx(tx, insert, sqliteWrite, k*bulkN, (k+1)*bulkN); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	return tx.Commit()
}

func (e *sqliteEngine) query(q *queryDef, stmt *sql.Stmt) task {
	counts := make([]float64, 0, smallN)
	return task{batch: true, run: func(int) error {
		counts = counts[:0]
		err := sqliteRows(stmt, func(_ string, r record) error {
			counts = append(counts, r.Count)
			return nil
		})
		if err != nil {
			return err
		}
		return q.check(counts)
	}}
}

func (e *sqliteEngine) count() error {
	var n int
	if err := e.stmts.count.QueryRow().Scan(&n); err != nil {
		return err
	}
	if n != smallN {
		return fmt.Errorf("count: %d, want %d", n, smallN)
	}
	return nil
}

func (e *sqliteEngine) keys() error {
	rows, err := e.stmts.keys.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	keys := make([]string, 0, smallN)
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		keys = append(keys, id)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(keys) != smallN {
		return fmt.Errorf("keys: %d, want %d", len(keys), smallN)
	}
	return nil
}
