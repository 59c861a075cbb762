package app

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"geca/engine/sample"
)

// recorder steps a controller and keeps every frame it shows, so that
// what the controller later recomputes can be held to what it first showed.
type recorder struct {
	t      *testing.T
	c      *Controller
	frames map[*Run]map[[2]int]*Frame
}

func newRecorder(t *testing.T, c *Controller) *recorder {
	rec := &recorder{t: t, c: c, frames: map[*Run]map[[2]int]*Frame{}}
	rec.keep()
	return rec
}

// keep remembers the frame under pane 0's playhead.
func (rec *recorder) keep() {
	rec.t.Helper()
	p := rec.c.Panes()[0]
	f := mustFrame(rec.t, rec.c, 0)
	if rec.frames[p.Run] == nil {
		rec.frames[p.Run] = map[[2]int]*Frame{}
	}
	rec.frames[p.Run][[2]int{f.Index, f.Update}] = f
}

func (rec *recorder) step(n int) {
	rec.t.Helper()
	for range n {
		if err := rec.c.StepUpdate(); err != nil {
			rec.t.Fatal(err)
		}
		rec.keep()
	}
}

// check makes every remembered position again with sampleAt and holds it
// to the frame first shown there, bit for bit.
func (rec *recorder) check(what string) {
	rec.t.Helper()
	n := 0
	for r, frames := range rec.frames {
		for pos, want := range frames {
			if want.Done {
				continue // the final frame is the step after (k, M), not a position to step to
			}
			s, err := rec.c.sampleAt(r, pos[0], pos[1])
			if err != nil {
				rec.t.Fatalf("%s: run #%d at %s: %v", what, r.ID, StepLabel(pos[0], pos[1]), err)
			}
			got, err := s.Current()
			s.Close()
			if err != nil {
				rec.t.Fatal(err)
			}
			sameFrames(rec.t, what+": "+r.Label+" at "+StepLabel(pos[0], pos[1]), got, want)
			n++
		}
	}
	if n == 0 {
		rec.t.Fatalf("%s: nothing to check", what)
	}
}

// Rewinds are exact when the runs keep few snapshots: with a share smaller
// than one snapshot only the first is kept and every rewind replays from
// the start, through a damage stroke (which the Stepper cannot replay: the
// run is made again from its parent) and a setting change, on the real
// sampler.
func TestRewindExactWithFewSnapshots(t *testing.T) {
	eng := tinyEngine(t)
	s := Settings{Steps: "8", M: 3, GHG: true, CFG: 1.5, Rate: 0.5, Labels: []int{1}, Seed: 11}
	c := mustController(t, eng, s)
	c.MaxBytes = 16 << 10 // a 2 KB share: under one snapshot (4 KB)
	s.Seed = 12
	if err := c.Restart(s, "thin"); err != nil {
		t.Fatal(err)
	}
	main := c.Panes()[0].Run
	rec := newRecorder(t, c)
	rec.step(10) // into step 3
	if err := c.Damage([][2]int{{4, 4}}, 1.5, BrushPerturb); err != nil {
		t.Fatal(err)
	}
	rec.keep()
	dr := c.Panes()[0].Run
	rec.step(9) // into step 5
	m := 2
	if err := c.ChangeSetting(Change{M: &m}); err != nil {
		t.Fatal(err)
	}
	rec.keep()
	br := c.Panes()[0].Run
	rec.step(7)
	if !dr.Damage || dr.Parent != main || br.Parent != dr || br.ForkIndex <= dr.ForkIndex {
		t.Fatalf("runs: damage #%d from #%d, branch #%d from #%d", dr.ID, dr.Parent.ID, br.ID, br.Parent.ID)
	}
	// one snapshot: the grids and the latents of the batch (2 under CFG)
	st := mustFrame(t, c, 0).State
	one := int64(4 * (len(st.Data) + st.B*st.H*st.W*eng.Config().InChannels))
	for _, r := range []*Run{main, dr, br} {
		if b := r.sampler.SnapshotBytes(); b != one {
			t.Errorf("run #%d keeps %d bytes of snapshots with a share of %d, want the first alone (%d)", r.ID, b, c.MaxBytes/8, one)
		}
	}
	rec.check("few snapshots")
	// the frames the budget evicted come back as they were
	for k := range 4 {
		if err := c.Seek(k, 2); err != nil {
			t.Fatal(err)
		}
		sameFrames(t, "seek", mustFrame(t, c, 0), rec.frames[owner(br, k, 2)][[2]int{k, 2}])
	}
}

