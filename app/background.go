package app

import (
	"sync"
	"sync/atomic"
)

// background runs slow work (exports, file dialogs) off the UI goroutine and
// hands the outcome back to it: the work reports progress as it goes, and
// its done function runs on the UI goroutine at the start of a later frame.
type background struct {
	mu         sync.Mutex
	posted     []func()
	jobs       []*job
	invalidate func()
}

// job is one piece of background work, for the status line.
type job struct {
	name        string
	done, total atomic.Int64
}

// Progress reports how far a job is (safe from the job's goroutine).
func (j *job) Progress(done, total int) {
	j.done.Store(int64(done))
	j.total.Store(int64(total))
	// the status line reads it at its next frame
}

func newBackground(invalidate func()) *background { return &background{invalidate: invalidate} }

// Go runs work on its own goroutine as a job named name; done(err) then
// runs on the UI goroutine.
func (b *background) Go(name string, work func(j *job) error, done func(error)) {
	j := &job{name: name}
	b.mu.Lock()
	b.jobs = append(b.jobs, j)
	b.mu.Unlock()
	go func() {
		err := work(j)
		b.post(func() {
			b.mu.Lock()
			for i, x := range b.jobs {
				if x == j {
					b.jobs = append(b.jobs[:i:i], b.jobs[i+1:]...)
					break
				}
			}
			b.mu.Unlock()
			if done != nil {
				done(err)
			}
		})
	}()
}

// post runs f on the UI goroutine at the start of the next frame.
func (b *background) post(f func()) {
	b.mu.Lock()
	b.posted = append(b.posted, f)
	b.mu.Unlock()
	if b.invalidate != nil {
		b.invalidate()
	}
}

// runPosted runs what was posted (UI goroutine).
func (b *background) runPosted() {
	b.mu.Lock()
	fs := b.posted
	b.posted = nil
	b.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

// busy reports whether jobs are running (the window redraws for their
// progress).
func (b *background) busy() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.jobs) > 0 || len(b.posted) > 0
}

// running describes the running jobs: name and progress.
func (b *background) running() []jobState {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []jobState
	for _, j := range b.jobs {
		out = append(out, jobState{name: j.name, done: int(j.done.Load()), total: int(j.total.Load())})
	}
	return out
}

type jobState struct {
	name        string
	done, total int
}
