package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// batchTarget is how long a sample of a batched operation lasts at
// least: operations shorter than minSingle are repeated until it does.
const (
	minSingle   = time.Microsecond
	batchTarget = 20 * time.Microsecond
	calibrateN  = 100 // repetitions timed to decide a batch's size
)

// openEngine is an engine set up for a run.
type openEngine struct {
	spec *engineSpec
	eng  engine
}

// result is the summary of one operation on one engine.
type result struct {
	op   op
	spec *engineSpec
	summary
	compact *compactSummary // a compaction's sizes and pauses; nil for other operations
}

// runAll sets up the engines in a temporary directory under cfg.dir,
// runs every selected operation on them, and removes the directory, also
// on error. Progress goes to progress.
func runAll(ctx context.Context, cfg *config, progress io.Writer) (res []result, err error) {
	base, err := os.MkdirTemp(cfg.dir, "goatdb-compare-")
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(base)) }()
	var engines []*openEngine
	defer func() {
		for _, e := range engines {
			if cerr := e.eng.close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("%s: close: %w", e.spec.name, cerr))
			}
		}
	}()
	for i := range engineSpecs {
		e, err := setupEngine(cfg, &engineSpecs[i], base, progress)
		if err != nil {
			return nil, err
		}
		if e != nil {
			engines = append(engines, e)
		}
	}
	for _, o := range ops {
		r, err := runOp(ctx, cfg, o, engines, progress)
		if err != nil {
			return nil, err
		}
		res = append(res, r...)
	}
	return res, nil
}

// setupEngine sets up an engine, or returns nil if the run selects none
// of its operations.
func setupEngine(cfg *config, spec *engineSpec, base string, progress io.Writer) (*openEngine, error) {
	used, big := false, false
	for _, o := range ops {
		if cfg.selected(spec, o) {
			used = true
			big = big || o.kind == kindBig
		}
	}
	if !used {
		return nil, nil
	}
	dir := filepath.Join(base, spec.id)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	start := time.Now()
	e := &openEngine{spec: spec, eng: spec.new()}
	if err := e.eng.setup(dir, cfg.items, big); err != nil {
		return nil, errors.Join(fmt.Errorf("%s: setup: %w", spec.name, err), e.eng.close())
	}
	fmt.Fprintf(progress, "setup %-22s %v\n", spec.name, time.Since(start).Round(time.Millisecond))
	return e, nil
}

// job is one operation bound to one engine, with its samples.
type job struct {
	e     *openEngine
	t     task
	k     int // calls of the task so far
	reps  int // operations per timed sample
	times []float64
	// compacted has what each timed sample's compaction did, for a
	// compaction.
	compacted []compaction
}

// runOp runs one operation on every engine that the run selects for it:
// warm-up rounds, then timed rounds, each engine once per round in a
// random order so that drift hits all alike.
func runOp(ctx context.Context, cfg *config, o op, engines []*openEngine, progress io.Writer) ([]result, error) {
	title := o.title(cfg.items)
	var jobs []*job
	for _, e := range engines {
		if !cfg.selected(e.spec, o) {
			continue
		}
		prep := time.Now()
		t, err := e.eng.task(o.id)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", e.spec.name, title, err)
		}
		if o.kind == kindCompact { // builds the database to compact
			fmt.Fprintf(progress, "prepare %-20s %v\n", e.spec.name, time.Since(prep).Round(time.Millisecond))
		}
		jobs = append(jobs, &job{e: e, t: t, reps: 1})
	}
	if len(jobs) == 0 {
		return nil, nil
	}
	runtime.GC() // the previous operation's garbage
	start := time.Now()
	if err := rounds(ctx, title, jobs, cfg.warmups[o.kind], false); err != nil {
		return nil, err
	}
	for _, j := range jobs {
		if err := j.calibrate(title); err != nil {
			return nil, err
		}
	}
	if err := rounds(ctx, title, jobs, cfg.samples[o.kind], true); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "%-28s %v\n", title, time.Since(start).Round(time.Millisecond))
	res := make([]result, 0, len(jobs))
	for _, j := range jobs {
		res = append(res, result{op: o, spec: j.e.spec, summary: summarize(j.times, j.reps),
			compact: summarizeCompactions(j.compacted, j.t.pauseWhole)})
	}
	return res, nil
}

// rounds runs n rounds of one sample per job, in a random order each
// round, keeping the times if timed.
func rounds(ctx context.Context, title string, jobs []*job, n int, timed bool) error {
	order := make([]*job, len(jobs))
	copy(order, jobs)
	for range n {
		if err := ctx.Err(); err != nil {
			return err
		}
		rand.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		for _, j := range order {
			d, err := j.sample()
			if err != nil {
				return j.wrap(title, err)
			}
			if timed {
				j.times = append(j.times, float64(d.Nanoseconds())/float64(j.reps))
				if j.t.compacted != nil {
					j.compacted = append(j.compacted, *j.t.compacted)
				}
			}
		}
	}
	return nil
}

// sample runs one sample: before, reps timed runs, after.
func (j *job) sample() (time.Duration, error) {
	first := j.k
	if j.t.compacted != nil {
		*j.t.compacted = compaction{}
	}
	if j.t.before != nil {
		if err := j.t.before(first); err != nil {
			return 0, err
		}
	}
	if j.t.gc {
		runtime.GC()
	}
	start := time.Now()
	for range j.reps {
		if err := j.t.run(j.k); err != nil {
			return 0, err
		}
		j.k++
	}
	d := time.Since(start)
	if j.t.after != nil {
		if err := j.t.after(first); err != nil {
			return 0, err
		}
	}
	return d, nil
}

// calibrate sets the batch size of a batched task: operations shorter
// than minSingle are timed batchTarget at a time.
func (j *job) calibrate(title string) error {
	if !j.t.batch {
		return nil
	}
	start := time.Now()
	for range calibrateN {
		if err := j.t.run(j.k); err != nil {
			return j.wrap(title, err)
		}
		j.k++
	}
	per := time.Since(start) / calibrateN
	if per < minSingle {
		j.reps = int(math.Ceil(float64(batchTarget) / float64(max(per, 1))))
	}
	return nil
}

// wrap names the engine and the operation in err.
func (j *job) wrap(title string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %s: %w", j.e.spec.name, title, err)
}