// With the default budget every snapshot is kept, and rewinds restore them.
func TestRewindExactWithSnapshots(t *testing.T) {
	c := mustController(t, tinyEngine(t), Settings{Steps: "6", M: 3, GHG: true, CFG: 1, Rate: 0.5, Seed: 5})
	rec := newRecorder(t, c)
	rec.step(9)
	if err := c.Damage([][2]int{{4, 4}}, 1, BrushErase); err != nil {
		t.Fatal(err)
	}
	rec.keep()
	rec.step(6)
	rec.check("every snapshot")
}

// The seed influence is measured on top of the Stepper: the run forked at
// update 0 with the centre cell's C_out and C_h zeroed, stepped alongside.
// Here it is held to such a twin made by hand from the sampler.
func TestInfluenceIsTheSeedlessTwin(t *testing.T) {
	eng := tinyEngine(t)
	s := Settings{Steps: "4", M: 3, GHG: true, CFG: 1.5, Rate: 0.5, Labels: []int{2}, Seed: 9}
	c := mustController(t, eng, s)
	c.SetInfluence(true)
	if err := c.StepTimestep(); err != nil { // the measurement starts at the next update 0
		t.Fatal(err)
	}
	run, err := eng.NewSampler(s, 0)
	if err != nil {
		t.Fatal(err)
	}
	ref := run.(*sample.Sampler)
	if err := ref.RunTo(context.Background(), ref.Len()-2); err != nil {
		t.Fatal(err)
	}
	if _, err := ref.Current(); err != nil {
		t.Fatal(err)
	}
	tw := ref.Branch()
	if err := tw.SetState(seedless(eng.Config(), ref.State())); err != nil {
		t.Fatal(err)
	}
	cfg := eng.Config()
	for u := 0; u <= s.M; u++ {
		f := mustFrame(t, c, 0)
		if f.Index != 1 || f.Update != u {
			t.Fatalf("at %d.%d, want 1.%d", f.Index, f.Update, u)
		}
		want := influence(cfg, ref.State(), tw.State())
		if !slices.Equal(f.Influence, want) {
			t.Fatalf("update %d: influence %v, want %v", u, f.Influence, want)
		}
		centre := (cfg.GridH/2)*cfg.GridW + cfg.GridW/2
		if u == 0 && (f.Influence[centre] == 0 || slices.ContainsFunc(slices.Delete(slices.Clone(f.Influence), centre, centre+1), func(v float32) bool { return v != 0 })) {
			t.Errorf("at update 0 the influence is not the seed cell alone: %v", f.Influence)
		}
		if u == s.M {
			break
		}
		if err := c.StepUpdate(); err != nil {
			t.Fatal(err)
		}
		for _, x := range []*sample.Sampler{ref, tw} {
			if err := x.StepUpdate(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// the twin ends with the cell updates; the next timestep makes a new one
	if err := c.StepUpdate(); err != nil {
		t.Fatal(err)
	}
	if f := mustFrame(t, c, 0); f.Index != 2 || f.Update != 0 || len(f.Influence) != cfg.Cells() {
		t.Errorf("next timestep at %d.%d with %d influence values", f.Index, f.Update, len(f.Influence))
	}
	if sm := c.Panes()[0].Run.sampler; sm.twin == nil || sm.twin.run.Index() != sm.run.Index() {
		t.Error("no twin in step at the next timestep")
	}
}

// A run in a worker measures the seed influence as a local one does, bit
// for bit, through a damage stroke and a rewind.
func TestRemoteInfluenceMatchesLocal(t *testing.T) {
	local, rem, s := localAndRemote(t)
	cs := []*Controller{mustController(t, local, s), mustController(t, rem, s)}
	for _, c := range cs {
		c.SetInfluence(true)
	}
	do := func(what string, f func(c *Controller) error) {
		t.Helper()
		for _, c := range cs {
			if err := f(c); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		}
		lf, rf := mustFrame(t, cs[0], 0), mustFrame(t, cs[1], 0)
		sameFrames(t, what, rf, lf)
		if !slices.EqualFunc(rf.Influence, lf.Influence, func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }) {
			t.Fatalf("%s: the worker's influence %v, the local %v", what, rf.Influence, lf.Influence)
		}
	}
	do("start", func(c *Controller) error { return nil })
	for range 5 {
		do("step", func(c *Controller) error { return c.StepUpdate() })
	}
	if f := mustFrame(t, cs[1], 0); f.Index != 1 || f.Update != 1 || len(f.Influence) != local.Config().Cells() {
		t.Fatalf("the worker's frame at %d.%d has %d influence values", f.Index, f.Update, len(f.Influence))
	}
	do("damage", func(c *Controller) error { return c.Damage([][2]int{{2, 2}}, 1, BrushErase) })
	for range 3 {
		do("step after the damage", func(c *Controller) error { return c.StepUpdate() })
	}
	// frames recorded without the influence or the attention are made
	// again (Details), through the stroke too
	do("seek back", func(c *Controller) error {
		if err := c.Seek(0, 2); err != nil {
			return err
		}
		c.Select(3, 4)
		return c.Details()
	})
	if f := mustFrame(t, cs[1], 0); f.Influence == nil || f.Attn == nil {
		t.Fatal("the frame was not made again with the influence and the attention")
	}
	do("seek into the stroke's timestep", func(c *Controller) error {
		if err := c.Seek(1, 2); err != nil {
			return err
		}
		c.Select(5, 4)
		return c.Details()
	})
	if f := mustFrame(t, cs[1], 0); f.Influence == nil || f.AttnCell != [2]int{5, 4} {
		t.Fatal("the frame after the stroke was not made again with the influence and the attention")
	}
}

// Every run the controller lets go of is closed (a worker's memory):
// forks it rewinds with, twins, undone strokes, branches dropped for the
// budget, and all of them when the runner stops.
func TestRunsAreClosed(t *testing.T) {
	c, eng := newTestController(t)
	c.SetInfluence(true)
	live := func(what string) {
		t.Helper()
		want := 0
		for _, r := range c.Runs() {
			want++
			if r.sampler.twin != nil {
				want++
			}
		}
		if eng.open != want {
			t.Errorf("%s: %d samplers open, want %d (the runs and their twins)", what, eng.open, want)
		}
	}
	for range 6 {
		if err := c.StepUpdate(); err != nil {
			t.Fatal(err)
		}
	}
	live("stepping")
	if err := c.Seek(0, 2); err != nil {
		t.Fatal(err)
	}
	if err := c.Details(); err != nil {
		t.Fatal(err)
	}
	live("details")
	if err := c.Damage([][2]int{{4, 4}}, 1, BrushErase); err != nil {
		t.Fatal(err)
	}
	live("damage")
	if err := c.Undo(); err != nil {
		t.Fatal(err)
	}
	live("undo")
	for _, m := range []int{2, 3} {
		if err := c.ChangeSetting(Change{M: &m}); err != nil {
			t.Fatal(err)
		}
		if err := c.SwitchRun(c.Runs()[0].ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SetCompare(CompareMode{Kind: CompareM, Ms: []int{5, 6}}); err != nil {
		t.Fatal(err)
	}
	live("compare")
	c.MaxBytes = c.Bytes() / 2
	if err := c.StepUpdate(); err != nil {
		t.Fatal(err)
	}
	if notes := c.TakeNotes(); len(notes) == 0 {
		t.Fatal("no branch dropped")
	}
	live("dropped for the budget")
	r := NewRunner(eng, c, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	r.Send(StepUpdate{})
	time.Sleep(10 * time.Millisecond)
	cancel()
	<-done
	if eng.open != 0 {
		t.Errorf("%d samplers open after the runner stopped", eng.open)
	}
}

// The history's memory is the runs' snapshots, as they report them, and
// the frames the controller keeps; each run starts with its share of the
// budget for its snapshots.
func TestHistoryMemory(t *testing.T) {
	c, eng := newTestController(t)
	for range 7 {
		if err := c.StepUpdate(); err != nil {
			t.Fatal(err)
		}
	}
	c.MaxBytes = 1 << 20
	m := 2
	if err := c.ChangeSetting(Change{M: &m}); err != nil { // a fork: the parent's share
		t.Fatal(err)
	}
	if err := c.Restart(Settings{Steps: "5", M: 4, GHG: true, CFG: 1, Rate: 1, Seed: 8}, "seed 8"); err != nil {
		t.Fatal(err)
	}
	if want := []int64{DefaultHistoryBytes() / 8, 1 << 17}; !slices.Equal(eng.budgets, want) {
		t.Errorf("snapshot budgets %v, want %v", eng.budgets, want)
	}
	var frames, snaps int64
	for _, r := range c.Runs() {
		snaps += r.sampler.SnapshotBytes()
		for _, rec := range r.steps {
			for u, f := range rec.Frames {
				if f != nil && (rec.Index != r.ForkIndex || u >= r.ForkUpdate) {
					frames += frameBytes(f)
				}
			}
		}
	}
	if snaps == 0 || c.Bytes() != frames+snaps {
		t.Errorf("history %d bytes, want %d of frames and %d of snapshots", c.Bytes(), frames, snaps)
	}
	if s := NewRunner(eng, c, nil, nil).Snapshot(); s.History != c.Bytes() || s.Budget != 1<<20 {
		t.Errorf("the status line's figures: %d of %d", s.History, s.Budget)
	}
}
