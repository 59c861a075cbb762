package app

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"geca/engine"
	"geca/render"
)

func defaultTestSettings() Settings {
	return Settings{Steps: "5", M: 4, GHG: true, CFG: 1, Rate: 1, Seed: 7}
}

func newTestController(t *testing.T) (*Controller, *fakeEngine) {
	t.Helper()
	eng := newFakeEngine()
	c, err := NewController(eng, defaultTestSettings())
	if err != nil {
		t.Fatal(err)
	}
	return c, eng
}

func mustFrame(t *testing.T, c *Controller, i int) *Frame {
	t.Helper()
	f, err := c.PaneFrame(i)
	if err != nil || f == nil {
		t.Fatalf("pane %d frame: %v, %v", i, f, err)
	}
	return f
}

func reachedFrac(c *Controller, f *Frame) float32 {
	return frameStats(c.cfg, f).reached
}

func TestControllerStepsAndHistory(t *testing.T) {
	c, eng := newTestController(t)
	f := mustFrame(t, c, 0)
	if f.Index != 0 || f.Update != 0 {
		t.Fatalf("start at %d.%d", f.Index, f.Update)
	}
	if got := reachedFrac(c, f); got != 1.0/64 {
		t.Errorf("reached at start %v, want one cell", got)
	}
	prev := reachedFrac(c, f)
	for u := 1; u <= 4; u++ {
		if err := c.StepUpdate(); err != nil {
			t.Fatal(err)
		}
		f = mustFrame(t, c, 0)
		if f.Index != 0 || f.Update != u {
			t.Fatalf("after %d steps at %d.%d", u, f.Index, f.Update)
		}
		if r := reachedFrac(c, f); r <= prev {
			t.Errorf("growth did not spread at update %d: %v <= %v", u, r, prev)
		} else {
			prev = r
		}
	}
	if err := c.StepUpdate(); err != nil {
		t.Fatal(err)
	}
	if f = mustFrame(t, c, 0); f.Index != 1 || f.Update != 0 {
		t.Fatalf("diffusion step went to %d.%d", f.Index, f.Update)
	}
	tl := c.Timeline(c.Panes()[0].Run)
	if len(tl) != 2 || !tl[0].Complete() || len(tl[0].MeanMag) != 5 || tl[0].Reached[4] != prev {
		t.Fatalf("timeline %d records, first complete %v", len(tl), tl[0].Complete())
	}
	// scrub back and replay: no sampler calls
	calls := *eng.calls
	if err := c.Seek(0, 1); err != nil {
		t.Fatal(err)
	}
	if f = mustFrame(t, c, 0); f != tl[0].Frames[1] {
		t.Error("seek did not show the recorded frame")
	}
	for i := 0; i < 4; i++ {
		if err := c.StepUpdate(); err != nil {
			t.Fatal(err)
		}
	}
	if *eng.calls != calls {
		t.Errorf("replaying history called the sampler %d times", *eng.calls-calls)
	}
	if f = mustFrame(t, c, 0); f.Index != 1 || f.Update != 0 {
		t.Errorf("replay ended at %d.%d", f.Index, f.Update)
	}
	// step a whole timestep, then run to the end: play stops by itself
	if err := c.StepTimestep(); err != nil {
		t.Fatal(err)
	}
	if f = mustFrame(t, c, 0); f.Index != 2 || f.Update != 0 {
		t.Errorf("step timestep ended at %d.%d", f.Index, f.Update)
	}
	c.Playing = true
	for i := 0; i < 100 && c.Playing; i++ {
		if err := c.StepUpdate(); err != nil {
			t.Fatal(err)
		}
	}
	if c.Playing || !c.AllDone() {
		t.Fatalf("run did not finish: playing %v", c.Playing)
	}
	if f = mustFrame(t, c, 0); f.Index != 4 || f.Update != 4 || !f.Done {
		t.Errorf("final frame %d.%d done %v", f.Index, f.Update, f.Done)
	}
	if err := c.StepUpdate(); err != nil {
		t.Errorf("stepping a finished run: %v", err)
	}
}

