package sample

import (
	"context"
	"errors"
	"fmt"

	"geca/engine"
	"geca/engine/diffusion"
)

// ErrDone is returned by the stepping methods once the last timestep is done.
var ErrDone = errors.New("sample: the run is finished")

// Sampler is one sampling run. Its position is a timestep index i (from n−1
// down to 0) and the number of cell updates done in that timestep, 0 … M;
// at M the next step is the timestep's diffusion step, after which the run is
// at update 0 of timestep i−1. It is not safe for concurrent use: one
// goroutine owns it (the model may be shared by many samplers).
//
// Settings: at update 0 of a timestep every setting applies to that timestep.
// Once its first update is done, M, the update rate and the CFG scale still
// apply at once (with M lowered to the updates done, the next step is the
// diffusion step), while GHG and switching CFG on or off, which change how a
// timestep starts, apply from the next timestep.
type Sampler struct {
	model   *engine.Model
	cfg     engine.Config
	sched   *diffusion.Schedule
	ddim    bool
	eta     float32
	clip    diffusion.Clip
	n       int
	labels  [][]float32
	streams *engine.Streams

	want settings // the latest requested settings
	cur  settings // the settings of the current timestep (valid once begun)

	i     int  // current respaced timestep index; −1 when finished
	done  int  // cell updates done in the current timestep
	begun bool // the current timestep is prepared (C_in set, seeded, conditioned)
	err   error

	pre    boundary // the grid as it was before begin() prepared the current timestep
	edited bool     // the grid was replaced (SetState) during the current timestep
	final  *Frame   // the last timestep frame, once done

	cfgOn bool          // the batch is [conditional; unconditional]
	st    *engine.State // the grids, N or 2N of them
	x     []float32     // the latent batch (N_b, C_in, H, W)
	cond  *engine.Cond
	upd   map[int]*engine.Updater // by batch size
	sc    *scratch

	observer   func(*Frame)
	cellFrames bool
	measure    bool // compute |update| (and the watched cell's attention) every update
	measured   bool // the last update of the current timestep was measured
	watch      bool
	wb, wi, wj int

	snaps      []*snapshot // by timestep index; nil where not kept
	snapStride int
	snapBytes  int64
	snapBudget int64
	history    []record // by timestep index: what the finished timestep used
}

// record is what a finished timestep used, for replaying it.
type record struct {
	set    settings // with M = the updates actually done
	valid  bool
	edited bool // the grid was replaced during the timestep: a replay cannot redo it
}

// boundary is the part of the run that begin() changes, kept so that a GHG or
// CFG switch at update 0 can prepare the timestep again.
type boundary struct {
	st    *engine.State
	x     []float32
	seed  engine.Stream
	cfgOn bool
}

// snapshot is the sampler at the start of a timestep (immutable once taken).
type snapshot struct {
	x       []float32
	st      *engine.State
	streams *engine.Streams
	cfgOn   bool
	bytes   int64
}

// scratch buffers, sized for the largest batch seen.
type scratch struct {
	out, eps, v, z, xPrev, x0 []float32
	mask, mag, attn           []float32
	obs                       engine.Observe
}

