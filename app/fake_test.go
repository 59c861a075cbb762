package app

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"geca/engine"
	"geca/engine/sample"
)

// fakeEngine makes fakeSamplers: a cheap, deterministic stand-in for the
// GeCA sampler with the same stepping rules and the same contract
// (sample.Stepper), history included. Growth: every update, each unreached
// cell next to a reached one is reached with probability Rate (drawn from
// the run's seeded stream), and reached cells add 1 to ε̂.
type fakeEngine struct {
	cfg   engine.Config
	calls *int          // StepUpdate calls over all samplers
	delay time.Duration // how long an update takes
	// explode: from this (timestep, update) on, every update multiplies
	// the hidden channels by 1000 (a broken checkpoint); nil: never
	explode *[2]int
	// open counts the samplers made (New and Fork) and not closed
	open int
	// budgets are the snapshot budgets NewSampler was given
	budgets []int64
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{cfg: engine.Config{Name: "fake", GridH: 8, GridW: 8, InChannels: 1, HiddenChannels: 2,
		EmbedDim: 4, Heads: 2, MLPDim: 4, NumClasses: 3, M: 4, UpdateRate: 0.5}, calls: new(int)}
}

func (e *fakeEngine) Config() engine.Config { return e.cfg }
func (e *fakeEngine) Name() string          { return "fake" }

func (e *fakeEngine) NewSampler(s Settings, snapshotBytes int64) (sample.Stepper, error) {
	n, err := strconv.Atoi(s.Steps)
	if err != nil || n < 1 {
		return nil, errors.New("bad steps")
	}
	set := fakeSettings{M: s.M, GHG: s.GHG, CFG: s.CFG, Rate: s.Rate}
	f := &fakeSampler{eng: e, want: set, cur: set, steps: n, rng: *rand.NewPCG(s.Seed, 1), budget: snapshotBytes,
		stride: 1, snaps: make([]*fakeSnap, n), history: make([]fakeRecord, n)}
	f.st = engine.NewState(1, e.cfg.GridH, e.cfg.GridW, e.cfg.CellDim())
	noise := rand.New(rand.NewPCG(s.Seed, 2))
	for p := 0; p < e.cfg.Cells(); p++ {
		f.st.Data[p*f.st.C] = float32(noise.NormFloat64())
	}
	f.seed()
	f.snapshot()
	e.open++
	e.budgets = append(e.budgets, snapshotBytes)
	return f, nil
}

type fakeSettings struct {
	M    int
	GHG  bool
	CFG  float32
	Rate float32
}

// fakeSnap is the run at the start of timestep k (before it is prepared).
type fakeSnap struct {
	st  *engine.State
	rng rand.PCG
}

// fakeRecord is what a finished timestep used, for replaying it.
type fakeRecord struct {
	set    fakeSettings // with M = the updates done
	valid  bool
	edited bool
}