func TestControllerBranchOnSettingChange(t *testing.T) {
	c, _ := newTestController(t)
	for i := 0; i < 7; i++ { // into step 1
		if err := c.StepUpdate(); err != nil {
			t.Fatal(err)
		}
	}
	main := c.Panes()[0].Run
	mainTL := c.Timeline(main)
	m := 2
	if err := c.ChangeSetting(Change{M: &m}); err != nil {
		t.Fatal(err)
	}
	if len(c.Runs()) != 2 {
		t.Fatalf("%d runs", len(c.Runs()))
	}
	p := c.Panes()[0]
	br := p.Run
	if br == main || br.Parent != main || br.ForkIndex != 1 || br.Settings.M != 2 || br.Label != "M=2 @ step 2" {
		t.Fatalf("branch %+v", br)
	}
	if p.K != 1 || p.U != 0 {
		t.Errorf("playhead %d.%d", p.K, p.U)
	}
	tl := c.Timeline(br)
	if tl[0] != mainTL[0] {
		t.Error("history before the fork is not shared")
	}
	// the branch redid step 1's start exactly: same cells as the main run
	if !slices.Equal(tl[1].Frames[0].State.Data, mainTL[1].Frames[0].State.Data) {
		t.Error("branch start differs from the main run's")
	}
	for i := 0; i < 3; i++ {
		if err := c.StepUpdate(); err != nil {
			t.Fatal(err)
		}
	}
	if f := mustFrame(t, c, 0); f.Index != 2 || f.Update != 0 {
		t.Errorf("M=2 branch at %d.%d after 3 steps, want 2.0", f.Index, f.Update)
	}
	if c.Timeline(br)[1].M != 2 {
		t.Error("record M")
	}
	// the old run is still there and can be shown again
	if err := c.SwitchRun(main.ID); err != nil {
		t.Fatal(err)
	}
	if c.Panes()[0].Run != main || c.Panes()[0].K != 1 {
		t.Errorf("switch: run %d at %d", c.Panes()[0].Run.ID, c.Panes()[0].K)
	}
	if err := c.SwitchRun(999); err == nil {
		t.Error("no error for a missing run")
	}
	bad := 0
	if err := c.ChangeSetting(Change{M: &bad}); err == nil {
		t.Error("M=0 accepted")
	}
	// a change at step 0 restarts from the same noise
	c2, _ := newTestController(t)
	off := false
	if err := c2.ChangeSetting(Change{GHG: &off}); err != nil {
		t.Fatal(err)
	}
	r := c2.Panes()[0].Run
	if r.ForkIndex != 0 || r.Settings.GHG || !slices.Equal(mustFrame(t, c2, 0).State.Data, c2.Timeline(c2.Runs()[0])[0].Frames[0].State.Data) {
		t.Error("GHG-off branch at step 0 does not start from the same noise")
	}
}

func TestControllerGHGOffReseeds(t *testing.T) {
	c, _ := newTestController(t)
	off := false
	if err := c.ChangeSetting(Change{GHG: &off}); err != nil {
		t.Fatal(err)
	}
	if err := c.StepTimestep(); err != nil {
		t.Fatal(err)
	}
	if r := reachedFrac(c, mustFrame(t, c, 0)); r != 1.0/64 {
		t.Errorf("GHG off: reached %v at a new step, want only the seed", r)
	}
	on := true
	if err := c.ChangeSetting(Change{GHG: &on}); err != nil {
		t.Fatal(err)
	}
	if err := c.StepTimestep(); err != nil {
		t.Fatal(err)
	}
	if r := reachedFrac(c, mustFrame(t, c, 0)); r <= 1.0/64 {
		t.Errorf("GHG on: reached %v at a new step, want the carried growth", r)
	}
}

