package vfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces name's contents with data so that a crash at any
// moment leaves name holding either its old contents (or nothing, if it did
// not exist) or data, never a mix. It writes data to name+".tmp", fsyncs
// it, renames it over name, and fsyncs the directory; once it returns nil,
// data is durable.
//
// On failure it removes the temporary file, so it leaves none behind
// unless that removal also fails (its error is then joined to the first).
// A crash can leave name+".tmp" behind; the next call truncates and reuses
// it. Two concurrent calls for the same name share that file and must not
// overlap.
func WriteFileAtomic(fsys FS, name string, data []byte, perm fs.FileMode) error {
	tmp := name + ".tmp"
	if err := writeSynced(fsys, tmp, data, perm); err != nil {
		return err
	}
	if err := fsys.Rename(tmp, name); err != nil {
		return errors.Join(err, fsys.Remove(tmp))
	}
	return fsys.SyncDir(filepath.Dir(name))
}

// writeSynced creates or truncates name, writes data and fsyncs it. On
// failure it removes name.
func writeSynced(fsys FS, name string, data []byte, perm fs.FileMode) error {
	f, err := fsys.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err != nil {
		return errors.Join(err, fsys.Remove(name))
	}
	return nil
}

// MkdirAllSync creates dir and every missing directory above it, like
// MkdirAll, and makes each one it creates durable: it creates them from the
// top down and, after each, fsyncs its parent (SyncDir) so the new entry
// survives a crash. A directory that already exists costs one Stat and is
// not synced again; a file in the way is an error wrapping fs.ErrExist.
//
// On failure the directories created so far stay, each durable.
func MkdirAllSync(fsys FS, dir string, perm fs.FileMode) error {
	missing, err := missingDirs(fsys, filepath.Clean(dir))
	if err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		if err := fsys.MkdirAll(d, perm); err != nil {
			return err
		}
		if err := fsys.SyncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// MkdirAllDeferred creates dir and any missing parents as MkdirAll does,
// and returns the syncs MkdirAllSync would have made: each new directory's
// parent, top down. A caller whose new directories hold nothing durable
// yet (a file not yet written) defers the cost to its first durable write,
// which must call sync first; until then a crash may lose the directories.
func MkdirAllDeferred(fsys FS, dir string, perm fs.FileMode) (sync func() error, err error) {
	missing, err := missingDirs(fsys, filepath.Clean(dir))
	if err != nil {
		return nil, err
	}
	if err := fsys.MkdirAll(dir, perm); err != nil {
		return nil, err
	}
	return func() error {
		for i := len(missing) - 1; i >= 0; i-- {
			if err := fsys.SyncDir(filepath.Dir(missing[i])); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

// missingDirs returns dir and its ancestors that do not exist, deepest
// first, stopping at the first that exists.
func missingDirs(fsys FS, dir string) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := fsys.Stat(d)
		switch {
		case err == nil && fi.IsDir():
			return missing, nil
		case err == nil:
			return nil, &fs.PathError{Op: "mkdir", Path: d, Err: fs.ErrExist}
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			return missing, nil
		}
	}
}
