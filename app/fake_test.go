package app

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"geca/engine"
)

// fakeEngine makes fakeSamplers: a cheap, deterministic stand-in for the
// GeCA sampler with the same stepping rules. Growth: every update, each
// unreached cell next to a reached one is reached with probability Rate
// (drawn from the run's seeded stream), and reached cells add 1 to ε̂.
type fakeEngine struct {
	cfg   engine.Config
	calls *int          // StepUpdate calls over all samplers
	delay time.Duration // how long an update takes
	// explode: from this (timestep, update) on, every update multiplies
	// the hidden channels by 1000 (a broken checkpoint); nil: never
	explode *[2]int
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{cfg: engine.Config{Name: "fake", GridH: 8, GridW: 8, InChannels: 1, HiddenChannels: 2,
		EmbedDim: 4, Heads: 2, MLPDim: 4, NumClasses: 3, M: 4, UpdateRate: 0.5}, calls: new(int)}
}

func (e *fakeEngine) Config() engine.Config { return e.cfg }
func (e *fakeEngine) Name() string          { return "fake" }

func (e *fakeEngine) NewSampler(s Settings) (Sampler, error) {
	n, err := strconv.Atoi(s.Steps)
	if err != nil || n < 1 {
		return nil, errors.New("bad steps")
	}
	f := &fakeSampler{eng: e, s: s, steps: n, rng: *rand.NewPCG(s.Seed, 1), obs: [2]int{-1, -1}}
	f.st = engine.NewState(1, e.cfg.GridH, e.cfg.GridW, e.cfg.CellDim())
	noise := rand.New(rand.NewPCG(s.Seed, 2))
	for p := 0; p < e.cfg.Cells(); p++ {
		f.st.Data[p*f.st.C] = float32(noise.NormFloat64())
	}
	f.pre = f.st.Clone()
	f.seed()
	return f, nil
}

type fakeSampler struct {
	eng      *fakeEngine
	s        Settings
	steps    int
	k, u     int
	st       *engine.State
	mag      []float32
	rng      rand.PCG
	obs      [2]int
	failNext bool
	nextM    int
	pre      *engine.State // the grid before this timestep was prepared
	infl     bool
	twin     *fakeSampler // the timestep without the seed cell, in step
}

func (f *fakeSampler) seed() {
	cin := f.eng.cfg.InChannels
	for p := 0; p < f.eng.cfg.Cells(); p++ {
		cell := f.st.Data[p*f.st.C : (p+1)*f.st.C]
		for i := cin; i < len(cell); i++ {
			cell[i] = 0
		}
	}
	c := f.st.Cell(0, f.st.H/2, f.st.W/2)
	c[cin], c[cin+1] = 1, 0.5
}

func (f *fakeSampler) Current() (*Frame, error) {
	cfg := f.eng.cfg
	n := cfg.Cells()
	xt := make([]float32, n)
	x0 := make([]float32, n)
	for p := 0; p < n; p++ {
		xt[p] = f.st.Data[p*f.st.C]
		x0[p] = f.st.Data[p*f.st.C+1] / 4
	}
	fr := &Frame{Index: f.k, T: 999 - f.k, Update: f.u, M: f.s.M, Sigma: 1 - float64(f.k)/float64(f.steps),
		State: f.st.Clone(), Xt: xt, X0: x0, AttnCell: f.obs,
		Done: f.k == f.steps-1 && f.u == f.s.M}
	if f.mag != nil {
		fr.Magnitude = append([]float32(nil), f.mag...)
	}
	if f.infl && f.twin == nil && f.u == 0 {
		t := *f
		t.st, t.infl, t.twin = f.st.Clone(), false, nil
		clear(t.st.Cell(0, t.st.H/2, t.st.W/2)[cfg.InChannels:])
		f.twin = &t
	}
	if f.twin != nil && !fr.Done {
		fr.Influence = influence(cfg, f.st, f.twin.st)
	}
	if f.obs[0] >= 0 {
		fr.Attn = make([]float32, cfg.Heads*9)
		for h := 0; h < cfg.Heads; h++ {
			fr.Attn[h*9+4] = 1
		}
	}
	return fr, nil
}