// New prepares a run: it draws x_T and the seed and stops before the first
// cell update of timestep n−1.
func New(model *engine.Model, opt Options) (*Sampler, error) {
	if model == nil {
		return nil, fmt.Errorf("sample: model is nil")
	}
	cfg := model.Cfg
	opt, set, ddim, err := resolve(cfg, opt)
	if err != nil {
		return nil, err
	}
	sched, err := diffusion.New(opt.DiffusionSteps, opt.Steps)
	if err != nil {
		return nil, fmt.Errorf("sample: %w", err)
	}
	streams := engine.NewStreams(opt.Seed)
	if o := opt.Streams; o != nil {
		if o.Noise != nil {
			streams.Noise = o.Noise
		}
		if o.Seed != nil {
			streams.Seed = o.Seed
		}
		if o.Mask != nil {
			streams.Mask = o.Mask
		}
		if o.DDPM != nil {
			streams.DDPM = o.DDPM
		}
	}
	s := &Sampler{
		model: model, cfg: cfg, sched: sched, ddim: ddim, eta: opt.Eta, clip: diffusion.Clip(opt.ClipX0),
		n: opt.N, labels: opt.Labels, streams: streams,
		want: set, cur: set, cfgOn: set.cfgOn(),
		i:     sched.Len() - 1,
		upd:   map[int]*engine.Updater{},
		sc:    &scratch{},
		snaps: make([]*snapshot, sched.Len()), snapStride: 1,
		history: make([]record, sched.Len()),
	}
	switch {
	case opt.SnapshotBytes == 0:
		s.snapBudget = DefaultSnapshotBytes
	case opt.SnapshotBytes < 0:
		s.snapBudget = -1
	default:
		s.snapBudget = opt.SnapshotBytes
	}
	// x_T = randn(N, C_in, H, W); under CFG the batch is [z; z].
	per := s.latentSize()
	z := make([]float32, s.n*per)
	if err := normal(streams.Noise, z, "initial noise"); err != nil {
		return nil, err
	}
	s.x = make([]float32, s.nb()*per)
	copy(s.x, z)
	if s.cfgOn {
		copy(s.x[s.n*per:], z)
	}
	s.st = engine.NewState(s.nb(), cfg.GridH, cfg.GridW, cfg.CellDim())
	if err := engine.Seed(cfg, s.st, streams.Seed); err != nil {
		return nil, fmt.Errorf("sample: %w", err)
	}
	s.takeSnapshot()
	return s, nil
}

func normal(st engine.Stream, dst []float32, what string) error {
	if st == nil {
		return fmt.Errorf("sample: %s: stream is nil", what)
	}
	if err := st.Normal(dst); err != nil {
		return fmt.Errorf("sample: %s: %w", what, err)
	}
	for i, v := range dst {
		if !finite32(v) {
			return fmt.Errorf("sample: %s: draw %d is %v", what, i, v)
		}
	}
	return nil
}

// nb is the grid batch: N, or 2N under CFG.
func (s *Sampler) nb() int {
	if s.cfgOn {
		return 2 * s.n
	}
	return s.n
}

// latentSize is C_in·H·W.
func (s *Sampler) latentSize() int { return s.cfg.InChannels * s.cfg.GridH * s.cfg.GridW }

// ---- read-only accessors ------------------------------------------------------

// Model returns the model being sampled.
func (s *Sampler) Model() *engine.Model { return s.model }

// Schedule returns the (respaced) diffusion schedule.
func (s *Sampler) Schedule() *diffusion.Schedule { return s.sched }

// Len is the number of timesteps of the run.
func (s *Sampler) Len() int { return s.sched.Len() }

// N is the number of samples.
func (s *Sampler) N() int { return s.n }

// DDIM reports whether the run uses DDIM steps (else DDPM).
func (s *Sampler) DDIM() bool { return s.ddim }

// Index is the current timestep index (n−1 … 0), −1 once finished.
func (s *Sampler) Index() int { return s.i }

// Timestep is the original diffusion timestep of the current index (−1 once finished).
func (s *Sampler) Timestep() int {
	if s.i < 0 {
		return -1
	}
	return s.sched.Timestep(s.i)
}

// UpdatesDone is the number of cell updates done in the current timestep.
func (s *Sampler) UpdatesDone() int { return s.done }

// Done reports whether every timestep has run.
func (s *Sampler) Done() bool { return s.i < 0 }

// Err is the error that stopped the run, if any (the sampler refuses to go on
// after an error; Rewind clears it).
func (s *Sampler) Err() error { return s.err }

