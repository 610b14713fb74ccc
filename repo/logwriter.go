package repo

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/goatdb/goatdb/vfs"
)

// maxFailedBuffer bounds what an Async log keeps buffered while its disk
// fails: past it, writes fail instead of growing memory.
const maxFailedBuffer = 64 << 20

// Space past the log's end is reserved a step at a time (logWriter.reserve):
// 1/8 of the log, within these bounds. A step costs one sync of a new file
// size, as every append did: at 16 KB, some forty small writes share it,
// and a server with 10,000 small repositories open reserves 160 MB.
const (
	reserveMin = 16 << 10
	reserveMax = 8 << 20
)

// logWriter appends records to a log file and makes them durable, sharing
// one fsync among all writers waiting at the same time (group commit).
//
// Records are written at the log's end with WriteAt. Where the file can
// reserve space (vfs.Allocator), the file reaches past the log's end, into
// zeros reserved ahead: a write lands in space that is already part of the
// file, so its sync has no new file size to make durable, which on Linux
// saves about a third of a small write's sync. The zeros are no part of
// the log. A crash leaves them after its last record, where recovery finds
// them past every claim and cuts them like any torn tail; Close gives them
// back. So the log is still a prefix of the file, and nothing in its
// format changes.
//
// A failed write or fsync does not stop the log for good. What was not
// durable is either dropped (keep false: under Sync every writer of it is
// told, and the records must never reappear: the file is cut back to its
// durable size and synced before they are told) or kept to be written
// again (keep true: under Async the writes were already acknowledged).
// Before anything is written again the file is cut back too; until that
// works the log reports the failure (Failure) and the next flush tries
// again.
type logWriter struct {
	f    vfs.File
	keep bool // keep unwritten records across a failure (Async)
	log  *slog.Logger

	// The space reserved past the log's end: the file reaches alloc
	// bytes, and allocator reserves more (nil: the file cannot, or failed
	// to, and writes extend it). Only the writer flushing (busy) and the
	// holders of hold use them.
	allocator vfs.Allocator
	alloc     int64
	reserved  bool // space was reserved: Close gives back what is unused

	mu      sync.Mutex // guards the fields below
	cond    sync.Cond  // signalled when durable, busy or failed change
	buf     []byte     // records appended but not yet written to f
	spare   []byte     // a drained buffer kept for reuse
	size    int64      // logical size of the log: durable bytes plus buf
	durable int64      // bytes known to be on stable storage
	busy    bool       // a writer is writing and syncing outside mu
	// marked: the last record on disk is a mark, so every byte of the log
	// is claimed and Close need not add one.
	marked bool
	// failed is the last write or sync failure, until a flush succeeds; the
	// file may hold bytes past durable then.
	failed error
	// gen counts the failures that dropped records; lostFrom[g] is the
	// durable size when generation g's records were dropped.
	gen      uint64
	lostFrom map[uint64]int64
	closed   bool
	// inc counts the files the log has been swapped to (compaction);
	// shifts[i] is how far the records after the copied prefix moved back
	// when file i was replaced, so a ticket of an earlier file can be
	// placed in this one (see at).
	inc    int
	shifts []int64
	// pre, if set, runs before the next write of records: the directory
	// syncs that must succeed before anything written to the file is
	// acknowledged (of a new log, or of a swap whose sync failed). Close
	// runs it too.
	pre func() error
}

// ticket names records appended: the log's end after them, the
// generation they were appended in, and the file (logWriter.inc) whose
// positions end counts.
type ticket struct {
	end int64
	gen uint64
	inc int
}

// at returns where t's records end in the current file. Records move back
// by a constant when the log is swapped for a compacted copy (the tail
// after the copied prefix is copied as it is), and everything before the
// swap was durable, so a ticket of an earlier file is placed, and found
// durable, by subtracting the shifts since. w.mu must be held.
func (w *logWriter) at(t ticket) int64 {
	end := t.end
	for i := t.inc; i < w.inc; i++ {
		end -= w.shifts[i]
	}
	return end
}

// newLogWriter returns a writer appending to f, whose size is the log's
// size: size bytes, all durable.
func newLogWriter(f vfs.File, size int64, covered, keep bool, log *slog.Logger) *logWriter {
	w := &logWriter{f: f, keep: keep, log: log, size: size, durable: size, marked: covered, lostFrom: map[uint64]int64{}}
	w.allocator, _ = f.(vfs.Allocator)
	w.alloc = size
	w.cond.L = &w.mu
	return w
}

