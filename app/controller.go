package app

import (
	"errors"
	"fmt"
	"math"

	"geca/engine"
	"geca/render"
)

// StepRecord is the recorded history of one timestep of a run. Records are
// copy-on-write: once published in a Snapshot a record never changes; the
// controller replaces it with a new one instead.
type StepRecord struct {
	Index, T, M int
	Sigma       float64
	Frames      []*Frame  // Frames[u] after update u (0 = start); nil where evicted
	MeanMag     []float32 // mean |update| per cell after update u (0 at u = 0)
	Reached     []float32 // fraction of cells reached from the seed after update u
	// Spread is the fraction of cells the seed has influenced after update
	// u (Frame.Influence > 0); NaN where the influence was not computed.
	Spread []float32
	// MeanEps is the mean |ε̂| over the cells after update u.
	MeanEps []float32
}

// Last returns the last recorded frame.
func (r *StepRecord) Last() *Frame { return r.Frames[len(r.Frames)-1] }

// Complete reports whether all M updates of the timestep are recorded.
func (r *StepRecord) Complete() bool { return len(r.Frames) == r.M+1 }

// Run is one line of history: a run from the start (the first one, or one
// made by changing the seed, labels or steps), a branch made by changing a
// setting, or the result of a damage stroke. A branch starts at a position
// of its parent and records only what happened after it.
type Run struct {
	ID                    int
	Label                 string
	Parent                *Run
	ForkIndex, ForkUpdate int
	Settings              Settings
	Damage                bool // made by the damage brush (undo removes it)
	// Health is where the grid first held values the run cannot recover
	// from: non-finite, or beyond ExplodeAt.
	Health Health

	// sampler is the run at its head. It owns the run's history: snapshots
	// of its timesteps, from which sampleAt rewinds it.
	sampler *stepper
	// edit is the grid a damage stroke left (Damage runs): the run is made
	// again from its parent with it where the Stepper cannot rewind into the
	// edited timestep.
	edit  *engine.State
	steps []*StepRecord // records for timesteps >= ForkIndex
	bytes int64         // memory of its frames and edit (estimate)
	order int           // when it was last shown (for the memory budget)
}

// ExplodeAt is the magnitude above which grid values are reported as
// exploding: a healthy run keeps x_t within a few units and its cells
// within tens; broken or random checkpoints reach 1e15.
const ExplodeAt = 1e4

// Health records where a run's grid first went wrong.
type Health struct {
	MaxAbs float32 // largest finite |value| seen in the grid
	// BigAt and NaNAt are (timestep, update) of the first frame with a
	// value beyond ExplodeAt and with a non-finite value; K < 0 when none.
	BigAt, NaNAt [2]int
}

func newHealth() Health { return Health{BigAt: [2]int{-1, -1}, NaNAt: [2]int{-1, -1}} }

// Pane is one view in compare mode (normal mode has one pane). Its playhead
// (K, U) is the frame on screen.
type Pane struct {
	Run   *Run
	K, U  int
	Label string  // describes the run the pane shows
	value *Change // the compared setting's value for this pane in compare mode
}

// Controller holds the runs and panes and carries out commands. It is not safe
// for concurrent use: the Runner owns it.
type Controller struct {
	eng      Engine
	cfg      engine.Config
	base     Settings // settings of the run the controls started from
	runs     []*Run
	panes    []*Pane
	active   int
	nextID   int
	undo     []undoRec
	selected [2]int // observed cell, (-1, -1) when none
	strokes  int
	// MaxBytes bounds the memory of the recorded history: the runs'
	// snapshots and the frames the controller keeps (controller_budget.go).
	MaxBytes int64
	frames   int64 // memory of the runs' frames (Run.bytes)
	Playing  bool
	compare  CompareMode
	// influence: the runs measure the seed influence (doubles an update).
	influence  bool
	shown      int // counter for Run.order
	notes      []string
	overBudget bool // the last eviction could not get under MaxBytes
	// redone holds the frames Details recomputed and what they were
	// recomputed for: what they still lack (the attention of the update
	// before a stroke, a twin the worker could not fork) cannot be had, so
	// they are not redone for the same asks.
	redone map[*Frame]detailsAsked
}