// M, GHG, CFG and UpdateRate return the requested settings (those that apply
// from now on).
func (s *Sampler) M() int              { return s.want.M }
func (s *Sampler) GHG() bool           { return s.want.GHG }
func (s *Sampler) CFG() float32        { return s.want.CFG }
func (s *Sampler) UpdateRate() float32 { return s.want.Rate }

// Latent returns a copy of the current latent of the N samples,
// (N, C_in, H, W): x_t before the current timestep's step, the final sample
// once Done.
func (s *Sampler) Latent() []float32 {
	return append([]float32(nil), s.x[:s.n*s.latentSize()]...)
}

// State returns a copy of the current grids (N_b of them: [conditional;
// unconditional] under CFG).
func (s *Sampler) State() *engine.State { return s.st.Clone() }

// Result returns the final samples (N, C_in, H, W) once the run is done.
func (s *Sampler) Result() ([]float32, error) {
	if !s.Done() {
		return nil, fmt.Errorf("sample: run not finished (at timestep index %d)", s.i)
	}
	return s.Latent(), nil
}

// ---- settings -------------------------------------------------------------------

// SetM sets the number of cell updates per timestep, from the current timestep on.
func (s *Sampler) SetM(m int) error {
	if err := checkM(m); err != nil {
		return err
	}
	s.want.M = m
	if s.begun {
		s.cur.M = m
	}
	return nil
}

// SetUpdateRate sets the per-cell update probability, from the next cell update on.
func (s *Sampler) SetUpdateRate(r float32) error {
	if err := checkRate(r); err != nil {
		return err
	}
	s.want.Rate = r
	if s.begun {
		s.cur.Rate = r
	}
	return nil
}

// SetCFG sets the guidance scale (on iff > 1). A new scale applies to the
// current timestep; switching guidance on or off applies from the next
// timestep start (it changes the batch: switching on gives the unconditional
// half a copy of the conditional grids; switching off drops it).
func (s *Sampler) SetCFG(scale float32) error {
	if err := checkCFG(scale); err != nil {
		return err
	}
	s.want.CFG = scale
	if s.begun && s.cur.cfgOn() != s.want.cfgOn() {
		s.unbegin()
	}
	if s.begun && s.cur.cfgOn() == s.want.cfgOn() {
		s.cur.CFG = scale
	}
	return nil
}

// SetGHG switches Gene Heredity Guidance (at update 0: for this timestep,
// else from the next one). It cannot fail; the error is the Stepper interface's.
func (s *Sampler) SetGHG(on bool) error {
	s.want.GHG = on
	if s.begun && s.cur.GHG != on {
		s.unbegin()
	}
	return nil
}

// SetObserver installs fn to receive frames (nil: none). With cellFrames, a
// frame follows every cell update; otherwise only every timestep. fn runs on
// the caller's goroutine inside the stepping method and must not call the
// sampler; the frame is the observer's to keep.
func (s *Sampler) SetObserver(fn func(*Frame), cellFrames bool) {
	s.observer, s.cellFrames = fn, cellFrames
}

// SetMeasure makes every cell update compute the per-cell |update| (and the
// watched cell's attention) for Current, even without an observer of cell
// frames. It cannot fail.
func (s *Sampler) SetMeasure(on bool) error {
	s.measure = on
	return nil
}

// WatchCell asks cell frames to carry the attention weights of cell (i, j) of
// grid b (heads·9 values, see engine.Observe).
func (s *Sampler) WatchCell(b, i, j int) error {
	if b < 0 || b >= s.nb() || i < 0 || i >= s.cfg.GridH || j < 0 || j >= s.cfg.GridW {
		return fmt.Errorf("sample: cell (%d, %d, %d) outside %d grids of %dx%d", b, i, j, s.nb(), s.cfg.GridH, s.cfg.GridW)
	}
	s.watch, s.wb, s.wi, s.wj = true, b, i, j
	return nil
}