func TestControllerCompareLockStep(t *testing.T) {
	c, _ := newTestController(t)
	if err := c.SetCompare(CompareMode{Kind: CompareM, Ms: []int{2, 5}}); err != nil {
		t.Fatal(err)
	}
	ps := c.Panes()
	if len(ps) != 2 || ps[0].Label != "M=2" || ps[1].Run.Settings.M != 5 {
		t.Fatalf("panes %v", ps)
	}
	// same seed and noise: both start from the same cells
	if !slices.Equal(mustFrame(t, c, 0).State.Data, mustFrame(t, c, 1).State.Data) {
		t.Error("compare panes start from different states")
	}
	pos := func() [4]int { return [4]int{ps[0].K, ps[0].U, ps[1].K, ps[1].U} }
	want := [][4]int{{0, 1, 0, 1}, {0, 2, 0, 2}, {0, 2, 0, 3}, {0, 2, 0, 4}, {0, 2, 0, 5}, {1, 0, 1, 0}, {1, 1, 1, 1}}
	for i, w := range want {
		if err := c.StepUpdate(); err != nil {
			t.Fatal(err)
		}
		if pos() != w {
			t.Fatalf("after step %d: %v, want %v", i+1, pos(), w)
		}
	}
	// a change of another setting applies to both panes, keeping their M
	rate := float32(0.5)
	if err := c.ChangeSetting(Change{Rate: &rate}); err != nil {
		t.Fatal(err)
	}
	if ps[0].Run.Settings.Rate != 0.5 || ps[1].Run.Settings.Rate != 0.5 || ps[0].Run.Settings.M != 2 || ps[1].Run.Settings.M != 5 {
		t.Errorf("settings after change: %+v / %+v", ps[0].Run.Settings, ps[1].Run.Settings)
	}
	// a restart keeps compare mode
	if err := c.Restart(defaultTestSettings(), "reset"); err != nil {
		t.Fatal(err)
	}
	if len(c.Panes()) != 2 || c.Panes()[1].Run.Settings.M != 5 || c.Panes()[1].K != 0 {
		t.Errorf("reset lost compare mode")
	}
	if err := c.SetCompare(CompareMode{Kind: CompareGHG}); err != nil {
		t.Fatal(err)
	}
	if !c.Panes()[0].Run.Settings.GHG || c.Panes()[1].Run.Settings.GHG {
		t.Error("GHG compare panes")
	}
	if err := c.SetCompare(CompareMode{}); err != nil || len(c.Panes()) != 1 {
		t.Errorf("compare off: %v, %d panes", err, len(c.Panes()))
	}
	if err := c.SetCompare(CompareMode{Kind: CompareM, Ms: []int{3}}); err == nil {
		t.Error("compare with one value accepted")
	}
	if err := c.SetCompare(CompareMode{Kind: CompareKind(9)}); err == nil {
		t.Error("compare of an unknown setting accepted")
	}
}