// NewController starts a main run with settings s.
func NewController(eng Engine, s Settings) (*Controller, error) {
	c := &Controller{eng: eng, cfg: eng.Config(), selected: [2]int{-1, -1}, MaxBytes: DefaultHistoryBytes()}
	if err := c.Restart(s, "main"); err != nil {
		return nil, err
	}
	return c, nil
}

// Config is the model's configuration.
func (c *Controller) Config() engine.Config { return c.cfg }

// Settings returns the settings the controls show: those of the active pane's run.
func (c *Controller) Settings() Settings { return c.panes[c.active].Run.Settings }

// Panes returns the panes (read-only).
func (c *Controller) Panes() []*Pane { return c.panes }

// Runs returns every run (read-only).
func (c *Controller) Runs() []*Run { return c.runs }

// Active is the index of the pane the controls act on.
func (c *Controller) Active() int { return c.active }

func sameSettings(a, b Settings) bool {
	return a.Steps == b.Steps && a.M == b.M && a.GHG == b.GHG && a.CFG == b.CFG && a.Rate == b.Rate &&
		a.Seed == b.Seed && a.LabelString() == b.LabelString()
}

func checkSettings(s Settings) error {
	if s.M < 1 || s.M > MaxM {
		return fmt.Errorf("M must be in [1, %d], not %d", MaxM, s.M)
	}
	if !(s.Rate > 0 && s.Rate <= 1) {
		return fmt.Errorf("update rate must be in (0, 1], not %g", s.Rate)
	}
	if !(s.CFG >= 0) || math.IsInf(float64(s.CFG), 0) {
		return fmt.Errorf("CFG scale must be a finite number >= 0, not %g", s.CFG)
	}
	return nil
}

// Restart shows a run from the start with settings s: the run from the start
// with these settings when there is one (the same seed gives the same run),
// else a new one labelled label. Every earlier run stays in the branch list.
// In compare mode the panes branch from the new run's start.
func (c *Controller) Restart(s Settings, label string) error {
	if err := checkSettings(s); err != nil {
		return err
	}
	var root *Run
	for _, r := range c.runs {
		if r.Parent == nil && sameSettings(r.Settings, s) {
			root = r
		}
	}
	if root == nil {
		r, err := c.newRun(s, nil)
		if err != nil {
			return err
		}
		r.Label = label
		c.runs = append(c.runs, r)
		root = r
	}
	c.base = s
	c.undo = nil
	main := &Pane{Run: root}
	if c.compare.Kind == CompareOff {
		c.panes, c.active = []*Pane{main}, 0
		c.touch()
		c.evict()
		return nil
	}
	mode := c.compare
	mode.FromStart = true
	c.panes, c.active = []*Pane{main}, 0
	return c.SetCompare(mode)
}

// newRun starts a fresh run (position (0, 0)) with its share of the memory
// budget for its snapshots.
func (c *Controller) newRun(s Settings, parent *Run) (*Run, error) {
	run, err := c.eng.NewSampler(s, c.snapshotShare())
	if err != nil {
		return nil, err
	}
	smp, err := newStepper(c.cfg, run)
	if err != nil {
		return nil, err
	}
	c.prepare(smp)
	f, err := smp.Current()
	if err != nil {
		smp.Close()
		return nil, err
	}
	c.nextID++
	r := &Run{ID: c.nextID, Settings: s, Parent: parent, sampler: smp, Health: newHealth()}
	c.record(r, f)
	return r, nil
}