// UnwatchCell stops attention reporting. It cannot fail.
func (s *Sampler) UnwatchCell() error {
	s.watch = false
	return nil
}

// ---- stepping ---------------------------------------------------------------------

func (s *Sampler) ready() error {
	if s.err != nil {
		return s.err
	}
	if s.Done() {
		return ErrDone
	}
	return nil
}

// fail makes err sticky: a half-done operation leaves the run inconsistent.
func (s *Sampler) fail(err error) error {
	s.err = err
	return err
}

// StepUpdate advances by one step: a cell update while the timestep has
// fewer than M, else the timestep's diffusion step (with M = 0, at once).
func (s *Sampler) StepUpdate() error {
	if err := s.ready(); err != nil {
		return err
	}
	if !s.begun {
		if err := s.begin(); err != nil {
			return s.fail(err)
		}
	}
	var err error
	if s.done < s.cur.M {
		err = s.update()
	} else {
		err = s.finish()
	}
	if err != nil {
		return s.fail(err)
	}
	return nil
}

// StepTimestep runs the rest of the current timestep, its diffusion step
// included. It stops between cell updates when ctx is cancelled.
func (s *Sampler) StepTimestep(ctx context.Context) error {
	if err := s.ready(); err != nil {
		return err
	}
	start := s.i
	for s.i == start {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.StepUpdate(); err != nil {
			return err
		}
	}
	return nil
}

// RunTo runs until timestep index idx is the current one, before its first
// cell update (idx = −1: to the end). idx must not be ahead of the current
// index (use Rewind to go back). It stops between cell updates when ctx is
// cancelled.
func (s *Sampler) RunTo(ctx context.Context, idx int) error {
	if idx < -1 || idx >= s.sched.Len() {
		return fmt.Errorf("sample: timestep index %d out of range [-1, %d)", idx, s.sched.Len())
	}
	if idx > s.i {
		return fmt.Errorf("sample: timestep index %d is already done (now at %d); use Rewind", idx, s.i)
	}
	if s.err != nil {
		return s.err
	}
	for s.i > idx {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.StepUpdate(); err != nil {
			return err
		}
	}
	return nil
}

// RunToEnd runs every remaining timestep.
func (s *Sampler) RunToEnd(ctx context.Context) error { return s.RunTo(ctx, -1) }

// Run draws samples from model in one go, for callers that never step,
// watch or rewind: a sampler from opt, run to the end, its Result. A run
// that is never rewound keeps only its first snapshot, unless
// opt.SnapshotBytes says otherwise (the result is the same either way).
func Run(ctx context.Context, model *engine.Model, opt Options) ([]float32, error) {
	if opt.SnapshotBytes == 0 {
		opt.SnapshotBytes = -1
	}
	s, err := New(model, opt)
	if err != nil {
		return nil, err
	}
	if err := s.RunToEnd(ctx); err != nil {
		return nil, err
	}
	return s.Result()
}

// updater returns the updater of the current batch size.
func (s *Sampler) updater() *engine.Updater {
	nb := s.nb()
	u, ok := s.upd[nb]
	if !ok {
		u = s.model.NewUpdater(nb)
		s.upd[nb] = u
	}
	return u
}

// ensure sizes the scratch buffers for batch nb.
func (s *Sampler) ensure(nb int) {
	c := s.cfg
	hw := c.GridH * c.GridW
	grow := func(b *[]float32, n int) {
		if len(*b) < n {
			*b = make([]float32, n)
		}
	}
	sc := s.sc
	grow(&sc.out, nb*c.OutChannels()*hw)
	grow(&sc.eps, nb*c.InChannels*hw)
	grow(&sc.v, nb*c.InChannels*hw)
	grow(&sc.z, nb*c.InChannels*hw)
	grow(&sc.xPrev, nb*c.InChannels*hw)
	grow(&sc.x0, nb*c.InChannels*hw)
	grow(&sc.mask, nb*hw)
	grow(&sc.mag, nb*hw)
	grow(&sc.attn, c.Heads*9)
}

