package app

import (
	"context"
	"slices"
	"testing"
	"time"

	"geca/engine"
	"geca/internal/guitest"
)

// TestFrameTimesWhileComputing plays a GeCA-S-sized model (random weights)
// on the runner goroutine and lays out UI frames every 16 ms meanwhile: the UI
// goroutine must never wait for an update. It reports the wall time of each
// frame on the UI goroutine (layout and input routing; GPU time is the
// renderer's), first with the engine idle, then while it computes.
//
//	go test -run FrameTimes -v ./app
func TestFrameTimesWhileComputing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 13M-parameter model and computes for a few seconds")
	}
	cfg, err := engine.Preset("GeCA-S", 10)
	if err != nil {
		t.Fatal(err)
	}
	m, err := engine.NewRandomModel(cfg, 1, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	eng := &ModelEngine{Model: m, Label: "GeCA-S (random)", Random: true}
	s := DefaultSettings(cfg)
	s.Steps = "10"
	ctrl, err := NewController(eng, s)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRunner(eng, ctrl, nil, nil)
	r.speed = 0 // as fast as the engine goes
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); r.Send(ClearError{}); <-done }()

	win := guitest.New(t, 1280, 800)
	ui := NewUI(r, Options{Shaper: guitest.NewShaper()})
	win.Frame(ui.Layout) // the first frame shapes the fonts; not counted
	measure := func(d time.Duration) (times []time.Duration, busy int) {
		deadline := time.Now().Add(d)
		for time.Now().Before(deadline) {
			b := r.Busy() > 0
			start := time.Now()
			win.Frame(ui.Layout)
			times = append(times, time.Since(start))
			if b {
				busy++
			}
			win.Advance(16 * time.Millisecond)
			time.Sleep(16 * time.Millisecond)
		}
		slices.Sort(times)
		return times, busy
	}
	pct := func(ts []time.Duration, q float64) time.Duration { return ts[int(q*float64(len(ts)-1))] }
	idle, _ := measure(time.Second)
	r.Send(Play{On: true})
	first := r.Snapshot().Seq
	times, busyFrames := measure(4 * time.Second)
	t.Logf("idle engine: %d frames, p50 %v, p95 %v, max %v", len(idle), pct(idle, 0.5), pct(idle, 0.95), idle[len(idle)-1])
	t.Logf("GeCA-S computing: %d frames (%d during an update), %d snapshots; p50 %v, p95 %v, max %v; one update took %v",
		len(times), busyFrames, r.Snapshot().Seq-first, pct(times, 0.5), pct(times, 0.95), times[len(times)-1], r.Snapshot().LastUpdate)
	if busyFrames == 0 {
		t.Error("no frame was laid out while the engine computed")
	}
	// The UI never waits on the engine, so a typical frame costs what it
	// costs with the engine idle. The tail is the scheduler: the engine
	// keeps every core busy and a woken UI goroutine may wait for Go's 10 ms
	// preemption (more on a loaded machine), so it gets a looser bound.
	if p := pct(times, 0.5); p >= 16*time.Millisecond {
		t.Errorf("median frame time %v >= 16 ms while computing", p)
	}
	if p := pct(times, 0.95); p >= 50*time.Millisecond {
		t.Errorf("95th percentile frame time %v >= 50 ms while computing", p)
	}
}

// BenchmarkLayout measures one UI frame (layout and input routing) on the
// demo model, after a few updates, without rendering.
func BenchmarkLayout(b *testing.B) {
	eng, err := NewDemoEngine(1)
	if err != nil {
		b.Fatal(err)
	}
	s := DefaultSettings(eng.Config())
	ctrl, err := NewController(eng, s)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if err := ctrl.StepUpdate(); err != nil {
			b.Fatal(err)
		}
	}
	r := NewRunner(eng, ctrl, nil, nil)
	win := guitest.New(b, 1280, 800)
	ui := NewUI(r, Options{Shaper: guitest.NewShaper()})
	win.Frame(ui.Layout)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		win.Frame(ui.Layout)
	}
}