// prepare gives a stepper the controller's observation settings.
func (c *Controller) prepare(s *stepper) {
	s.SetInfluence(c.influence)
	if c.selected[0] >= 0 {
		s.Observe(c.selected[0], c.selected[1])
	} else {
		s.Observe(-1, -1)
	}
}

// Timeline returns the records of run r from timestep 0 to its head,
// following the parent chain for the timesteps before the fork.
func (c *Controller) Timeline(r *Run) []*StepRecord {
	var pre []*StepRecord
	if r.Parent != nil {
		pre = c.Timeline(r.Parent)
		if len(pre) > r.ForkIndex {
			pre = pre[:r.ForkIndex]
		}
	}
	out := make([]*StepRecord, 0, len(pre)+len(r.steps))
	out = append(out, pre...)
	return append(out, r.steps...)
}

// record appends frame f, just produced by r's sampler, to r's history.
func (c *Controller) record(r *Run, f *Frame) {
	if f.Reached == nil {
		var prev *Frame
		if f.Update > 0 {
			rec := c.recordAt(r, f.Index)
			if rec == nil && r.Parent != nil {
				rec = c.recordAt(r.Parent, f.Index)
			}
			if rec != nil && f.Update-1 < len(rec.Frames) {
				prev = rec.Frames[f.Update-1]
			}
		} else if f.Index > 0 {
			if rec := c.recordAt(r, f.Index-1); rec != nil {
				prev = rec.Last()
			}
		}
		c.reach(f, prev, r.Settings.GHG)
	}
	c.checkHealth(r, f)
	st := frameStats(c.cfg, f)
	n := len(r.steps)
	if n == 0 || r.steps[n-1].Index != f.Index {
		rec := &StepRecord{Index: f.Index, T: f.T, M: f.M, Sigma: f.Sigma}
		if f.Update > 0 && r.Parent != nil {
			// a damage run starts mid-timestep: share the parent's earlier frames
			if pr := c.recordAt(r.Parent, f.Index); pr != nil {
				m := min(f.Update, len(pr.Frames))
				rec.Frames = append(rec.Frames, pr.Frames[:m]...)
				rec.MeanMag = append(rec.MeanMag, pr.MeanMag[:m]...)
				rec.Reached = append(rec.Reached, pr.Reached[:m]...)
				rec.Spread = append(rec.Spread, pr.Spread[:m]...)
				rec.MeanEps = append(rec.MeanEps, pr.MeanEps[:m]...)
			}
		}
		r.steps = append(r.steps, rec)
		n++
	}
	old := r.steps[n-1]
	rec := *old
	rec.M = f.M
	if u := f.Update; u < len(rec.Frames) { // a replaced frame (damage): cut the tail
		rec.Frames, rec.MeanMag, rec.Reached = rec.Frames[:u:u], rec.MeanMag[:u:u], rec.Reached[:u:u]
		rec.Spread, rec.MeanEps = rec.Spread[:u:u], rec.MeanEps[:u:u]
	}
	rec.Frames = append(rec.Frames, f)
	rec.MeanMag = append(rec.MeanMag, st.meanMag)
	rec.Reached = append(rec.Reached, st.reached)
	rec.Spread = append(rec.Spread, st.spread)
	rec.MeanEps = append(rec.MeanEps, st.meanEps)
	r.steps[n-1] = &rec
	c.account(r, frameBytes(f))
	c.evict()
}

// checkHealth notes the first frame of r whose grid holds non-finite values
// or values beyond ExplodeAt.
func (c *Controller) checkHealth(r *Run, f *Frame) {
	if f.State == nil {
		return
	}
	h := &r.Health
	pos := [2]int{f.Index, f.Update}
	for _, x := range f.State.Data {
		a := float32(math.Abs(float64(x)))
		switch {
		case a != a || math.IsInf(float64(a), 0):
			if h.NaNAt[0] < 0 {
				h.NaNAt = pos
			}
		case a > h.MaxAbs:
			h.MaxAbs = a
		}
	}
	if h.MaxAbs > ExplodeAt && h.BigAt[0] < 0 {
		h.BigAt = pos
	}
}