// switchCFG changes the batch between N and 2N grids.
func (s *Sampler) switchCFG(on bool) {
	c, per := s.cfg, s.latentSize()
	if on {
		st := engine.NewState(2*s.n, c.GridH, c.GridW, c.CellDim())
		half := len(s.st.Data)
		copy(st.Data, s.st.Data)
		copy(st.Data[half:], s.st.Data)
		x := make([]float32, 2*s.n*per)
		copy(x, s.x[:s.n*per])
		copy(x[s.n*per:], s.x[:s.n*per])
		s.st, s.x = st, x
	} else {
		st := engine.NewState(s.n, c.GridH, c.GridW, c.CellDim())
		copy(st.Data, s.st.Data)
		s.st, s.x = st, append([]float32(nil), s.x[:s.n*per]...)
	}
	s.cfgOn = on
	if s.watch && s.wb >= s.nb() {
		s.watch = false
	}
}

// begin prepares the current timestep: settings, batch, C_in, seed or carry,
// conditioning.
func (s *Sampler) begin() error {
	s.savePre()
	s.cur = s.want
	if s.cur.cfgOn() != s.cfgOn {
		s.switchCFG(s.cur.cfgOn())
	}
	nb, per, c := s.nb(), s.latentSize(), s.cfg
	s.ensure(nb)
	if s.cfgOn {
		// forward_with_cfg feeds the conditional half twice: [x_c; x_c].
		copy(s.x[s.n*per:], s.x[:s.n*per])
	}
	if err := engine.SetInput(s.st, c, s.x); err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	var err error
	switch {
	case s.cfgOn && s.cur.GHG:
		// Official CFG: C_out re-seeded, C_h inherited.
		err = engine.ReseedOut(c, s.st, s.streams.Seed)
	case s.cfgOn, !s.cur.GHG && s.i != s.sched.Len()-1:
		// GHG off: a fresh seed (C_h = 0, centre C_out). The first
		// timestep without CFG already starts from the initial seed.
		err = engine.Seed(c, s.st, s.streams.Seed)
	}
	// Otherwise (GHG on, no CFG): both C_out and C_h are inherited.
	if err != nil {
		return fmt.Errorf("sample: timestep index %d: %w", s.i, err)
	}
	t := s.sched.Timestep(s.i)
	ts := make([]int, nb)
	ys := make([][]float32, nb)
	for b := range nb {
		ts[b] = t
		if b < s.n {
			ys[b] = s.labels[b]
		} else {
			ys[b] = make([]float32, c.NumClasses) // the CFG null label
		}
	}
	s.cond, err = s.model.Condition(ts, ys)
	if err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	s.begun = true
	return nil
}

// savePre records what begin() is about to change.
func (s *Sampler) savePre() {
	p := &s.pre
	if p.st == nil || p.st.B != s.st.B {
		p.st = s.st.Clone()
	} else {
		copy(p.st.Data, s.st.Data)
	}
	p.x = append(p.x[:0], s.x...)
	p.seed = s.streams.Seed.Clone()
	p.cfgOn = s.cfgOn
}

// unbegin undoes begin() at update 0 so that the timestep is prepared again
// with new settings. It reports whether it could (not after an edit).
func (s *Sampler) unbegin() bool {
	if !s.begun || s.done != 0 || s.edited {
		return !s.begun
	}
	p := &s.pre
	s.st = p.st.Clone()
	s.x = append(s.x[:0], p.x...)
	s.streams.Seed = p.seed.Clone()
	s.cfgOn = p.cfgOn
	s.begun, s.measured = false, false
	if s.watch && s.wb >= s.nb() {
		s.watch = false
	}
	return true
}

