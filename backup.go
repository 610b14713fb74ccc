package goatdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/vfs"
)

// Backup writes a consistent copy of the data directory to dest, a
// directory that must not exist yet or be empty (and must not lie inside
// the data directory), while writers go on. Opening the copy gives every
// commit acknowledged before Backup was called, and possibly later ones.
//
// Each repository's log is copied up to a point taken when its copy
// begins, cut at the end of a complete record: on the database that writes
// the directory, the log position after its last commit (flushed first);
// on a read-only one, which may run beside a writer in another process,
// the end of the last complete record in the bytes copied. A log whose
// header is damaged is copied as it is, with a warning. Every file is
// written through a temporary file that is synced and renamed, and every
// directory created is synced, so a crash during Backup leaves no file
// that looks complete but is not; only a nil error means the copy is
// whole. The session key, the stored logins (credentials.json) and a
// server's deployment identity (auth/, all mode 0600) and schemas.json are
// copied too; sync resume points and saved query states are not (they are
// rebuilt).
//
// To restore, stop the process that has the directory open, move the
// directory aside and put the copy in its place.
func (db *DB) Backup(ctx context.Context, dest string) error {
	if db.isClosed() {
		return ErrClosed
	}
	if err := db.saveKey(); err != nil { // the copy holds it
		return fmt.Errorf("goatdb: backup: %w", err)
	}
	if err := db.backupDest(dest); err != nil {
		return fmt.Errorf("goatdb: backup to %s: %w", dest, err)
	}
	repos, err := db.Repos()
	if err != nil {
		return fmt.Errorf("goatdb: backup: %w", err)
	}
	for _, rp := range repos {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("goatdb: backup: %w", err)
		}
		if err := db.backupRepo(rp, dest); err != nil {
			return fmt.Errorf("goatdb: backup %s: %w", rp, err)
		}
	}
	files := []struct {
		name string
		perm fs.FileMode
	}{{keyFile, 0o600}, {schemaFile, 0o644}, {credFileName, 0o600}}
	for _, name := range identityFiles {
		files = append(files, struct {
			name string
			perm fs.FileMode
		}{name, 0o600})
	}
	for _, f := range files {
		if err := db.backupFile(f.name, dest, f.perm); err != nil {
			return fmt.Errorf("goatdb: backup %s: %w", f.name, err)
		}
	}
	return nil
}

// identityFiles are a server's deployment identity in its data directory
// (package server's OpenIdentity): without them a restored server would
// be a new deployment, and every session would have to log in again.
var identityFiles = []string{"auth/audience", "auth/root.key", "auth/root.pub", "auth/node.key", "auth/node.cert"}

// schemaFile is the schema file the goatdb command reads from the data
// directory; Backup copies it.
const schemaFile = "schemas.json"

// backupDest checks that dest is a new or empty directory outside the
// data directory, creating it (durably) if needed.
func (db *DB) backupDest(dest string) error {
	src, err := filepath.Abs(db.dir)
	if err != nil {
		return err
	}
	dst, err := filepath.Abs(dest)
	if err != nil {
		return err
	}
	if rel, err := filepath.Rel(src, dst); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("the destination is inside the data directory %s; give a directory outside it", db.dir)
	}
	entries, err := db.fs.ReadDir(dest)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return vfs.MkdirAllSync(db.fs, dest, 0o755)
	case err != nil:
		return err
	case len(entries) > 0:
		return fmt.Errorf("%w: the destination is not empty; give a new or empty directory (a backup never overwrites one)", fs.ErrExist)
	}
	return nil
}