// reach sets f.Reached, the cells the growth from the seed has reached, from
// the frame before it on the same timeline: an update spreads it through the
// cells it changed (render.Spread); a timestep starts from the seed cell, plus
// what the previous timestep reached when GHG carries the grid.
func (c *Controller) reach(f, prev *Frame, ghg bool) {
	h, w := c.cfg.GridH, c.cfg.GridW
	n := h * w
	switch {
	case f.Reached != nil:
	case f.Update > 0 && prev != nil && prev.Reached != nil && len(f.Magnitude) >= n:
		f.Reached = render.Spread(prev.Reached, f.Magnitude[:n], h, w)
	case f.Update > 0 && prev != nil && prev.Reached != nil:
		f.Reached = prev.Reached
	default:
		r := make([]bool, n)
		if ghg && f.Index > 0 && prev != nil && len(prev.Reached) == n {
			copy(r, prev.Reached)
		}
		r[(h/2)*w+w/2] = true
		f.Reached = r
	}
}

// frameNumbers are the per-frame numbers the plots and panes show.
type frameNumbers struct {
	meanMag, reached, spread, meanEps float32
}

// frameStats returns the mean |update| over the cells of sample 0, the
// fraction of its cells reached from the seed (Frame.Reached), the fraction
// the seed influenced (NaN when not measured) and the mean |ε̂|.
func frameStats(cfg engine.Config, f *Frame) frameNumbers {
	var out frameNumbers
	n := cfg.Cells()
	if len(f.Magnitude) >= n && n > 0 {
		var s float64
		for _, m := range f.Magnitude[:n] {
			s += float64(m)
		}
		out.meanMag = float32(s / float64(n))
	}
	switch {
	case len(f.Reached) == n && n > 0:
		k := 0
		for _, r := range f.Reached {
			if r {
				k++
			}
		}
		out.reached = float32(float64(k) / float64(n))
	case f.State != nil && f.State.B > 0:
		_, frac := render.Reached(f.State, 0, cfg.InChannels)
		out.reached = float32(frac)
	}
	out.spread = float32(math.NaN())
	if len(f.Influence) == n && n > 0 {
		k := 0
		for _, v := range f.Influence {
			if v > 0 {
				k++
			}
		}
		out.spread = float32(float64(k) / float64(n))
	}
	if st := f.State; st != nil && n > 0 && len(st.Data) >= n*st.C {
		var s float64
		for p := 0; p < n; p++ {
			for _, e := range st.Data[p*st.C+cfg.InChannels : p*st.C+2*cfg.InChannels] {
				s += math.Abs(float64(e))
			}
		}
		out.meanEps = float32(s / float64(n*cfg.InChannels))
	}
	return out
}

// recordAt returns the record of timestep k on r's timeline, nil beyond
// its head.
func (c *Controller) recordAt(r *Run, k int) *StepRecord {
	if h := holder(r, k); h != nil {
		return h.steps[k-h.ForkIndex]
	}
	return nil
}

// holder returns the run on r's chain whose records hold timestep k.
func holder(r *Run, k int) *Run {
	for ; r != nil; r = r.Parent {
		if k >= r.ForkIndex {
			if k-r.ForkIndex < len(r.steps) {
				return r
			}
			return nil
		}
	}
	return nil
}

// owner returns the run on r's chain that recorded position (k, u): the one
// whose sampler can go back to it.
func owner(r *Run, k, u int) *Run {
	for r.Parent != nil && (k < r.ForkIndex || k == r.ForkIndex && u < r.ForkUpdate) {
		r = r.Parent
	}
	return r
}