func (f *fakeSampler) StepUpdate() (*Frame, error) {
	*f.eng.calls++
	time.Sleep(f.eng.delay)
	if f.failNext {
		f.failNext = false
		return nil, errors.New("injected failure")
	}
	cfg := f.eng.cfg
	if f.twin != nil && f.u < f.s.M {
		f.twin.rng = f.rng // the same masks
		if _, err := f.twin.StepUpdate(); err != nil {
			return nil, err
		}
		*f.eng.calls--
	} else {
		f.twin = nil
	}
	if f.u == f.s.M {
		if f.k == f.steps-1 {
			return nil, errors.New("sampling is finished")
		}
		f.k, f.u = f.k+1, 0
		if f.nextM > 0 {
			f.s.M, f.nextM = f.nextM, 0
		}
		for p := 0; p < cfg.Cells(); p++ {
			f.st.Data[p*f.st.C] *= 0.9
		}
		f.pre = f.st.Clone()
		f.begin()
		f.mag = nil
		return f.Current()
	}
	h, w := f.st.H, f.st.W
	reached := make([]bool, h*w)
	for p := range reached {
		reached[p] = f.st.Data[p*f.st.C+cfg.InChannels] != 0
	}
	f.mag = make([]float32, h*w)
	r := rand.New(&f.rng)
	for i := 0; i < h; i++ {
		for j := 0; j < w; j++ {
			p := i*w + j
			u := r.Float32()
			if reached[p] {
				f.st.Data[p*f.st.C+cfg.InChannels] += 1
				f.mag[p] = 1
				continue
			}
			near := false
			for _, d := range [][2]int{{-1, 0}, {1, 0}, {0, -1}, {0, 1}} {
				y, x := i+d[0], j+d[1]
				if y >= 0 && x >= 0 && y < h && x < w && reached[y*w+x] {
					near = true
				}
			}
			if near && u < f.s.Rate {
				f.st.Data[p*f.st.C+cfg.InChannels] = 1
				f.mag[p] = 1
			}
		}
	}
	f.u++
	if e := f.eng.explode; e != nil && (f.k > e[0] || f.k == e[0] && f.u >= e[1]) {
		for p := 0; p < cfg.Cells(); p++ {
			f.st.Data[p*f.st.C+f.st.C-1] = 1 + 1000*f.st.Data[p*f.st.C+f.st.C-1]
		}
	}
	return f.Current()
}

func (f *fakeSampler) Branch() Sampler {
	c := *f
	if f.twin != nil {
		c.twin = f.twin.Branch().(*fakeSampler)
	}
	c.st = f.st.Clone()
	c.pre = f.pre.Clone()
	c.mag = append([]float32(nil), f.mag...)
	if f.mag == nil {
		c.mag = nil
	}
	return &c
}

// begin prepares a timestep: a fresh seed without GHG (and always at the
// first step), else the carried grid.
func (f *fakeSampler) begin() {
	if !f.s.GHG || f.k == 0 {
		f.seed()
	}
}

func (f *fakeSampler) SetM(m int) error {
	if f.u == 0 {
		f.s.M = m
	} else {
		f.nextM = m
	}
	return nil
}
func (f *fakeSampler) SetGHG(on bool) error    { f.s.GHG = on; return nil }
func (f *fakeSampler) SetCFG(s float32) error  { f.s.CFG = s; return nil }
func (f *fakeSampler) SetRate(r float32) error { f.s.Rate = r; return nil }
func (f *fakeSampler) Observe(i, j int)        { f.obs = [2]int{i, j} }
func (f *fakeSampler) SetInfluence(on bool) {
	f.infl = on
	if !on {
		f.twin = nil
	}
}
func (f *fakeSampler) SetCells(st *engine.State) error {
	if err := f.st.CopyFrom(st); err != nil {
		return err
	}
	return nil
}