// reserve makes the file reach at least end bytes. When it must grow, it
// reserves 1/8 of the log more past end (within reserveMin and
// reserveMax), so that the writes after this one land in reserved space.
// A file that cannot reserve space is left to grow by the write itself.
// The caller is the writer flushing (busy) or holds the log (hold).
func (w *logWriter) reserve(end int64) {
	if w.allocator == nil || end <= w.alloc {
		return
	}
	n := min(max(end/8, reserveMin), reserveMax)
	w.reserved = true
	if err := w.allocator.Allocate(w.alloc, end+n-w.alloc); err != nil {
		// Not fatal: the write extends the file as an append would.
		w.log.Debug("log: cannot reserve space past the end; writes extend the file", "err", err)
		w.allocator = nil
		return
	}
	w.alloc = end + n
}

// appendWith lets add append records to the buffer in place, framed with
// the given claim (the bytes known durable now), and returns their ticket.
func (w *logWriter) appendWith(add func(b []byte, claim int64) []byte) (ticket, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.appendLocked(add)
}

// errStaleGen is returned by appendIfGen when records were dropped since
// the caller looked.
var errStaleGen = errors.New("repo: log records dropped meanwhile")

// appendIfGen appends like appendWith if no records were dropped since
// generation gen.
func (w *logWriter) appendIfGen(gen uint64, add func(b []byte, claim int64) []byte) (ticket, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gen != gen {
		return ticket{}, errStaleGen
	}
	return w.appendLocked(add)
}

func (w *logWriter) appendLocked(add func(b []byte, claim int64) []byte) (ticket, error) {
	switch {
	case w.closed:
		return ticket{}, ErrClosed
	case w.failed != nil && w.keep && len(w.buf) > maxFailedBuffer:
		return ticket{}, w.failed
	}
	n := len(w.buf)
	w.buf = add(w.buf, w.durable)
	w.size += int64(len(w.buf) - n)
	return ticket{w.size, w.gen, w.inc}, nil
}

// durableSize returns how many bytes of the log are on stable storage.
func (w *logWriter) durableSize() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.durable
}

// generation returns the current generation.
func (w *logWriter) generation() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gen
}

// lost reports whether t's records were dropped by a failure.
func (w *logWriter) lost(t ticket) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lostLocked(t)
}

func (w *logWriter) lostLocked(t ticket) bool {
	from, dropped := w.lostFrom[t.gen]
	return dropped && t.end > from
}

// durableTo returns the durable size of the log.
func (w *logWriter) durableTo() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.durable
}

// ticketTo returns a ticket for the records up to end of the current file.
func (w *logWriter) ticketTo(end int64) ticket {
	w.mu.Lock()
	defer w.mu.Unlock()
	return ticket{end, w.gen, w.inc}
}

// place returns where t's records end in the current file.
func (w *logWriter) place(t ticket) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.at(t)
}

// isDurable reports whether t's records are durable.
func (w *logWriter) isDurable(t ticket) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.durable >= w.at(t)
}

// Failure returns the failure the log has not yet recovered from, or nil.
func (w *logWriter) Failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed
}

// pending returns how many bytes are buffered.
func (w *logWriter) pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.buf)
}

// sync makes t's records durable. Writers that call it while another
// writer is syncing wait and then sync everything buffered in the meantime
// with a single fsync. It fails if t's records were dropped, or if the
// flush that would write them fails.
func (w *logWriter) sync(t ticket) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		switch {
		case w.lostLocked(t):
			return w.lostErr()
		case w.durable >= w.at(t):
			return nil
		case w.busy:
			w.cond.Wait()
			continue
		}
		if err := w.flushLocked(); err != nil && w.keep {
			return err // Async: the records stay buffered for the next try
		}
	}
}

func (w *logWriter) lostErr() error {
	if w.failed != nil {
		return w.failed
	}
	return fmt.Errorf("%w: the write failed and was dropped", ErrLogFailed)
}

// flushLocked writes and syncs the buffer with mu released during the I/O,
// first cutting the file back to its durable size after a failure.
func (w *logWriter) flushLocked() error {
	w.busy = true
	buf, target, durable, repair, pre := w.buf, w.size, w.durable, w.failed != nil, w.pre
	w.buf = w.spare[:0]
	w.mu.Unlock()
	var err error
	if pre != nil {
		err = pre()
	}
	if err == nil && repair {
		err = w.cut(durable)
	}
	if err == nil && pre != nil && len(buf) == 0 {
		err = w.f.Sync() // a new log's header, with no record to carry it
	}
	if err == nil && len(buf) > 0 {
		w.reserve(durable + int64(len(buf)))
		if _, err = w.f.WriteAt(buf, durable); err == nil {
			err = w.f.Sync()
		}
		if err != nil && !w.keep {
			// Cut the failed bytes off before any writer hears of the
			// failure: on disk a whole record of a failed write looks
			// like an acknowledged one, and must not come back after a
			// crash.
			if cerr := w.cut(durable); cerr != nil {
				err = fmt.Errorf("%w; cutting the failed write off failed too (%v), so it may reappear after a crash", err, cerr)
			}
		}
	}
	w.mu.Lock()
	w.busy = false
	w.spare = nil
	switch {
	case err == nil:
		w.durable, w.failed = target, nil
		if pre != nil {
			w.pre = nil
		}
		w.marked = endsWithMark(buf, w.marked)
		w.spare = buf[:0]
	case w.keep:
		w.failed = fmt.Errorf("%w: %w", ErrLogFailed, err)
		w.buf = append(buf, w.buf...)
	default:
		w.failed = fmt.Errorf("%w: %w", ErrLogFailed, err)
		w.lostFrom[w.gen] = w.durable
		w.gen++
		w.buf, w.size = w.buf[:0], w.durable
	}
	w.cond.Broadcast()
	if err != nil {
		return w.failed
	}
	return nil
}