// backupRepo copies one repository's log into dest, and then its
// quarantine file if it has one. In that order, a copy never lacks damaged
// bytes: recovery writes them to the quarantine file before it rebuilds
// the log without them.
func (db *DB) backupRepo(rp, dest string) error {
	src := db.logPath(rp)
	dst := filepath.Join(dest, filepath.FromSlash(rp[1:])+".log")
	if err := vfs.MkdirAllSync(db.fs, filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := db.backupLog(rp, src, dst); err != nil {
		return err
	}
	err := db.copyFile(src+quarantineSuffix, dst+quarantineSuffix)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// quarantineSuffix names the file beside a log that keeps the damaged
// ranges recovery took out of it (see package repo).
const quarantineSuffix = ".quarantine"

// backupLog copies the log at src to dst.
func (db *DB) backupLog(rp, src, dst string) error {
	if db.opts.ReadOnly {
		return db.copyLog(src, dst, -1)
	}
	r, release, err := db.hold(rp, false)
	defer release()
	switch {
	case damaged(err):
		db.opts.Logger.Warn("backup: copying a log that cannot be opened as it is", "repo", rp, "err", err)
		return db.copyLog(src, dst, -1)
	case err != nil:
		return err
	case r == nil: // removed since it was listed
		return nil
	}
	end := r.Seq() // taken before the flush, which makes every byte up to it durable
	if err := r.Flush(); err != nil {
		return err
	}
	return db.copyLog(src, dst, int64(end))
}

// copyFile copies the file at src to dst as it is.
func (db *DB) copyFile(src, dst string) error {
	in, err := db.fs.OpenFile(src, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeStreamed(db.fs, dst, 0o644, func(out vfs.File, _ string) error {
		_, err := io.Copy(out, in)
		return err
	})
}

// copyLog copies the log at src to dst. With end >= 0 it copies exactly
// end bytes, which must all be in src; with end < 0 it copies the whole
// file and cuts the copy at the end of its last complete record.
func (db *DB) copyLog(src, dst string, end int64) error {
	in, err := db.fs.OpenFile(src, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeStreamed(db.fs, dst, 0o644, func(out vfs.File, tmp string) error {
		if end >= 0 {
			n, err := io.Copy(out, io.NewSectionReader(in, 0, end))
			if err == nil && n < end {
				err = fmt.Errorf("log %s holds %d bytes, fewer than the %d written", src, n, end)
			}
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			return err
		}
		return db.cutCopy(out, tmp)
	})
}

// cutCopy cuts the copied log at tmp after its last complete record: the
// copy may end inside a record a writer was appending. A copy that cannot
// be opened (a damaged header) is kept whole.
func (db *DB) cutCopy(out vfs.File, tmp string) error {
	r, err := repo.Open(tmp, &repo.Options{FS: db.fs, ReadOnly: true, Trusted: db.opts.Trusted,
		Schemas: db.opts.Schemas, Logger: slog.New(slog.DiscardHandler)})
	if damaged(err) {
		db.opts.Logger.Warn("backup: copying a log that cannot be opened as it is", "path", tmp, "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	end := r.Seq()
	if err := r.Close(); err != nil {
		return err
	}
	return out.Truncate(int64(end))
}

// backupFile copies a file at the top of the data directory, if present.
func (db *DB) backupFile(name, dest string, perm fs.FileMode) error {
	data, err := db.fs.ReadFile(db.filePath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if dir := filepath.Dir(filepath.Join(dest, name)); dir != filepath.Clean(dest) {
		if err := vfs.MkdirAllSync(db.fs, dir, 0o700); err != nil {
			return err
		}
	}
	return vfs.WriteFileAtomic(db.fs, filepath.Join(dest, name), data, perm)
}

// damaged reports whether err says a log cannot be opened because of what
// it holds (rather than because it could not be read).
func damaged(err error) bool {
	return errors.Is(err, repo.ErrCorrupt) || errors.Is(err, repo.ErrNotLog) || errors.Is(err, repo.ErrVersion)
}

// writeStreamed writes name through a temporary file that fill writes, then
// syncs, closes and renames it into place and syncs the directory, like
// vfs.WriteFileAtomic for contents streamed rather than held in memory.
func writeStreamed(fsys vfs.FS, name string, perm fs.FileMode, fill func(f vfs.File, tmp string) error) error {
	tmp := name + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	err = fill(f, tmp)
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err != nil {
		return errors.Join(err, fsys.Remove(tmp))
	}
	if err := fsys.Rename(tmp, name); err != nil {
		return errors.Join(err, fsys.Remove(tmp))
	}
	return fsys.SyncDir(filepath.Dir(name))
}