// update does one cell update of the current timestep.
func (s *Sampler) update() error {
	nb, c := s.nb(), s.cfg
	rows := nb * c.GridH * c.GridW
	var mask []float32
	if s.cur.Rate < 1 {
		mask = s.sc.mask[:rows]
		if err := engine.DrawMask(mask, s.cur.Rate, s.streams.Mask); err != nil {
			return fmt.Errorf("sample: timestep index %d, update %d: %w", s.i, s.done, err)
		}
	}
	var obs *engine.Observe
	if s.measure || (s.observer != nil && s.cellFrames) {
		obs = &s.sc.obs
		obs.Magnitude = s.sc.mag[:rows]
		obs.Attn = nil
		if s.watch {
			obs.Attn = s.sc.attn[:c.Heads*9]
			obs.AttnB, obs.AttnI, obs.AttnJ = s.wb, s.wi, s.wj
		}
	}
	if err := s.updater().Update(s.st, s.cond, mask, obs); err != nil {
		return fmt.Errorf("sample: timestep index %d, update %d: %w", s.i, s.done, err)
	}
	s.done++
	s.measured = obs != nil
	if obs != nil && s.observer != nil && s.cellFrames {
		f, err := s.cellFrame()
		if err != nil {
			return err
		}
		s.observer(f)
	}
	return nil
}

// modelOutput writes the (guided) model output (N_b, C_out, H, W) of the
// current grids and splits it into ε̂ and v, (N_b, C_in, H, W) each.
func (s *Sampler) modelOutput() error {
	nb, c := s.nb(), s.cfg
	hw := c.GridH * c.GridW
	co, per := c.OutChannels(), s.latentSize()
	out := s.sc.out[:nb*co*hw]
	var err error
	if s.cfgOn {
		err = engine.CFGCombine(out, s.st, c, s.cur.CFG)
	} else {
		err = engine.ModelOut(out, s.st, c)
	}
	if err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	for b := range nb {
		o := out[b*co*hw:]
		copy(s.sc.eps[b*per:(b+1)*per], o[:per])
		copy(s.sc.v[b*per:(b+1)*per], o[per:2*per])
	}
	if c.Prediction == engine.PredictV {
		// Guidance mixed the v̂ of both halves as it mixes ε̂: the two are
		// affine in each other at the same x_t, so the result is the same.
		size := nb * per
		if err := s.sched.EpsFromV(s.sc.eps[:size], s.x[:size], s.sc.eps[:size], s.i); err != nil {
			return fmt.Errorf("sample: %w", err)
		}
	}
	return nil
}

// finish does the diffusion step of the current timestep and moves to the next.
func (s *Sampler) finish() error {
	if !s.begun {
		if err := s.begin(); err != nil {
			return err
		}
	}
	nb, per := s.nb(), s.latentSize()
	if err := s.modelOutput(); err != nil {
		return err
	}
	size := nb * per
	z := s.sc.z[:size]
	if err := normal(s.streams.DDPM, z, fmt.Sprintf("timestep index %d: step noise", s.i)); err != nil {
		return err
	}
	xPrev, x0 := s.sc.xPrev[:size], s.sc.x0[:size]
	var err error
	if s.ddim {
		err = s.sched.DDIMStep(xPrev, x0, s.x, s.sc.eps[:size], z, s.i, s.eta, s.clip)
	} else {
		err = s.sched.DDPMStep(xPrev, x0, s.x, s.sc.eps[:size], s.sc.v[:size], z, s.i, s.clip)
	}
	if err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	rec := s.cur
	rec.M = s.done
	s.history[s.i] = record{set: rec, valid: true, edited: s.edited}
	if s.observer != nil || s.i == 0 {
		f := s.timestepFrame()
		if s.i == 0 {
			s.final = f
		}
		if s.observer != nil {
			s.observer(f)
		}
	}
	copy(s.x, xPrev)
	s.i--
	s.done, s.begun, s.edited, s.measured = 0, false, false, false
	if s.i >= 0 {
		s.takeSnapshot()
	}
	return nil
}