// repair retries a failed log: it cuts the file back to its durable size
// and writes what is buffered. It returns the failure that remains, if any.
func (w *logWriter) repair() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.busy {
		w.cond.Wait()
	}
	if w.failed == nil {
		return nil
	}
	return w.flushLocked()
}

// cut truncates the file to size, giving back any space reserved past it,
// and syncs it. The caller is the writer flushing (busy) or holds the log.
func (w *logWriter) cut(size int64) error {
	w.alloc = size
	if err := w.f.Truncate(size); err != nil {
		return err
	}
	return w.f.Sync()
}

// syncAll makes everything appended so far durable.
func (w *logWriter) syncAll() error {
	w.mu.Lock()
	t := ticket{w.size, w.gen, w.inc}
	w.mu.Unlock()
	return w.sync(t)
}

// close syncs, ends the log with a mark claiming all of it (so no byte of
// it can later be taken for a torn tail), gives back the space reserved
// past it, and closes the file.
func (w *logWriter) close() error {
	err := w.syncAll()
	if err == nil {
		w.mu.Lock()
		for w.busy {
			w.cond.Wait()
		}
		if w.pre != nil && w.failed == nil {
			err = w.flushLocked() // a new log's directory entries, with nothing to write
		}
		covered := w.marked
		w.mu.Unlock()
		if err == nil && !covered {
			var t ticket
			if t, err = w.appendWith(appendMark); err == nil {
				err = w.sync(t)
			}
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.busy {
		w.cond.Wait()
	}
	if err == nil && w.reserved && w.failed == nil {
		// The log is whole without this: the next open cuts the zeros.
		if cerr := w.cut(w.size); cerr != nil {
			w.log.Warn("log: give back the space reserved past the end", "err", cerr)
		}
	}
	w.closed = true
	return errors.Join(err, w.f.Close())
}

// hold waits for the flush in progress, if any, and returns holding w.mu
// with no failure outstanding (a failure is retried once), or an error with
// w.mu released. The records appended and not written yet are in w.buf;
// those before w.durable are in the file. The caller keeps writers from
// appending meanwhile (compaction holds the graph lock).
func (w *logWriter) hold() error {
	w.mu.Lock()
	for tried := false; ; tried = true {
		switch {
		case w.busy:
			w.cond.Wait()
			continue
		case w.closed:
			w.mu.Unlock()
			return ErrClosed
		case w.failed == nil && w.pre == nil:
			return nil
		case tried:
			err := w.failed
			w.mu.Unlock()
			return err
		}
		if err := w.flushLocked(); err != nil {
			w.mu.Unlock()
			return err
		}
	}
}

// swapLocked makes f the log's file and returns the file it replaces. f
// holds size bytes, durable up to durable: the records of the old file,
// and those that were buffered (w.buf), copied after them, so that every
// position after the prefix the compaction rewrote moved back by shift;
// tickets of the old file are placed by it (see at). The generation moves
// on too, so a failure of the new file never drops records of the old one.
// w.mu must be held, after hold.
func (w *logWriter) swapLocked(f vfs.File, size, durable, shift int64) vfs.File {
	old := w.f
	w.f, w.size, w.durable, w.marked = f, size, durable, true
	w.allocator, _ = f.(vfs.Allocator)
	w.alloc, w.reserved = size, false
	w.buf, w.spare = w.buf[:0], nil
	w.shifts = append(w.shifts, shift)
	w.inc++
	w.gen++
	return old
}

// failDirSync records that the directory entry of a swapped-in file may
// not be durable: nothing written to the file after it is acknowledged
// until sync succeeds. w.mu must be held.
func (w *logWriter) failDirSync(sync func() error, err error) {
	w.pre = sync
	w.failed = fmt.Errorf("%w: sync the directory after compaction: %w", ErrLogFailed, err)
}
