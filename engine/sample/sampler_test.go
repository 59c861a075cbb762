package sample

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"geca/engine"
	"geca/engine/diffusion"
)

func tinyModel(t testing.TB) *engine.Model {
	t.Helper()
	cfg := engine.Config{Name: "tiny", GridH: 6, GridW: 7, InChannels: 3, HiddenChannels: 5, EmbedDim: 16, Heads: 2,
		MLPDim: 24, NumClasses: 3, M: 4, UpdateRate: 0.5, Latent: true}
	m, err := engine.NewRandomModel(cfg, 5, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func tinyOptions() Options {
	return Options{Steps: "6", GHG: true, CFG: 1.5, Labels: [][]float32{{1, 0, 0}, {0, 1, 1}}, Seed: 42}
}

func mustNew(t testing.TB, m *engine.Model, opt Options) *Sampler {
	t.Helper()
	s, err := New(m, opt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func runResult(t testing.TB, s *Sampler) []float32 {
	t.Helper()
	if err := s.RunToEnd(context.Background()); err != nil {
		t.Fatal(err)
	}
	r, err := s.Result()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func finiteAll(x []float32) bool {
	for _, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return false
		}
	}
	return true
}

func TestSameSeedSameOutput(t *testing.T) {
	m := tinyModel(t)
	for _, cfg := range []float32{1, 1.5} {
		t.Run(fmt.Sprint(cfg), func(t *testing.T) {
			opt := tinyOptions()
			opt.CFG = cfg
			a := runResult(t, mustNew(t, m, opt))
			b := runResult(t, mustNew(t, m, opt))
			if !slices.Equal(a, b) {
				t.Errorf("CFG %g: same seed gave different samples", cfg)
			}
			if !finiteAll(a) {
				t.Errorf("CFG %g: non-finite sample", cfg)
			}
			opt.Seed++
			if c := runResult(t, mustNew(t, m, opt)); slices.Equal(a, c) {
				t.Errorf("CFG %g: a different seed gave the same samples", cfg)
			}
		})
	}
}

// Run gives what a sampler run to the end gives (with its default snapshot
// budget: keeping fewer snapshots changes no sample), and New's errors.
func TestRun(t *testing.T) {
	m := tinyModel(t)
	want := runResult(t, mustNew(t, m, tinyOptions()))
	got, err := Run(context.Background(), m, tinyOptions())
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("Run: %v; equal to a sampler's result: %v", err, slices.Equal(got, want))
	}
	bad := tinyOptions()
	bad.Steps = "x"
	if _, err := Run(context.Background(), m, bad); err == nil {
		t.Error("Run with steps \"x\": no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, m, tinyOptions()); !errors.Is(err, context.Canceled) {
		t.Errorf("Run with a cancelled context: %v", err)
	}
}

func TestSettingsChangeOutput(t *testing.T) {
	m := tinyModel(t)
	for _, cfg := range []float32{1, 1.5} {
		t.Run(fmt.Sprint(cfg), func(t *testing.T) {
			base := tinyOptions()
			base.CFG = cfg
			ref := runResult(t, mustNew(t, m, base))
			noGHG := base
			noGHG.GHG = false
			if slices.Equal(ref, runResult(t, mustNew(t, m, noGHG))) {
				t.Errorf("CFG %g: GHG off gave the same samples as GHG on", cfg)
			}
			m8 := base
			m8.M = 8
			if slices.Equal(ref, runResult(t, mustNew(t, m, m8))) {
				t.Errorf("CFG %g: M = 8 gave the same samples as M = 4", cfg)
			}
			rate := base
			rate.UpdateRate = 1
			if slices.Equal(ref, runResult(t, mustNew(t, m, rate))) {
				t.Errorf("CFG %g: update rate 1 gave the same samples as 0.5", cfg)
			}
		})
	}
	// CFG scale matters when guidance is on, and "off" is the same for every scale <= 1.
	a, b := tinyOptions(), tinyOptions()
	b.CFG = 3
	if slices.Equal(runResult(t, mustNew(t, m, a)), runResult(t, mustNew(t, m, b))) {
		t.Error("CFG 1.5 and 3 gave the same samples")
	}
	a.CFG, b.CFG = 1, 0.5
	if !slices.Equal(runResult(t, mustNew(t, m, a)), runResult(t, mustNew(t, m, b))) {
		t.Error("CFG 1 and 0.5 (both off) differ")
	}
}

// The GHG carry semantics of docs/model.md §5, checked on the grid the next timestep
// starts from.
func TestGHGCarrySemantics(t *testing.T) {
	m := tinyModel(t)
	cfg := m.Cfg
	cin, co := cfg.InChannels, cfg.OutChannels()
	for _, c := range []struct {
		name                string
		cfg                 float32
		ghg                 bool
		keepOut, keepHidden bool
	}{
		{"CFG+GHG", 1.5, true, false, true},
		{"GHG", 1, true, true, true},
		{"CFG, no GHG", 1.5, false, false, false},
		{"no GHG", 1, false, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			opt := tinyOptions()
			opt.CFG, opt.GHG = c.cfg, c.ghg
			s := mustNew(t, m, opt)
			var carry *engine.State
			s.SetObserver(func(f *Frame) {
				if f.Kind == FrameTimestep {
					carry = f.State
				}
			}, false)
			if err := s.StepTimestep(context.Background()); err != nil {
				t.Fatal(err)
			}
			// begin() prepares the next timestep (C_in, seed or carry) without
			// updating: compare its grid with the carry the last step left.
			if err := s.begin(); err != nil {
				t.Fatal(err)
			}
			st := s.st
			outSame, hidSame := true, true
			hidZero, outSeedOnly := true, true
			for b := 0; b < st.B; b++ {
				for i := 0; i < st.H; i++ {
					for j := 0; j < st.W; j++ {
						now, before := st.Cell(b, i, j), carry.Cell(b, i, j)
						for ch := cin; ch < st.C; ch++ {
							if now[ch] != before[ch] {
								if ch < cin+co {
									outSame = false
								} else {
									hidSame = false
								}
							}
							if ch >= cin+co && now[ch] != 0 {
								hidZero = false
							}
							if ch < cin+co && now[ch] != 0 && !(i == st.H/2 && j == st.W/2) {
								outSeedOnly = false
							}
						}
					}
				}
			}
			if outSame != c.keepOut || hidSame != c.keepHidden {
				t.Errorf("%s: C_out inherited %v (want %v), C_h inherited %v (want %v)", c.name, outSame, c.keepOut, hidSame, c.keepHidden)
			}
			if !c.keepOut && !outSeedOnly {
				t.Errorf("%s: re-seeded C_out is not zero outside the centre cell", c.name)
			}
			if !c.keepHidden && !hidZero {
				t.Errorf("%s: fresh seed has non-zero hidden channels", c.name)
			}
		})
	}
}

func TestStepGranularityAndFrames(t *testing.T) {
	m := tinyModel(t)
	opt := tinyOptions()
	opt.M = 3
	s := mustNew(t, m, opt)
	var frames []*Frame
	s.SetObserver(func(f *Frame) { frames = append(frames, f) }, true)
	calls := 0
	for !s.Done() {
		if err := s.StepUpdate(); err != nil {
			t.Fatal(err)
		}
		calls++
	}
	if calls != 6*(3+1) {
		t.Errorf("%d StepUpdate calls for 6 timesteps of 3 updates and a diffusion step", calls)
	}
	if err := s.StepUpdate(); !errors.Is(err, ErrDone) {
		t.Errorf("StepUpdate after the end: %v", err)
	}
	if len(frames) != 6*4 {
		t.Fatalf("%d frames, want 24", len(frames))
	}
	ts := s.Schedule().Timesteps()
	hw := m.Cfg.GridH * m.Cfg.GridW
	for k, f := range frames {
		step, sub := k/4, k%4
		idx := 5 - step
		if f.TimestepIndex != idx || f.T != ts[idx] || f.M != 3 || f.N != 2 || !f.CFG || f.State.B != 4 {
			t.Fatalf("frame %d: %+v", k, f)
		}
		if sub < 3 {
			if f.Kind != FrameUpdate || f.Update != sub+1 || len(f.Magnitude) != 4*hw || f.XPrev != nil || f.Done {
				t.Fatalf("frame %d: kind %v update %d", k, f.Kind, f.Update)
			}
			nz := 0
			for _, v := range f.Magnitude {
				if v != 0 {
					nz++
				}
			}
			if nz == 0 || nz == len(f.Magnitude) {
				t.Errorf("frame %d: %d of %d cells updated with rate 0.5", k, nz, len(f.Magnitude))
			}
		} else {
			if f.Kind != FrameTimestep || f.Update != 3 || f.XPrev == nil || f.Done != (idx == 0) {
				t.Fatalf("frame %d: kind %v update %d done %v", k, f.Kind, f.Update, f.Done)
			}
			// The preview after the last update is the x0 the step used.
			if !slices.Equal(frames[k-1].X0, f.X0) {
				t.Errorf("timestep %d: preview x0 after the last update differs from the step's x0", idx)
			}
			if !slices.Equal(frames[k-1].State.Data, f.State.Data) {
				t.Errorf("timestep %d: grid changed between the last update and the step", idx)
			}
			if k+1 < len(frames) && !slices.Equal(frames[k+1].Xt, f.XPrev) {
				t.Errorf("timestep %d: next timestep's x_t is not this step's result", idx)
			}
		}
	}
	res, _ := s.Result()
	if !slices.Equal(res, frames[len(frames)-1].XPrev) {
		t.Error("result differs from the last frame's XPrev")
	}
	// Frames are copies: mutating one does not touch the sampler.
	frames[0].State.Data[0] = 1e9
	if s.st.Data[0] == 1e9 {
		t.Error("frame state aliases the sampler's grid")
	}
}

func TestCellFramesDoNotChangeResult(t *testing.T) {
	m := tinyModel(t)
	a := runResult(t, mustNew(t, m, tinyOptions()))
	s := mustNew(t, m, tinyOptions())
	s.SetObserver(func(*Frame) {}, true)
	if err := s.WatchCell(1, 2, 3); err != nil {
		t.Fatal(err)
	}
	var attn []float32
	s.SetObserver(func(f *Frame) {
		if f.Kind == FrameUpdate {
			attn = f.Attn
		}
	}, true)
	if b := runResult(t, s); !slices.Equal(a, b) {
		t.Error("observing cell frames changed the samples")
	}
	if len(attn) != m.Cfg.Heads*9 {
		t.Fatalf("attention of the watched cell: %d values", len(attn))
	}
	for h := 0; h < m.Cfg.Heads; h++ {
		var sum float64
		for _, p := range attn[h*9 : (h+1)*9] {
			sum += float64(p)
		}
		if !(math.Abs(sum-1) <= 1e-5) {
			t.Errorf("head %d attention sums to %g", h, sum)
		}
	}
	if err := s.WatchCell(4, 0, 0); err == nil {
		t.Error("watching grid 4 of 4 accepted")
	}
}

func TestBranchIndependent(t *testing.T) {
	m := tinyModel(t)
	ref := runResult(t, mustNew(t, m, tinyOptions()))
	s := mustNew(t, m, tinyOptions())
	ctx := context.Background()
	if err := s.RunTo(ctx, 3); err != nil {
		t.Fatal(err)
	}
	// Branch in the middle of a timestep.
	for range 2 {
		if err := s.StepUpdate(); err != nil {
			t.Fatal(err)
		}
	}
	b := s.Branch()
	c := s.Branch()
	if err := c.SetM(7); err != nil {
		t.Fatal(err)
	}
	c.SetGHG(false)
	rc := runResult(t, c)
	rb := runResult(t, b)
	rs := runResult(t, s)
	if !slices.Equal(rs, ref) || !slices.Equal(rb, ref) {
		t.Error("parent or branch continued differently from an unbranched run")
	}
	if slices.Equal(rc, ref) {
		t.Error("branch with M = 7 and GHG off equals the parent")
	}
}

func TestCancelAndResume(t *testing.T) {
	m := tinyModel(t)
	ref := runResult(t, mustNew(t, m, tinyOptions()))
	s := mustNew(t, m, tinyOptions())
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	s.SetObserver(func(f *Frame) {
		if n++; n == 7 {
			cancel()
		}
	}, true)
	if err := s.RunToEnd(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("RunToEnd after cancel: %v", err)
	}
	if s.Done() || s.Err() != nil {
		t.Fatalf("cancelled run: done %v err %v", s.Done(), s.Err())
	}
	if err := s.StepTimestep(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("StepTimestep with a cancelled context: %v", err)
	}
	if got := runResult(t, s); !slices.Equal(got, ref) {
		t.Error("resumed run differs from an uninterrupted one")
	}
}

func TestRunToAndRewind(t *testing.T) {
	m := tinyModel(t)
	ctx := context.Background()
	for _, budget := range []int64{0, 1, -1} {
		t.Run(fmt.Sprint(budget), func(t *testing.T) {
			opt := tinyOptions()
			opt.SnapshotBytes = budget
			s := mustNew(t, m, opt)
			if err := s.RunTo(ctx, 2); err != nil {
				t.Fatal(err)
			}
			if s.Index() != 2 || s.UpdatesDone() != 0 {
				t.Fatalf("RunTo(2): at %d/%d", s.Index(), s.UpdatesDone())
			}
			if err := s.RunTo(ctx, 4); err == nil {
				t.Error("RunTo backwards accepted")
			}
			x2 := s.Latent()
			ref := runResult(t, s)
			if err := s.Rewind(ctx, 2); err != nil {
				t.Fatal(err)
			}
			if s.Index() != 2 || !slices.Equal(s.Latent(), x2) {
				t.Errorf("budget %d: Rewind(2) did not restore timestep 2", budget)
			}
			if got := runResult(t, s); !slices.Equal(got, ref) {
				t.Errorf("budget %d: rewound run differs", budget)
			}
			// Rewind and continue differently.
			if err := s.Rewind(ctx, 4); err != nil {
				t.Fatal(err)
			}
			s.SetM(1)
			if got := runResult(t, s); slices.Equal(got, ref) {
				t.Errorf("budget %d: rewound run with M = 1 equals the M = 4 run", budget)
			}
			if budget == 0 {
				if _, _, ok := s.Snapshot(5); !ok {
					t.Error("first snapshot missing")
				}
				if _, _, ok := s.Snapshot(3); !ok {
					t.Error("snapshot of timestep 3 dropped with the default budget")
				}
			}
			if budget == -1 && s.SnapshotBytes() != snapshotSize(s) {
				t.Errorf("budget -1 keeps %d bytes of snapshots", s.SnapshotBytes())
			}
		})
	}
}

func snapshotSize(s *Sampler) int64 {
	c := s.cfg
	return int64(2*s.n*c.GridH*c.GridW*(c.CellDim()+c.InChannels)) * 4
}

func TestSnapshotBudgetThinning(t *testing.T) {
	m := tinyModel(t)
	opt := tinyOptions()
	opt.Steps = "20"
	size := int64(2*2*m.Cfg.GridH*m.Cfg.GridW*(m.Cfg.CellDim()+m.Cfg.InChannels)) * 4
	opt.SnapshotBytes = 5 * size
	s := mustNew(t, m, opt)
	runResult(t, s)
	kept := 0
	for i := range 20 {
		if _, _, ok := s.Snapshot(i); ok {
			kept++
		}
	}
	if s.SnapshotBytes() > opt.SnapshotBytes || kept == 0 || int64(kept)*size != s.SnapshotBytes() {
		t.Errorf("kept %d snapshots, %d bytes, budget %d", kept, s.SnapshotBytes(), opt.SnapshotBytes)
	}
	if _, _, ok := s.Snapshot(19); !ok {
		t.Error("the first snapshot was dropped")
	}
}

func TestCFGSwitchMidRun(t *testing.T) {
	m := tinyModel(t)
	s := mustNew(t, m, tinyOptions())
	var batches []int
	s.SetObserver(func(f *Frame) { batches = append(batches, f.State.B) }, false)
	ctx := context.Background()
	steps := []func(){
		func() {},
		func() { s.SetCFG(1) },
		func() { s.SetCFG(2) },
		func() { s.SetCFG(2.5) },
		func() { s.SetGHG(false) },
		func() {},
	}
	for ci, f := range steps {
		t.Run(fmt.Sprint(ci), func(t *testing.T) {
			f()
			if err := s.StepTimestep(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
	if !slices.Equal(batches, []int{4, 2, 4, 4, 4, 4}) {
		t.Errorf("grid batches per timestep %v", batches)
	}
	r, err := s.Result()
	if err != nil || !finiteAll(r) || len(r) != 2*m.Cfg.InChannels*m.Cfg.GridH*m.Cfg.GridW {
		t.Errorf("result: %v, %d values", err, len(r))
	}
	// Mid-timestep: M applies at once, an on/off switch waits.
	s = mustNew(t, m, tinyOptions())
	s.StepUpdate()
	s.StepUpdate()
	s.SetCFG(1)
	if err := s.SetM(2); err != nil {
		t.Fatal(err)
	}
	if err := s.StepUpdate(); err != nil {
		t.Fatal(err)
	}
	if s.Index() != 4 || s.UpdatesDone() != 0 {
		t.Errorf("after lowering M to the updates done, the timestep should end: at %d/%d", s.Index(), s.UpdatesDone())
	}
	if s.nb() != 4 {
		t.Error("CFG switched off before the next timestep began")
	}
	s.StepUpdate()
	if s.nb() != 2 {
		t.Error("CFG still on at the next timestep")
	}
}

func TestDDIMAndReplayStreams(t *testing.T) {
	m := tinyModel(t)
	opt := tinyOptions()
	opt.Steps = "ddim6"
	s := mustNew(t, m, opt)
	if !s.DDIM() || s.Len() != 6 {
		t.Fatalf("ddim6: DDIM %v, %d steps", s.DDIM(), s.Len())
	}
	a := runResult(t, s)
	opt.Method = "ddpm"
	if b := runResult(t, mustNew(t, m, opt)); slices.Equal(a, b) {
		t.Error("DDPM and DDIM gave the same samples")
	}
	// Update rate 1 never touches the mask stream: an empty recording works.
	opt = tinyOptions()
	opt.UpdateRate = 1
	opt.Streams = &engine.Streams{Mask: &engine.ReplayStream{Name: "mask"}}
	runResult(t, mustNew(t, m, opt))
	// An exhausted recording stops the run with an error that names it.
	opt.UpdateRate = 0.5
	opt.Streams = &engine.Streams{Mask: &engine.ReplayStream{Name: "mask", Values: make([]float32, 100)}}
	s = mustNew(t, m, opt)
	err := s.RunToEnd(context.Background())
	if err == nil || !strings.Contains(err.Error(), "mask") {
		t.Fatalf("exhausted mask recording: %v", err)
	}
	if err2 := s.StepUpdate(); err2 == nil {
		t.Error("the sampler went on after an error")
	}
}

func TestBadOptions(t *testing.T) {
	m := tinyModel(t)
	bad := []Options{
		{Steps: "6"}, // no samples
		{Steps: "6", N: 2, Labels: [][]float32{{1, 0}}}, // wrong label width
		{Steps: "6", N: 3, Labels: [][]float32{{1, 0, 0}, {0, 1, 0}}},
		{Steps: "6", N: 1, CFG: -1},
		{Steps: "6", N: 1, CFG: float32(math.NaN())},
		{Steps: "6", N: 1, M: -2},
		{Steps: "6", N: 1, UpdateRate: 1.5},
		{Steps: "6", N: 1, Method: "euler"},
		{Steps: "abc", N: 1},
		{Steps: "2000", N: 1},
		{Steps: "6", N: 1, Eta: -1},
		{Steps: "6", N: 1, Labels: [][]float32{{1, float32(math.Inf(1)), 0}}},
	}
	for k, o := range bad {
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			if _, err := New(m, o); err == nil {
				t.Errorf("options %d accepted: %+v", k, o)
			}
		})
	}
	if _, err := New(nil, tinyOptions()); err == nil {
		t.Error("nil model accepted")
	}
	s := mustNew(t, m, Options{Steps: "6", N: 3, Labels: [][]float32{{0, 1, 0}}})
	if s.N() != 3 || s.M() != m.Cfg.M || s.UpdateRate() != m.Cfg.UpdateRate || s.GHG() || s.CFG() != 0 {
		t.Errorf("defaults: N %d M %d rate %g GHG %v CFG %g", s.N(), s.M(), s.UpdateRate(), s.GHG(), s.CFG())
	}
	for ci, err := range []error{s.SetM(-1), s.SetCFG(-2), s.SetUpdateRate(0), s.Rewind(context.Background(), 9)} {
		t.Run(fmt.Sprint(ci), func(t *testing.T) {
			if err == nil {
				t.Error("bad setting accepted")
			}
		})
	}
	if d := DefaultOptions(); d.Steps != "250" || !d.GHG || d.CFG != 1.5 {
		t.Errorf("DefaultOptions %+v", d)
	}
}

func TestCurrentAndRebegin(t *testing.T) {
	m := tinyModel(t)
	ctx := context.Background()
	// Reference: GHG switched off at timestep 3, update 0.
	ref := mustNew(t, m, tinyOptions())
	ref.RunTo(ctx, 3)
	ref.SetGHG(false)
	want := runResult(t, ref)

	s := mustNew(t, m, tinyOptions())
	s.RunTo(ctx, 3)
	f0, err := s.Current() // prepares timestep 3 with GHG on
	if err != nil {
		t.Fatal(err)
	}
	if f0.Update != 0 || f0.TimestepIndex != 3 || f0.Magnitude != nil || len(f0.X0) != len(f0.Xt) {
		t.Fatalf("frame at update 0: %+v", f0)
	}
	s.SetGHG(false) // still update 0: timestep 3 is prepared again
	f1, _ := s.Current()
	if slices.Equal(f0.State.Data, f1.State.Data) {
		t.Error("switching GHG off at update 0 did not re-prepare the grid")
	}
	if got := runResult(t, s); !slices.Equal(got, want) {
		t.Error("Current() before a GHG switch at update 0 changed the run")
	}
	// The same for a CFG switch.
	ref = mustNew(t, m, tinyOptions())
	ref.RunTo(ctx, 2)
	ref.SetCFG(1)
	want = runResult(t, ref)
	s = mustNew(t, m, tinyOptions())
	s.RunTo(ctx, 2)
	s.Current()
	s.SetCFG(1)
	if f, _ := s.Current(); f.State.B != 2 || f.CFG {
		t.Errorf("after switching CFG off at update 0: %d grids", f.State.B)
	}
	if got := runResult(t, s); !slices.Equal(got, want) {
		t.Error("Current() before a CFG switch at update 0 changed the run")
	}
	f, err := s.Current()
	if err != nil || !f.Done || !slices.Equal(f.XPrev, resultOf(s)) {
		t.Errorf("Current() at the end: %v", err)
	}

	// Measured updates report |update| through Current.
	s = mustNew(t, m, tinyOptions())
	s.SetMeasure(true)
	s.StepUpdate()
	s.StepUpdate()
	f, _ = s.Current()
	if f.Update != 2 || len(f.Magnitude) != 4*m.Cfg.GridH*m.Cfg.GridW {
		t.Errorf("measured frame: update %d, %d magnitudes", f.Update, len(f.Magnitude))
	}
}

func resultOf(s *Sampler) []float32 { r, _ := s.Result(); return r }

func TestSetState(t *testing.T) {
	m := tinyModel(t)
	ctx := context.Background()
	ref := runResult(t, mustNew(t, m, tinyOptions()))
	s := mustNew(t, m, tinyOptions())
	s.RunTo(ctx, 3)
	s.StepUpdate()
	st := s.State()
	// Damage: zero the hidden channels of a 3x3 patch of every grid.
	cfg := m.Cfg
	for b := 0; b < st.B; b++ {
		for i := 1; i < 4; i++ {
			for j := 1; j < 4; j++ {
				clear(st.Cell(b, i, j)[cfg.InChannels+cfg.OutChannels():])
			}
		}
	}
	if err := s.SetState(st); err != nil {
		t.Fatal(err)
	}
	if slices.Equal(runResult(t, s), ref) {
		t.Error("damaging the grid did not change the samples")
	}
	if err := s.Rewind(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(runResult(t, s), ref) {
		t.Error("rewinding to before the edit did not restore the undamaged run")
	}
	s = mustNew(t, m, tinyOptions())
	if err := s.SetState(engine.NewState(1, cfg.GridH, cfg.GridW, cfg.CellDim())); err == nil {
		t.Error("state of the wrong batch accepted")
	}
	bad := s.State()
	bad.Data[3] = float32(math.NaN())
	if err := s.SetState(bad); err == nil {
		t.Error("NaN state accepted")
	}
}

// TestClipX0 runs the same sample with and without x̂0 clipping: clipped, every
// x̂0 the steps use and every preview lies in [−1, 1], and so does the result
// (the last step returns x̂0); the unclipped run of this random model leaves
// that range, so the option is seen to act.
func TestClipX0(t *testing.T) {
	for _, method := range []string{"ddpm", "ddim"} {
		t.Run(method, func(t *testing.T) {
			m := tinyModel(t)
			opt := tinyOptions()
			opt.Method = method
			plain := runResult(t, mustNew(t, m, opt))
			opt.ClipX0 = true
			s := mustNew(t, m, opt)
			inRange := func(what string, xs []float32) {
				t.Helper()
				for k, v := range xs {
					if !(v >= -1 && v <= 1) {
						t.Fatalf("%s: value %d is %v, outside [-1, 1]", what, k, v)
					}
				}
			}
			frames := 0
			s.SetObserver(func(f *Frame) {
				frames++
				inRange(fmt.Sprintf("frame %d (timestep %d) x0", frames, f.TimestepIndex), f.X0)
			}, true)
			clipped := runResult(t, s)
			if frames == 0 {
				t.Fatal("no frames")
			}
			inRange("result", clipped)
			outside := 0
			for _, v := range plain {
				if v < -1 || v > 1 {
					outside++
				}
			}
			if outside == 0 {
				t.Fatalf("the unclipped %s run stays in [-1, 1]: the test shows nothing", method)
			}
		})
	}
}

// TestVPrediction: for a model that predicts v, the x̂0 the sampler shows and
// steps with is √ᾱ·x_t − √(1−ᾱ)·v̂, formed here from the grid's own outputs,
// with guidance mixing the conditional and unconditional v̂.
func TestVPrediction(t *testing.T) {
	m := tinyModel(t)
	m.Cfg.Prediction = engine.PredictV
	s := mustNew(t, m, tinyOptions())
	s.RunTo(context.Background(), 3)
	for range m.Cfg.M {
		if err := s.StepUpdate(); err != nil {
			t.Fatal(err)
		}
	}
	f, err := s.Current()
	if err != nil {
		t.Fatal(err)
	}
	c := m.Cfg
	hw, ci, co := c.GridH*c.GridW, c.InChannels, c.OutChannels()
	if f.State.B != 2*f.N || !f.CFG {
		t.Fatalf("want a guided frame of %d grids, got %d", 2*f.N, f.State.B)
	}
	out := make([]float32, f.State.B*co*hw)
	if err := engine.ModelOut(out, f.State, c); err != nil {
		t.Fatal(err)
	}
	full, err := diffusion.New(diffusion.DefaultSteps, "")
	if err != nil {
		t.Fatal(err)
	}
	ab := full.AlphasCumprod[f.T]
	scale := float64(tinyOptions().CFG)
	for b := 0; b < f.N; b++ {
		for k := 0; k < ci*hw; k++ {
			cond, uncond := float64(out[b*co*hw+k]), float64(out[(b+f.N)*co*hw+k])
			v := uncond + scale*(cond-uncond)
			want := math.Sqrt(ab)*float64(f.Xt[b*ci*hw+k]) - math.Sqrt(1-ab)*v
			if got := float64(f.X0[b*ci*hw+k]); math.Abs(got-want) > 1e-5*(1+math.Abs(want)) {
				t.Fatalf("sample %d value %d at t=%d: x̂0 %v, want %v", b, k, f.T, got, want)
			}
		}
	}
	if r := runResult(t, s); !finiteAll(r) {
		t.Error("v-model sample is not finite")
	}
}