func TestControllerDamageAndUndo(t *testing.T) {
	c, _ := newTestController(t)
	for i := 0; i < 3; i++ {
		if err := c.StepUpdate(); err != nil {
			t.Fatal(err)
		}
	}
	before := mustFrame(t, c, 0)
	cin := c.cfg.InChannels
	centre := before.State.Cell(0, 4, 4)
	if centre[cin] == 0 {
		t.Fatal("centre not grown")
	}
	prevRun := c.Panes()[0].Run
	if err := c.Damage([][2]int{{4, 4}}, 1.5, BrushErase); err != nil {
		t.Fatal(err)
	}
	after := mustFrame(t, c, 0)
	if after.Index != before.Index || after.Update != before.Update {
		t.Errorf("damage moved the playhead to %d.%d", after.Index, after.Update)
	}
	for _, ij := range [][2]int{{4, 4}, {3, 4}, {5, 5}, {4, 3}} {
		cell := after.State.Cell(0, ij[0], ij[1])
		for k := cin; k < len(cell); k++ {
			if cell[k] != 0 {
				t.Errorf("cell %v channel %d = %v after erase", ij, k, cell[k])
			}
		}
		if cell[0] != before.State.Cell(0, ij[0], ij[1])[0] {
			t.Errorf("erase changed C_in of %v", ij)
		}
	}
	if c := after.State.Cell(0, 2, 4); c[cin] != before.State.Cell(0, 2, 4)[cin] {
		t.Error("erase reached a cell outside the radius")
	}
	// history before the stroke is shared; the run continues from the damage
	dr := c.Panes()[0].Run
	if !dr.Damage || dr.Parent != prevRun || c.Timeline(dr)[0].Frames[1] != c.Timeline(prevRun)[0].Frames[1] {
		t.Error("damage run does not share earlier frames")
	}
	if err := c.StepUpdate(); err != nil {
		t.Fatal(err)
	}
	if f := mustFrame(t, c, 0); f.Update != 4 {
		t.Errorf("after damage + step at update %d", f.Update)
	}
	// the damaged run can be rewound to the stroke and stepped again, identically
	rec := c.Timeline(dr)[0]
	s, err := c.sampleAt(dr, 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f, _ := s.StepUpdate()
	if !slices.Equal(f.State.Data, rec.Frames[4].State.Data) {
		t.Error("rewinding the damaged run is not exact")
	}
	if !c.CanUndo() {
		t.Fatal("cannot undo")
	}
	if err := c.Undo(); err != nil {
		t.Fatal(err)
	}
	p := c.Panes()[0]
	if p.Run != prevRun || p.K != 0 || p.U != 3 || slices.Contains(c.Runs(), dr) {
		t.Errorf("undo: run %d at %d.%d", p.Run.ID, p.K, p.U)
	}
	if err := c.Undo(); err == nil {
		t.Error("undo with nothing to undo")
	}
	// perturb changes the values (deterministically per stroke)
	if err := c.Damage([][2]int{{4, 4}}, 0.5, BrushPerturb); err != nil {
		t.Fatal(err)
	}
	if mustFrame(t, c, 0).State.Cell(0, 4, 4)[cin] == before.State.Cell(0, 4, 4)[cin] {
		t.Error("perturb left the centre unchanged")
	}
}

func TestControllerEvictionRecomputes(t *testing.T) {
	c, eng := newTestController(t)
	for i := 0; i < 12; i++ {
		if err := c.StepUpdate(); err != nil {
			t.Fatal(err)
		}
	}
	full := c.Timeline(c.Panes()[0].Run)
	want := full[0].Frames[2].State.Data
	c.MaxBytes = 1 // evict everything evictable on the next record
	if err := c.StepUpdate(); err != nil {
		t.Fatal(err)
	}
	tl := c.Timeline(c.Panes()[0].Run)
	if tl[0].Frames[2] != nil || tl[0].Frames[0] == nil || tl[0].Frames[4] == nil {
		t.Fatal("inner frames of step 0 not evicted, or its ends evicted")
	}
	if full[0].Frames[2] == nil {
		t.Fatal("eviction changed a published record")
	}
	calls := *eng.calls
	c.MaxBytes = 1 << 30
	if err := c.Seek(0, 2); err != nil {
		t.Fatal(err)
	}
	if f := mustFrame(t, c, 0); !slices.Equal(f.State.Data, want) {
		t.Error("recomputed frame differs")
	}
	if *eng.calls == calls {
		t.Error("no recompute happened")
	}
}

func TestControllerErrors(t *testing.T) {
	eng := newFakeEngine()
	if _, err := NewController(eng, Settings{Steps: "x", M: 4}); err == nil {
		t.Error("bad steps accepted")
	}
	if _, err := NewController(eng, Settings{Steps: "5", M: 0}); err == nil {
		t.Error("M=0 accepted")
	}
	c, _ := newTestController(t)
	c.Panes()[0].Run.sampler.run.(*fakeSampler).failNext = true
	if err := c.StepUpdate(); err == nil {
		t.Error("sampler error swallowed")
	}
	if err := c.StepUpdate(); err != nil {
		t.Errorf("controller unusable after an error: %v", err)
	}
	c.Select(2, 3)
	if i, j := c.Selected(); i != 2 || j != 3 {
		t.Errorf("selected %d,%d", i, j)
	}
	if err := c.StepUpdate(); err != nil {
		t.Fatal(err)
	}
	if f := mustFrame(t, c, 0); len(f.Attn) != 18 || f.AttnCell != [2]int{2, 3} {
		t.Errorf("observed attention %v at %v", len(f.Attn), f.AttnCell)
	}
	c.Select(-5, 0)
	if i, _ := c.Selected(); i != -1 {
		t.Error("bad selection kept")
	}
}

func TestParseLabels(t *testing.T) {
	l, err := ParseLabels(" 2, 0 ,2", 3)
	if err != nil || !slices.Equal(l, []int{2, 0}) {
		t.Errorf("%v %v", l, err)
	}
	if l, err := ParseLabels("none", 3); err != nil || l != nil {
		t.Errorf("none: %v %v", l, err)
	}
	for _, bad := range []string{"3", "-1", "a"} {
		t.Run(bad, func(t *testing.T) {
			if _, err := ParseLabels(bad, 3); err == nil {
				t.Errorf("%q accepted", bad)
			}
		})
	}
	if (Settings{Labels: []int{1, 2}}).LabelString() != "1,2" || (Settings{}).LabelString() != "none" {
		t.Error("LabelString")
	}
}

// Beyond the memory budget the inner frames of old timesteps go first,
// then the branches no pane shows (least recently shown first, with a
// note), never what is on screen.
func TestControllerBudgetDropsUnseenBranches(t *testing.T) {
	c, _ := newTestController(t)
	for i := 0; i < 6; i++ {
		if err := c.StepUpdate(); err != nil {
			t.Fatal(err)
		}
	}
	main := c.Panes()[0].Run
	for _, m := range []int{2, 3, 5} {
		if err := c.SwitchRun(main.ID); err != nil {
			t.Fatal(err)
		}
		if err := c.ChangeSetting(Change{M: &m}); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if err := c.StepUpdate(); err != nil {
				t.Fatal(err)
			}
		}
	}
	shown := c.Panes()[0].Run // the M=5 branch
	if len(c.Runs()) != 4 {
		t.Fatalf("%d runs", len(c.Runs()))
	}
	c.MaxBytes = c.Bytes() * 6 / 10
	if err := c.StepUpdate(); err != nil {
		t.Fatal(err)
	}
	notes := c.TakeNotes()
	if c.Bytes() > c.MaxBytes || len(notes) == 0 || !strings.Contains(notes[0], "dropped branch #2 (M=2 @ step 2)") {
		t.Fatalf("%d bytes of %d; notes %q", c.Bytes(), c.MaxBytes, notes)
	}
	if !slices.Contains(c.Runs(), shown) || !slices.Contains(c.Runs(), main) {
		t.Error("the shown run or its parent was dropped")
	}
	if f := mustFrame(t, c, 0); f.Index != 1 {
		t.Errorf("the pane moved to %d.%d", f.Index, f.Update)
	}
}