// Frame returns the frame at (k, u) of run r, recomputing it if it was
// evicted. It returns nil when (k, u) is beyond the run's head.
func (c *Controller) Frame(r *Run, k, u int) (*Frame, error) {
	rec := c.recordAt(r, k)
	if rec == nil || u < 0 || u >= len(rec.Frames) {
		return nil, nil
	}
	if f := rec.Frames[u]; f != nil {
		return f, nil
	}
	o := owner(r, k, u)
	if err := c.refill(o, k); err != nil {
		return nil, err
	}
	if f := c.recordAt(r, k).Frames[u]; f != nil {
		return f, nil
	}
	return c.recordAt(o, k).Frames[u], nil
}

// refill recomputes the evicted frames of timestep k of run r, rewound to
// the timestep's start; the random streams make the replay exact.
func (c *Controller) refill(r *Run, k int) error {
	i := k - r.ForkIndex
	rec := r.steps[i]
	start := 0
	if k == r.ForkIndex {
		start = r.ForkUpdate
	}
	s, err := c.sampleAt(r, k, start)
	if err != nil {
		return err
	}
	defer s.Close()
	nr := *rec
	nr.Frames = append([]*Frame(nil), rec.Frames...)
	for u := start + 1; u < len(nr.Frames); u++ {
		f, err := s.StepUpdate()
		if err != nil {
			return err
		}
		if nr.Frames[u] == nil {
			c.reach(f, nr.Frames[u-1], r.Settings.GHG)
			nr.Frames[u] = f
			c.account(r, frameBytes(f))
		}
	}
	r.steps[i] = &nr
	return nil
}