// ---- branching and scrubbing ----------------------------------------------------

// Branch returns an independent copy of the run at its current position: grids,
// latents, every random stream at its current position, settings, snapshots
// and history. Continuing either one does not affect the other; continued
// with the same settings, both produce the same result. The observer and the
// watched cell are not copied.
func (s *Sampler) Branch() *Sampler {
	b := *s
	b.streams = s.streams.Clone()
	b.st = s.st.Clone()
	b.x = append([]float32(nil), s.x...)
	b.upd = map[int]*engine.Updater{}
	b.sc = &scratch{}
	if s.begun {
		b.ensure(b.nb())
	}
	b.observer, b.cellFrames, b.watch, b.measure = nil, false, false, false
	b.pre = boundary{}
	if s.pre.st != nil {
		b.pre = boundary{st: s.pre.st.Clone(), x: append([]float32(nil), s.pre.x...), seed: s.pre.seed.Clone(), cfgOn: s.pre.cfgOn}
	}
	b.snaps = append([]*snapshot(nil), s.snaps...)
	b.history = append([]record(nil), s.history...)
	// labels and cond are never modified in place; sharing them is safe.
	return &b
}

// takeSnapshot records the start of the current timestep and keeps the
// snapshots within budget by dropping every other one (the first is always
// kept).
func (s *Sampler) takeSnapshot() {
	n := s.sched.Len()
	if s.snapBudget < 0 && s.i != n-1 {
		return
	}
	if (n-1-s.i)%s.snapStride != 0 {
		return
	}
	if old := s.snaps[s.i]; old != nil {
		s.snapBytes -= old.bytes
	}
	sn := &snapshot{
		x: append([]float32(nil), s.x...), st: s.st.Clone(), streams: s.streams.Clone(), cfgOn: s.cfgOn,
	}
	sn.bytes = int64(len(sn.x)+len(sn.st.Data)) * 4
	s.snaps[s.i] = sn
	s.snapBytes += sn.bytes
	for s.snapBudget > 0 && s.snapBytes > s.snapBudget && s.snapStride < n {
		s.snapStride *= 2
		for k, v := range s.snaps {
			if v != nil && (n-1-k)%s.snapStride != 0 {
				s.snapBytes -= v.bytes
				s.snaps[k] = nil
			}
		}
	}
}

// SnapshotBytes is the memory the kept snapshots hold.
func (s *Sampler) SnapshotBytes() int64 { return s.snapBytes }

// Snapshot returns the latent (N, C_in, H, W) and the grids at the start of
// timestep index idx (the grids as the previous timestep left them, before
// this one's seeding), if that snapshot is kept. The data is shared: do not
// modify it.
func (s *Sampler) Snapshot(idx int) (x []float32, st *engine.State, ok bool) {
	if idx < 0 || idx >= len(s.snaps) || s.snaps[idx] == nil {
		return nil, nil, false
	}
	sn := s.snaps[idx]
	return sn.x[:s.n*s.latentSize()], sn.st, true
}