// TestBlankBrushZeroesX0: the blank brush leaves the outputs under it that
// make the predicted x₀ exactly 0, for an ε model and for a v model (x̂0
// formed here from the standard formulas, not from the brush's own).
func TestBlankBrushZeroesX0(t *testing.T) {
	for _, pred := range []engine.Prediction{engine.PredictEps, engine.PredictV} {
		cfg := engine.Config{Name: "b", GridH: 3, GridW: 3, InChannels: 2, HiddenChannels: 1, EmbedDim: 4, Heads: 1,
			MLPDim: 4, NumClasses: 1, M: 1, UpdateRate: 1, Prediction: pred}
		st := engine.NewState(1, 3, 3, cfg.CellDim())
		for i := range st.Data {
			st.Data[i] = float32(i%7) - 3.2
		}
		const sigma = 0.8
		applyBrush(cfg, st, [][2]int{{1, 1}}, 0.5, BrushBlank, sigma, rand.New(rand.NewPCG(1, 1)))
		cell := st.Cell(0, 1, 1)
		sa := math.Sqrt(1 - sigma*sigma)
		for c := 0; c < cfg.InChannels; c++ {
			x, out := float64(cell[c]), float64(cell[cfg.InChannels+c])
			x0 := (x - sigma*out) / sa
			if pred == engine.PredictV {
				x0 = sa*x - sigma*out
			}
			if math.Abs(x0) > 1e-6 {
				t.Errorf("%v: x̂0 under the blank brush is %g, want 0", pred, x0)
			}
		}
	}
}

// TestPredictionLabels: the view and numbers of a model's first output
// channels are named for what it predicts.
func TestPredictionLabels(t *testing.T) {
	if got := viewName(render.ViewEps, engine.PredictEps); got != "ε" {
		t.Errorf("ε model's output view is %q", got)
	}
	if got := viewName(render.ViewEps, engine.PredictV); got != "v̂" {
		t.Errorf("v model's output view is %q", got)
	}
	if got := shortViewName(render.ViewV, engine.PredictV); got != "v" {
		t.Errorf("learned-variance view is %q", got)
	}
	cfg := engine.Config{InChannels: 1, HiddenChannels: 1, Prediction: engine.PredictV}
	st := engine.NewState(1, 1, 1, cfg.CellDim())
	if got := cellSummary(cfg, &Frame{State: st}, 0, 0); !strings.Contains(got, "|v̂| 0.000") {
		t.Errorf("v model's cell summary: %q", got)
	}
}