// sampleAt returns a new stepper at (k, u) of run r, which the caller
// closes or keeps as a run's head. It forks the run that recorded (k, u),
// rewinds the fork to the start of timestep k (the Stepper's snapshots) and
// steps it to update u: the same random streams, so the same bits. Within
// one run the settings never change (a change makes a branch), so the
// replay is exact. Where the Stepper cannot rewind, into or past the
// timestep a damage stroke edited, the run is made again from its parent
// (origin).
func (c *Controller) sampleAt(r *Run, k, u int) (*stepper, error) {
	o := owner(r, k, u)
	s, err := c.rewound(o, k, u)
	if err != nil {
		return nil, err
	}
	if err := stepTo(s, k, u); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// rewound returns a fork of run o at (k, u), or before it in timestep k or
// at o's fork, a position of o's own.
func (c *Controller) rewound(o *Run, k, u int) (*stepper, error) {
	if h := o.sampler.last; h != nil && h.Index == k && h.Update == u {
		return c.fork(o.sampler)
	}
	// The timestep a stroke edited is not the Stepper's to replay: its
	// snapshot holds the grid before the stroke.
	if !o.Damage || k > o.ForkIndex {
		s, err := c.fork(o.sampler)
		if err != nil {
			return nil, err
		}
		err = s.rewind(k)
		if err == nil {
			return s, nil
		}
		s.Close()
		if o.Parent == nil {
			return nil, err // a run from the start has no edited timestep to fail on
		}
	}
	return c.origin(o)
}

// origin makes run o again at its fork: its parent at the fork position
// with o's settings, or with the grid o's stroke left.
func (c *Controller) origin(o *Run) (*stepper, error) {
	s, err := c.sampleAt(o.Parent, o.ForkIndex, o.ForkUpdate)
	if err != nil {
		return nil, err
	}
	if o.Damage {
		_, err = s.SetCells(o.edit)
	} else if err = s.SetSettings(o.Settings); err == nil {
		_, err = s.head()
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// fork is a fork of s with the controller's observation settings.
func (c *Controller) fork(s *stepper) (*stepper, error) {
	f, err := s.Fork()
	if err != nil {
		return nil, err
	}
	c.prepare(f)
	return f, nil
}

// stepTo steps s forward to (k, u).
func stepTo(s *stepper, k, u int) error {
	f, err := s.head()
	for guard := 0; ; guard++ {
		if err != nil {
			return err
		}
		if f.Index == k && f.Update == u {
			return nil
		}
		if f.Index > k || f.Index == k && f.Update > u || f.Done || guard > 1<<22 {
			return fmt.Errorf("cannot rewind to %s: the replay passed it", StepLabel(k, u))
		}
		f, err = s.StepUpdate()
	}
}

// atHead reports whether pane p's playhead is at its run's newest frame.
func (c *Controller) atHead(p *Pane) bool {
	h, err := p.Run.sampler.head()
	return err == nil && p.K == h.Index && p.U == h.Update
}

// PaneFrame returns the frame under pane i's playhead.
func (c *Controller) PaneFrame(i int) (*Frame, error) {
	p := c.panes[i]
	return c.Frame(p.Run, p.K, p.U)
}

// advance moves pane p one update forward: along recorded history when there
// is some, otherwise by computing.
func (c *Controller) advance(p *Pane) error {
	rec := c.recordAt(p.Run, p.K)
	if rec == nil {
		return fmt.Errorf("no record for step %d", p.K+1)
	}
	if p.U+1 < len(rec.Frames) {
		p.U++
		return nil
	}
	if next := c.recordAt(p.Run, p.K+1); next != nil && rec.Complete() {
		p.K, p.U = p.K+1, 0
		return nil
	}
	if !c.atHead(p) {
		return fmt.Errorf("step %d, update %d is not recorded and not the head", p.K+1, p.U)
	}
	if h, err := p.Run.sampler.head(); err != nil || h.Done {
		return err
	}
	f, err := p.Run.sampler.StepUpdate()
	if err != nil {
		return err
	}
	c.record(p.Run, f)
	p.K, p.U = f.Index, f.Update
	return nil
}

// Done reports whether pane i shows the final sample.
func (c *Controller) Done(i int) bool {
	p := c.panes[i]
	f, _ := c.Frame(p.Run, p.K, p.U)
	return f != nil && f.Done
}

// StepUpdate advances every pane by one cell update, in lock-step: while any
// pane is inside a timestep, only panes that have updates left move; when all
// have finished it, they all take the diffusion step together.
func (c *Controller) StepUpdate() error {
	mid := false
	for _, p := range c.panes {
		if rec := c.recordAt(p.Run, p.K); rec != nil && p.U < rec.M {
			mid = true
		}
	}
	var errs []error
	for _, p := range c.panes {
		rec := c.recordAt(p.Run, p.K)
		if rec == nil || mid && p.U >= rec.M {
			continue
		}
		if err := c.advance(p); err != nil {
			errs = append(errs, err)
		}
	}
	if c.AllDone() {
		c.Playing = false
	}
	return errors.Join(errs...)
}

// StepTimestep advances every pane to the start of the next timestep.
func (c *Controller) StepTimestep() error {
	k := c.panes[c.active].K
	for guard := 0; guard < 1000000; guard++ {
		if c.AllDone() {
			return nil
		}
		if err := c.StepUpdate(); err != nil {
			return err
		}
		if c.panes[c.active].K > k {
			return nil
		}
	}
	return errors.New("step timestep: no progress")
}

// AllDone reports whether every pane shows its final sample.
func (c *Controller) AllDone() bool {
	for i := range c.panes {
		if !c.Done(i) {
			return false
		}
	}
	return true
}

// Seek moves every pane's playhead to timestep k, update u (clamped to what
// each has recorded). Nothing is computed except evicted frames.
func (c *Controller) Seek(k, u int) error {
	for _, p := range c.panes {
		tl := c.Timeline(p.Run)
		kk := max(0, min(k, len(tl)-1))
		uu := max(0, min(u, len(tl[kk].Frames)-1))
		p.K, p.U = kk, uu
		if _, err := c.Frame(p.Run, kk, uu); err != nil {
			return err
		}
	}
	return nil
}