type fakeSampler struct {
	eng       *fakeEngine
	want, cur fakeSettings
	steps     int
	k, u      int // timestep from the start (steps once done) and updates done in it
	begun     bool
	edited    bool
	st        *engine.State
	pre       *engine.State // the grid before this timestep was prepared
	mag       []float32     // |update| of the last update; nil at update 0
	rng       rand.PCG
	measure   bool
	watching  bool
	watch     [2]int
	final     *sample.Frame
	failNext  bool
	closed    bool

	snaps             []*fakeSnap // by k; nil where not kept
	history           []fakeRecord
	snapBytes, budget int64
	stride            int
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

// snapshot keeps the start of timestep k within the budget, thinning as
// sample.Sampler does (every other one, repeatedly; the first is kept).
func (f *fakeSampler) snapshot() {
	if f.budget < 0 && f.k != 0 || f.k%f.stride != 0 {
		return
	}
	if old := f.snaps[f.k]; old != nil {
		f.snapBytes -= snapBytes(old)
	}
	sn := &fakeSnap{st: f.st.Clone(), rng: f.rng}
	f.snaps[f.k] = sn
	f.snapBytes += snapBytes(sn)
	for f.budget > 0 && f.snapBytes > f.budget && f.stride < f.steps {
		f.stride *= 2
		for k, v := range f.snaps {
			if v != nil && k%f.stride != 0 {
				f.snapBytes -= snapBytes(v)
				f.snaps[k] = nil
			}
		}
	}
}

func snapBytes(s *fakeSnap) int64 { return int64(4 * len(s.st.Data)) }

// begin prepares the timestep: a fresh seed without GHG (the first
// timestep is seeded at the start), else the carried grid.
func (f *fakeSampler) begin() {
	if f.begun {
		return
	}
	f.pre = f.st.Clone()
	f.cur = f.want
	if !f.cur.GHG && f.k > 0 {
		f.seed()
	}
	f.begun = true
}

func (f *fakeSampler) ready() error {
	switch {
	case f.closed:
		return errors.New("fake: sampler used after Close")
	case f.Done():
		return sample.ErrDone
	}
	return nil
}

func (f *fakeSampler) frame() *sample.Frame {
	cfg := f.eng.cfg
	n := cfg.Cells()
	xt := make([]float32, n)
	x0 := make([]float32, n)
	for p := 0; p < n; p++ {
		xt[p] = f.st.Data[p*f.st.C]
		x0[p] = f.st.Data[p*f.st.C+1] / 4
	}
	fr := &sample.Frame{TimestepIndex: f.steps - 1 - f.k, Timesteps: f.steps, T: 999 - f.k, Update: f.u, M: f.cur.M, N: 1,
		State: f.st.Clone(), Xt: xt, X0: x0}
	if f.mag != nil && f.measure {
		fr.Magnitude = append([]float32(nil), f.mag...)
		if f.watching {
			fr.Attn = make([]float32, cfg.Heads*9)
			for h := 0; h < cfg.Heads; h++ {
				fr.Attn[h*9+4] = 1
			}
		}
	}
	return fr
}

func (f *fakeSampler) Current() (*sample.Frame, error) {
	if f.closed {
		return nil, errors.New("fake: sampler used after Close")
	}
	if f.Done() {
		c := *f.final
		c.State = f.final.State.Clone()
		return &c, nil
	}
	f.begin()
	return f.frame(), nil
}

func (f *fakeSampler) StepUpdate() error {
	*f.eng.calls++
	time.Sleep(f.eng.delay)
	if f.failNext {
		f.failNext = false
		return errors.New("injected failure")
	}
	if err := f.ready(); err != nil {
		return err
	}
	f.begin()
	if f.u < f.cur.M {
		f.update()
		return nil
	}
	// the diffusion step
	rec := f.cur
	rec.M = f.u
	f.history[f.k] = fakeRecord{set: rec, valid: true, edited: f.edited}
	if f.k == f.steps-1 {
		fr := f.frame()
		fr.Kind, fr.Done, fr.XPrev = sample.FrameTimestep, true, fr.X0
		f.final = fr
	}
	f.k, f.u, f.begun, f.edited, f.mag = f.k+1, 0, false, false, nil
	for p := 0; p < f.eng.cfg.Cells(); p++ {
		f.st.Data[p*f.st.C] *= 0.9
	}
	if !f.Done() {
		f.snapshot()
	}
	return nil
}

func (f *fakeSampler) update() {
	cfg := f.eng.cfg
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
			if near && u < f.cur.Rate {
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
}

func (f *fakeSampler) StepUpdateCurrent() (*sample.Frame, error) {
	if err := f.StepUpdate(); err != nil {
		return nil, err
	}
	return f.Current()
}

func (f *fakeSampler) StepTimestep(ctx context.Context) error {
	k := f.k
	for f.k == k {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := f.StepUpdate(); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeSampler) RunTo(ctx context.Context, idx int) error {
	for f.Index() > idx {
		if err := f.StepTimestep(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeSampler) RunToEnd(ctx context.Context) error { return f.RunTo(ctx, -1) }

// Rewind restores the nearest snapshot at or before timestep index idx and
// replays the timesteps between with the settings they used, as
// sample.Sampler does; a timestep whose grid was edited cannot be replayed.
func (f *fakeSampler) Rewind(ctx context.Context, idx int) error {
	if f.closed {
		return errors.New("fake: sampler used after Close")
	}
	k := f.steps - 1 - idx
	if idx < 0 || idx >= f.steps || k > f.k {
		return fmt.Errorf("fake: cannot rewind to index %d (at %d)", idx, f.Index())
	}
	j := k
	for j > 0 && f.snaps[j] == nil {
		j--
	}
	for later := j + 1; later < f.steps; later++ {
		if v := f.snaps[later]; v != nil {
			f.snapBytes -= snapBytes(v)
			f.snaps[later] = nil
		}
	}
	sn := f.snaps[j]
	f.st, f.rng = sn.st.Clone(), sn.rng
	f.k, f.u, f.begun, f.edited, f.mag, f.final = j, 0, false, false, nil, nil
	want := f.want
	defer func() { f.want = want }()
	for f.k < k {
		r := f.history[f.k]
		if !r.valid || r.edited {
			return fmt.Errorf("fake: timestep %d cannot be replayed", f.k)
		}
		f.want = r.set
		if err := f.StepTimestep(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Fork is an independent copy, without the watched cell and the
// measurement (as sample.Sampler.Branch).
func (f *fakeSampler) Fork() (sample.Stepper, error) {
	if f.closed {
		return nil, errors.New("fake: sampler used after Close")
	}
	c := *f
	c.st = f.st.Clone()
	if f.pre != nil {
		c.pre = f.pre.Clone()
	}
	if f.mag != nil {
		c.mag = append([]float32(nil), f.mag...)
	}
	c.snaps = append([]*fakeSnap(nil), f.snaps...)
	c.history = append([]fakeRecord(nil), f.history...)
	c.measure, c.watching, c.failNext = false, false, false
	f.eng.open++
	return &c, nil
}

func (f *fakeSampler) Close() {
	if !f.closed {
		f.closed = true
		f.eng.open--
	}
}

func (f *fakeSampler) Len() int   { return f.steps }
func (f *fakeSampler) N() int     { return 1 }
func (f *fakeSampler) DDIM() bool { return false }
func (f *fakeSampler) TimestepOf(i int) int {
	if i < 0 || i >= f.steps {
		return -1
	}
	return 999 - (f.steps - 1 - i)
}
func (f *fakeSampler) Sigma(i int) float64 {
	if i < 0 || i >= f.steps {
		return 0
	}
	return 1 - float64(f.steps-1-i)/float64(f.steps)
}
func (f *fakeSampler) Index() int {
	if f.Done() {
		return -1
	}
	return f.steps - 1 - f.k
}
func (f *fakeSampler) Timestep() int        { return f.TimestepOf(f.Index()) }
func (f *fakeSampler) UpdatesDone() int     { return f.u }
func (f *fakeSampler) Done() bool           { return f.k >= f.steps }
func (f *fakeSampler) Err() error           { return nil }
func (f *fakeSampler) M() int               { return f.want.M }
func (f *fakeSampler) GHG() bool            { return f.want.GHG }
func (f *fakeSampler) CFG() float32         { return f.want.CFG }
func (f *fakeSampler) UpdateRate() float32  { return f.want.Rate }
func (f *fakeSampler) SnapshotBytes() int64 { return f.snapBytes }

// set changes a setting from now on: the current timestep too once it is
// prepared.
func (f *fakeSampler) set(change func(*fakeSettings)) {
	change(&f.want)
	if f.begun {
		change(&f.cur)
	}
}

func (f *fakeSampler) SetM(m int) error {
	if m < 0 || m > MaxM {
		return fmt.Errorf("fake: M %d", m)
	}
	f.set(func(s *fakeSettings) { s.M = m })
	return nil
}

func (f *fakeSampler) SetUpdateRate(r float32) error {
	if !(r > 0 && r <= 1) {
		return fmt.Errorf("fake: rate %v", r)
	}
	f.set(func(s *fakeSettings) { s.Rate = r })
	return nil
}

func (f *fakeSampler) SetCFG(v float32) error {
	f.set(func(s *fakeSettings) { s.CFG = v })
	return nil
}

// SetGHG at update 0 prepares the timestep again (unless it was edited).
func (f *fakeSampler) SetGHG(on bool) error {
	f.want.GHG = on
	if f.begun && f.cur.GHG != on && f.u == 0 && !f.edited {
		f.st, f.begun = f.pre.Clone(), false
	}
	return nil
}

// SetObserver is accepted; the fake sends no frames (the app does not
// observe).
func (f *fakeSampler) SetObserver(func(*sample.Frame), bool) {}
func (f *fakeSampler) SetMeasure(on bool) error              { f.measure = on; return nil }
func (f *fakeSampler) WatchCell(b, i, j int) error {
	if b != 0 || i < 0 || j < 0 || i >= f.st.H || j >= f.st.W {
		return fmt.Errorf("fake: cell %d, %d, %d", b, i, j)
	}
	f.watching, f.watch = true, [2]int{i, j}
	return nil
}
func (f *fakeSampler) UnwatchCell() error { f.watching = false; return nil }

func (f *fakeSampler) SetState(st *engine.State) error {
	if err := f.ready(); err != nil {
		return err
	}
	f.begin()
	if err := f.st.CopyFrom(st); err != nil {
		return err
	}
	f.edited = true
	return nil
}

func (f *fakeSampler) Result() ([]float32, error) {
	if !f.Done() {
		return nil, errors.New("fake: not finished")
	}
	return append([]float32(nil), f.final.XPrev...), nil
}

var _ sample.Stepper = (*fakeSampler)(nil)