// Rewind moves the run back to the start of timestep index idx, which must
// not be ahead of the current position. It restores the nearest kept
// snapshot at or before that point in the run and, if needed, replays the
// timesteps in between with the settings each of them used (the last values
// they had; no frames are emitted). Snapshots after idx are dropped; the
// requested settings are kept and apply from idx on. Rewind clears a sticky
// error.
func (s *Sampler) Rewind(ctx context.Context, idx int) error {
	n := s.sched.Len()
	if idx < 0 || idx >= n {
		return fmt.Errorf("sample: timestep index %d out of range [0, %d)", idx, n)
	}
	if idx < s.i {
		return fmt.Errorf("sample: timestep index %d is ahead of the run (at %d); use RunTo", idx, s.i)
	}
	j := idx
	for j < n-1 && s.snaps[j] == nil {
		j++
	}
	sn := s.snaps[j]
	if sn == nil {
		return fmt.Errorf("sample: no snapshot to rewind to")
	}
	for k := 0; k < j; k++ {
		if v := s.snaps[k]; v != nil {
			s.snapBytes -= v.bytes
			s.snaps[k] = nil
		}
	}
	s.x = append([]float32(nil), sn.x...)
	s.st = sn.st.Clone()
	s.streams = sn.streams.Clone()
	s.cfgOn = sn.cfgOn
	s.i, s.done, s.begun, s.err = j, 0, false, nil
	s.edited, s.measured, s.final = false, false, nil
	if s.watch && s.wb >= s.nb() {
		s.watch = false
	}
	if j == idx {
		return nil
	}
	want, obs := s.want, s.observer
	s.observer = nil
	defer func() { s.want, s.observer = want, obs }()
	for s.i > idx {
		if err := ctx.Err(); err != nil {
			return err
		}
		r := s.history[s.i]
		if !r.valid {
			return fmt.Errorf("sample: no record of timestep index %d to replay", s.i)
		}
		if r.edited {
			return fmt.Errorf("sample: timestep index %d had its grid edited and its snapshot is gone; it cannot be replayed (rewound to %d instead)", s.i, s.i)
		}
		s.want = r.set
		start := s.i
		for s.i == start {
			if err := s.StepUpdate(); err != nil {
				return err
			}
		}
	}
	return nil
}

// SetState replaces the grids at the current position (for example to damage
// cells); st must have the shape of State(). At update 0 the timestep is
// prepared first, so the edit applies to the grid the first update sees. The
// C_in channels are what the cells read during this timestep; the diffusion
// step itself uses the latent x_t. An edited timestep cannot be replayed by
// Rewind from an earlier snapshot.
func (s *Sampler) SetState(st *engine.State) error {
	if err := s.ready(); err != nil {
		return err
	}
	if !s.begun {
		if err := s.begin(); err != nil {
			return s.fail(err)
		}
	}
	if st == nil {
		return fmt.Errorf("sample: state is nil")
	}
	if st.B != s.st.B || st.H != s.st.H || st.W != s.st.W || st.C != s.st.C || len(st.Data) != len(s.st.Data) {
		return fmt.Errorf("sample: set state: shape (B=%d, C=%d, H=%d, W=%d), want (%d, %d, %d, %d)", st.B, st.C, st.H, st.W, s.st.B, s.st.C, s.st.H, s.st.W)
	}
	for i, v := range st.Data {
		if !finite32(v) {
			return fmt.Errorf("sample: set state: value %v at index %d is not finite", v, i)
		}
	}
	copy(s.st.Data, st.Data)
	s.edited = true
	return nil
}

// Current returns a frame of the current position: at update 0 the grid the
// first update will see (the timestep is prepared if it was not), else the
// grid after the last update, with the x0 preview (and |update| when the last
// update was measured); once done, the last timestep frame.
func (s *Sampler) Current() (*Frame, error) {
	if s.err != nil {
		return nil, s.err
	}
	if s.Done() {
		if s.final == nil {
			return nil, fmt.Errorf("sample: no final frame")
		}
		return s.final.clone(), nil
	}
	if !s.begun {
		if err := s.begin(); err != nil {
			return nil, s.fail(err)
		}
	}
	f := s.baseFrame(FrameUpdate)
	if err := s.modelOutput(); err != nil {
		return nil, s.fail(err)
	}
	var err error
	if f.X0, err = s.previewX0(); err != nil {
		return nil, err
	}
	if s.measured && s.done > 0 {
		f.Magnitude = append([]float32(nil), s.sc.obs.Magnitude...)
		if s.sc.obs.Attn != nil {
			f.Attn = append([]float32(nil), s.sc.obs.Attn...)
		}
	}
	return f, nil
}
