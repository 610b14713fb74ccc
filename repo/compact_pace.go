package repo

// A compaction shares the disk and the processors with the writers it
// runs beside. On a busy machine a writer's latency is mostly its fsync,
// and an fsync slows down when another file's writeback is in flight
// with it (the journal commits them together) or when every processor
// is busy when the disk answers (the writer's thread waits for one). So
// the copy is written and synced in small pieces (syncEvery), and before
// each piece, and each planning batch, the compaction waits for the log
// flush in progress, if any, to end (yieldToWriters): it then runs
// between writers' fsyncs instead of during them.

// yieldToWriters waits until the log flush in progress, if any, ends. It
// waits for one flush at most, so that writers that keep the log busy
// slow a compaction down but never stall it.
func (r *Repo) yieldToWriters() {
	w := r.log
	if w == nil {
		return
	}
	w.mu.Lock()
	if w.busy {
		w.cond.Wait() // broadcast when the flush ends
	}
	w.mu.Unlock()
}
