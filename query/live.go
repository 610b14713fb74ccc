package query

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/tidwall/btree"
)

// sub is one subscription. Its queue fields are guarded by the query's mu.
type sub struct {
	fn        func(Event)
	initial   *btree.BTreeG[*entry] // results to deliver as Added first
	pending   []change
	errs      []error
	cancelled atomic.Bool
}

// queue appends changes, coalescing them with those still pending.
func (s *sub) queue(vis []change) {
	if len(vis) == 0 {
		return
	}
	if len(s.pending) == 0 {
		s.pending = append(s.pending, vis...)
		return
	}
	index := make(map[string]int, len(s.pending))
	for i, p := range s.pending {
		if p.kind() != 0 {
			index[p.key()] = i
		}
	}
	for _, v := range vis {
		i, ok := index[v.key()]
		if !ok {
			index[v.key()] = len(s.pending)
			s.pending = append(s.pending, v)
			continue
		}
		merged, keep := coalesce(s.pending[i], v)
		if !keep {
			delete(index, v.key())
		}
		s.pending[i] = merged
	}
}

// Subscribe calls fn with the query's visible results as Added events, in
// order, and then with every change of them (Added, Removed, Changed) and
// every failed update (Failed), until cancel is called or the query is
// closed. The first call starts the query's watcher goroutine, which
// updates the query whenever its repository's sequence number advances
// (local writes and commits received by sync alike) and delivers the
// changes; Close stops it.
//
// fn runs on the watcher, never concurrently with itself. It may call the
// query's other methods, except Close. Changes pile up while fn is slow,
// coalesced to at most one per item. After cancel returns, fn is not
// called again once a call in progress returns.
func (q *Query) Subscribe(fn func(Event)) (cancel func()) {
	s := &sub{fn: fn}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return func() {}
	}
	q.joining = append(q.joining, s)
	if !q.watching {
		q.watching = true
		q.wg.Add(1)
		go q.watch()
	}
	q.mu.Unlock()
	q.signal()
	return func() {
		s.cancelled.Store(true)
		q.mu.Lock()
		q.subs = slices.DeleteFunc(q.subs, func(x *sub) bool { return x == s })
		q.joining = slices.DeleteFunc(q.joining, func(x *sub) bool { return x == s })
		q.mu.Unlock()
		q.signal()
	}
}

// watch is the watcher goroutine: update, deliver, wait for a change.
func (q *Query) watch() {
	defer q.wg.Done()
	for {
		changed := q.src.Changed()
		if q.src.Closed() || q.lock(q.ctx) != nil {
			q.stopWatching(true)
			return
		}
		err := q.update(q.ctx)
		q.activate()
		q.unlock()
		q.record(q.ctx, err)
		q.deliver()
		if q.stopWatching(false) {
			return
		}
		select {
		case <-changed:
		case <-q.wake:
		case <-q.ctx.Done():
		}
	}
}

// stopWatching ends the watcher if forced or nobody subscribes any more.
func (q *Query) stopWatching(force bool) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if force || len(q.subs)+len(q.joining) == 0 || q.closed {
		q.watching = false
		// Wake every Wait: with no watcher to deliver, they update
		// themselves.
		close(q.deliveredCh)
		q.deliveredCh = make(chan struct{})
		return true
	}
	return false
}

// activate gives new subscribers the published results; the update lock
// is held, so no pass is between computing and queueing its changes.
func (q *Query) activate() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, s := range q.joining {
		s.initial = q.snap
		q.subs = append(q.subs, s)
	}
	q.joining = nil
}

// record keeps an update's outcome for Err and Wait, and queues a failure
// for the subscribers. Cancellation and closing are not failures.
func (q *Query) record(ctx context.Context, err error) {
	if err != nil && (errors.Is(err, ctx.Err()) || errors.Is(err, ErrClosed)) {
		return
	}
	q.mu.Lock()
	q.failed = err
	if err != nil {
		for _, s := range q.subs {
			s.errs = append(s.errs, err)
		}
	}
	q.mu.Unlock()
	if err != nil {
		q.signal()
	}
}

// deliver calls the subscribers with what is queued for them.
func (q *Query) deliver() {
	type job struct {
		s       *sub
		initial *btree.BTreeG[*entry]
		pending []change
		errs    []error
	}
	q.mu.Lock()
	jobs := make([]job, 0, len(q.subs))
	for _, s := range q.subs {
		jobs = append(jobs, job{s, s.initial, s.pending, s.errs})
		s.initial, s.pending, s.errs = nil, nil, nil
	}
	seq, epoch := q.pubSeq, q.pubEpoch
	q.mu.Unlock()
	for _, j := range jobs {
		if j.initial != nil {
			q.scanVisible(j.initial, func(e *entry) { q.call(j.s, change{new: e}) })
		}
		for _, v := range j.pending {
			if v.kind() != 0 {
				q.call(j.s, v)
			}
		}
		for _, err := range j.errs {
			q.emit(j.s, Event{Kind: Failed, Err: err})
		}
	}
	q.mu.Lock()
	if seq > q.delivered || epoch != q.delEpoch {
		q.delivered, q.delEpoch = seq, epoch
		close(q.deliveredCh)
		q.deliveredCh = make(chan struct{})
	}
	q.mu.Unlock()
}

// call turns a visible change into an event and delivers it.
func (q *Query) call(s *sub, v change) {
	ev := Event{Kind: v.kind()}
	var err error
	switch v.kind() {
	case Added:
		ev.Item, err = v.new.item(q.src)
	case Removed:
		ev.Item, err = v.old.item(q.src)
	case Changed:
		if ev.Item, err = v.new.item(q.src); err == nil {
			ev.Old, err = v.old.item(q.src)
		}
	}
	if err != nil {
		ev = Event{Kind: Failed, Err: fmt.Errorf("query %s: %w", q.spec.Name, err)}
	}
	q.emit(s, ev)
}

// emit calls the subscriber's function unless it was cancelled; a panic
// cancels the subscription.
func (q *Query) emit(s *sub, ev Event) {
	if s.cancelled.Load() {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			s.cancelled.Store(true)
			q.log.Error("query subscriber panicked; subscription cancelled", "query", q.spec.Name, "panic", fmt.Sprint(p))
			q.mu.Lock()
			q.subs = slices.DeleteFunc(q.subs, func(x *sub) bool { return x == s })
			q.mu.Unlock()
		}
	}()
	s.fn(ev)
}

// Wait returns once the query reflects at least the source position of
// the moment it was called: with subscribers, when the watcher has
// delivered every change up to there; without, by updating. It returns
// the update's error if the watcher's last update failed. After a
// compaction (a new epoch) it waits for the position of the new epoch.
func (q *Query) Wait(ctx context.Context) error {
	epoch, target := q.position()
	for {
		q.mu.Lock()
		closed, watching, delivered, delEpoch, failed, ch := q.closed, q.watching, q.delivered, q.delEpoch, q.failed, q.deliveredCh
		q.mu.Unlock()
		switch {
		case closed:
			return ErrClosed
		case !watching:
			return q.Update(ctx)
		case delEpoch == epoch && delivered >= target:
			return nil
		case failed != nil:
			return failed
		case delEpoch != epoch && q.src.Epoch() != epoch: // compacted: positions started over
			epoch, target = q.position()
			continue
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// position returns the source's epoch and its position in it.
func (q *Query) position() (epoch, seq uint64) {
	for {
		epoch, seq = q.src.Epoch(), q.src.Seq()
		if q.src.Epoch() == epoch {
			return epoch, seq
		}
	}
}
