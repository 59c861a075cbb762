package app

import (
	"errors"
	"testing"
	"time"
)

// Background work reports its progress while it runs, and its outcome
// only on the UI goroutine, when posted work is run.
func TestBackgroundReportsToTheUIGoroutine(t *testing.T) {
	invalidated := make(chan struct{}, 10)
	b := newBackground(func() { invalidated <- struct{}{} })
	step, finish := make(chan struct{}), make(chan struct{})
	var got error
	doneCalls := 0
	b.Go("export", func(j *job) error {
		j.Progress(1, 3)
		step <- struct{}{}
		<-finish
		return errors.New("disk full")
	}, func(err error) { got = err; doneCalls++ })
	<-step
	if js := b.running(); len(js) != 1 || js[0] != (jobState{name: "export", done: 1, total: 3}) {
		t.Errorf("running %v", js)
	}
	if !b.busy() {
		t.Error("not busy while a job runs")
	}
	close(finish)
	select {
	case <-invalidated:
	case <-time.After(5 * time.Second):
		t.Fatal("the window was not asked for a frame")
	}
	if doneCalls != 0 {
		t.Fatal("done ran off the UI goroutine")
	}
	b.runPosted()
	if doneCalls != 1 || got == nil || got.Error() != "disk full" || b.busy() || len(b.running()) != 0 {
		t.Errorf("after runPosted: %d calls, %v, busy %v", doneCalls, got, b.busy())
	}
}
