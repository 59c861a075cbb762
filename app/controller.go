package app

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

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
}

// Last returns the last recorded frame.
func (r *StepRecord) Last() *Frame { return r.Frames[len(r.Frames)-1] }

// Complete reports whether all M updates of the timestep are recorded.
func (r *StepRecord) Complete() bool { return len(r.Frames) == r.M+1 }

// Run is one line of history: the main run, a branch made by changing a
// setting, or the result of a damage stroke. A run starts at a position of its
// parent and records only what happened after it.
type Run struct {
	ID                    int
	Label                 string
	Parent                *Run
	ForkIndex, ForkUpdate int
	Settings              Settings
	Damage                bool // made by the damage brush (undo removes it)

	sampler Sampler            // at the head of the run
	resume  map[[2]int]Sampler // clones at recorded positions, to rewind and branch
	steps   []*StepRecord      // records for timesteps >= ForkIndex
}

// Pane is one view in compare mode (normal mode has one pane). Its playhead
// (K, U) is the frame on screen.
type Pane struct {
	Run   *Run
	K, U  int
	Label string
	apply func(*Settings) // the pane's own setting in compare mode
}

// Controller holds the runs and panes and carries out commands. It is not safe
// for concurrent use: the Runner owns it.
type Controller struct {
	eng      Engine
	cfg      engine.Config
	base     Settings // settings of the main run, as the controls show them
	runs     []*Run
	panes    []*Pane
	active   int
	nextID   int
	undo     []undoRec
	selected [2]int // observed cell, (-1, -1) when none
	strokes  int
	// MaxBytes bounds the memory of recorded frames; intra-timestep frames of
	// older timesteps are dropped beyond it and recomputed when revisited.
	MaxBytes int64
	bytes    int64
	Playing  bool
	compare  string // "", "M" or "GHG"
}

type undoRec struct {
	pane   int
	prev   *Run
	k, u   int
	damage *Run
}

// NewController starts a main run with settings s.
func NewController(eng Engine, s Settings) (*Controller, error) {
	c := &Controller{eng: eng, cfg: eng.Config(), selected: [2]int{-1, -1}, MaxBytes: 1 << 30}
	if err := c.Reset(s); err != nil {
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

// Reset discards all history and starts again from settings s, keeping
// compare mode (with the same per-pane settings) if it is on.
func (c *Controller) Reset(s Settings) error {
	if s.M < 1 {
		return fmt.Errorf("M must be at least 1, not %d", s.M)
	}
	var applies []func(*Settings)
	var labels []string
	for _, p := range c.panes {
		applies = append(applies, p.apply)
		labels = append(labels, p.Label)
	}
	if len(applies) == 0 {
		applies, labels = []func(*Settings){nil}, []string{""}
	}
	var panes []*Pane
	var runs []*Run
	c.bytes = 0
	for i, ap := range applies {
		ps := s
		if ap != nil {
			ap(&ps)
		}
		r, err := c.newRun(ps, nil)
		if err != nil {
			return err
		}
		if labels[i] == "" {
			r.Label = "main"
		} else {
			r.Label = labels[i]
		}
		runs = append(runs, r)
		panes = append(panes, &Pane{Run: r, Label: labels[i], apply: ap})
	}
	c.base, c.runs, c.panes, c.undo = s, runs, panes, nil
	if c.active >= len(panes) {
		c.active = 0
	}
	return nil
}

// newRun starts a fresh sampler (position (0, 0)).
func (c *Controller) newRun(s Settings, parent *Run) (*Run, error) {
	smp, err := c.eng.NewSampler(s)
	if err != nil {
		return nil, err
	}
	if c.selected[0] >= 0 {
		smp.Observe(c.selected[0], c.selected[1])
	}
	f, err := smp.Current()
	if err != nil {
		return nil, err
	}
	c.nextID++
	r := &Run{ID: c.nextID, Settings: s, Parent: parent, sampler: smp, resume: map[[2]int]Sampler{}}
	c.record(r, f, smp)
	return r, nil
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

// record appends frame f, just produced by r's sampler s, to r's history.
func (c *Controller) record(r *Run, f *Frame, s Sampler) {
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
	mean, reached := frameStats(c.cfg, f)
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
			}
		}
		r.steps = append(r.steps, rec)
		n++
	}
	old := r.steps[n-1]
	rec := *old
	rec.M = f.M
	if f.Update < len(rec.Frames) { // a replaced frame (damage): cut the tail
		rec.Frames, rec.MeanMag, rec.Reached = rec.Frames[:f.Update:f.Update], rec.MeanMag[:f.Update:f.Update], rec.Reached[:f.Update:f.Update]
	}
	rec.Frames = append(rec.Frames, f)
	rec.MeanMag = append(rec.MeanMag, mean)
	rec.Reached = append(rec.Reached, reached)
	r.steps[n-1] = &rec
	c.bytes += frameBytes(f)
	if f.Update == 0 && s != nil {
		r.resume[[2]int{f.Index, 0}] = s.Branch()
	}
	c.evict()
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

func frameBytes(f *Frame) int64 {
	n := len(f.Xt) + len(f.X0) + len(f.Magnitude) + len(f.Attn)
	if f.State != nil {
		n += len(f.State.Data)
	}
	return int64(4*n + 200)
}

// frameStats returns the mean |update| over the cells of sample 0 and the
// fraction of its cells reached from the seed (Frame.Reached).
func frameStats(cfg engine.Config, f *Frame) (float32, float32) {
	var mean float32
	n := cfg.Cells()
	if len(f.Magnitude) >= n && n > 0 {
		var s float64
		for _, m := range f.Magnitude[:n] {
			s += float64(m)
		}
		mean = float32(s / float64(n))
	}
	var frac float64
	switch {
	case len(f.Reached) == n && n > 0:
		k := 0
		for _, r := range f.Reached {
			if r {
				k++
			}
		}
		frac = float64(k) / float64(n)
	case f.State != nil && f.State.B > 0:
		_, frac = render.Reached(f.State, 0, cfg.InChannels)
	}
	return mean, float32(frac)
}

// evict drops the inner frames (not the first and last) of the oldest
// complete timesteps until the recorded frames fit in MaxBytes.
func (c *Controller) evict() {
	if c.MaxBytes <= 0 || c.bytes <= c.MaxBytes {
		return
	}
	for _, r := range c.runs {
		for i, rec := range r.steps {
			if c.bytes <= c.MaxBytes*3/4 {
				return
			}
			if !rec.Complete() || i == len(r.steps)-1 || len(rec.Frames) < 3 {
				continue
			}
			nr := *rec
			nr.Frames = make([]*Frame, len(rec.Frames))
			nr.Frames[0], nr.Frames[len(rec.Frames)-1] = rec.Frames[0], rec.Last()
			freed := false
			for _, f := range rec.Frames[1 : len(rec.Frames)-1] {
				if f != nil {
					c.bytes -= frameBytes(f)
					freed = true
				}
			}
			if freed {
				r.steps[i] = &nr
			}
		}
	}
}

// recordAt returns the record of timestep k on r's timeline, nil beyond
// its head.
func (c *Controller) recordAt(r *Run, k int) *StepRecord {
	for ; r != nil; r = r.Parent {
		if k >= r.ForkIndex {
			if i := k - r.ForkIndex; i < len(r.steps) {
				return r.steps[i]
			}
			return nil
		}
	}
	return nil
}

// owner returns the run on r's chain that recorded position (k, u) and holds
// its resume points.
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

// refill recomputes the evicted frames of timestep k of run r from the
// nearest resume point; the random streams make the replay exact.
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
			c.bytes += frameBytes(f)
		}
	}
	r.steps[i] = &nr
	return nil
}

// sampleAt returns a new sampler positioned at (k, u) of run r: a clone of the
// head when it is there, else of the nearest resume point before (k, u),
// stepped forward. Within one run the settings never change, so the replay
// is exact.
func (c *Controller) sampleAt(r *Run, k, u int) (Sampler, error) {
	o := owner(r, k, u)
	if h, err := o.sampler.Current(); err == nil && h.Index == k && h.Update == u {
		return o.sampler.Branch(), nil
	}
	best, found := [2]int{}, false
	for pos := range o.resume {
		if (pos[0] < k || pos[0] == k && pos[1] <= u) && (!found || pos[0] > best[0] || pos[0] == best[0] && pos[1] > best[1]) {
			best, found = pos, true
		}
	}
	if !found {
		return nil, fmt.Errorf("cannot rewind to step %d update %d: no resume point", k, u)
	}
	s := o.resume[best].Branch()
	for guard := 0; ; guard++ {
		f, err := s.Current()
		if err != nil {
			return nil, err
		}
		if f.Index == k && f.Update == u {
			return s, nil
		}
		if f.Index > k || f.Done || guard > 1<<20 {
			return nil, fmt.Errorf("cannot rewind to step %d update %d: replay passed it", k, u)
		}
		if _, err := s.StepUpdate(); err != nil {
			return nil, err
		}
	}
}

// atHead reports whether pane p's playhead is at its run's newest frame.
func (c *Controller) atHead(p *Pane) bool {
	h, err := p.Run.sampler.Current()
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
		return fmt.Errorf("no record for step %d", p.K)
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
		return fmt.Errorf("step %d update %d is not recorded and not the head", p.K, p.U)
	}
	if h, err := p.Run.sampler.Current(); err != nil || h.Done {
		return err
	}
	f, err := p.Run.sampler.StepUpdate()
	if err != nil {
		return err
	}
	c.record(p.Run, f, p.Run.sampler)
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
	for guard := 0; guard < 100000; guard++ {
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

// Change names a setting the user changed.
type Change struct {
	M    *int
	GHG  *bool
	CFG  *float32
	Rate *float32
}

func (ch Change) apply(s *Settings) {
	if ch.M != nil {
		s.M = *ch.M
	}
	if ch.GHG != nil {
		s.GHG = *ch.GHG
	}
	if ch.CFG != nil {
		s.CFG = *ch.CFG
	}
	if ch.Rate != nil {
		s.Rate = *ch.Rate
	}
}

func (ch Change) String() string {
	switch {
	case ch.M != nil:
		return fmt.Sprintf("M=%d", *ch.M)
	case ch.GHG != nil:
		if *ch.GHG {
			return "GHG on"
		}
		return "GHG off"
	case ch.CFG != nil:
		return fmt.Sprintf("CFG %.2g", *ch.CFG)
	case ch.Rate != nil:
		return fmt.Sprintf("rate %.2g", *ch.Rate)
	}
	return "?"
}

// ChangeSetting branches the active pane's run at its current timestep with
// the new setting: the new run re-does this timestep (and continues) with
// it, and the old run stays in the branch list. In compare mode the change
// applies to every pane except the setting the panes compare.
func (c *Controller) ChangeSetting(ch Change) error {
	if ch.M != nil && (*ch.M < 1 || *ch.M > 10000) {
		return fmt.Errorf("M must be in [1, 10000], not %d", *ch.M)
	}
	if ch.Rate != nil && !(*ch.Rate > 0 && *ch.Rate <= 1) {
		return fmt.Errorf("update rate must be in (0, 1], not %g", *ch.Rate)
	}
	ch.apply(&c.base)
	var errs []error
	for i, p := range c.panes {
		if len(c.panes) > 1 && (c.compare == "M" && ch.M != nil || c.compare == "GHG" && ch.GHG != nil) {
			continue
		}
		if len(c.panes) == 1 && i != c.active {
			continue
		}
		if err := c.branchPane(p, ch); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// branchPane starts a new run for pane p at the start of its current
// timestep with the change applied (a setting changed at update 0 applies to
// that timestep).
func (c *Controller) branchPane(p *Pane, ch Change) error {
	s := p.Run.Settings
	ch.apply(&s)
	k := p.K
	smp, err := c.sampleAt(p.Run, k, 0)
	if err != nil {
		return err
	}
	for _, set := range []func() error{
		func() error { return ifSet(ch.M != nil, func() error { return smp.SetM(s.M) }) },
		func() error { return ifSet(ch.GHG != nil, func() error { return smp.SetGHG(s.GHG) }) },
		func() error { return ifSet(ch.CFG != nil, func() error { return smp.SetCFG(s.CFG) }) },
		func() error { return ifSet(ch.Rate != nil, func() error { return smp.SetRate(s.Rate) }) },
	} {
		if err := set(); err != nil {
			return err
		}
	}
	if c.selected[0] >= 0 {
		smp.Observe(c.selected[0], c.selected[1])
	}
	f, err := smp.Current()
	if err != nil {
		return err
	}
	c.nextID++
	r := &Run{ID: c.nextID, Settings: s, Parent: p.Run, ForkIndex: k, sampler: smp, resume: map[[2]int]Sampler{}}
	c.record(r, f, smp)
	r.Label = fmt.Sprintf("%s @ step %d", ch, k)
	if p.Label != "" && p.Label != ch.String() {
		r.Label = p.Label + ", " + r.Label
	}
	c.runs = append(c.runs, r)
	p.Run, p.K, p.U = r, k, 0
	return nil
}

func ifSet(cond bool, f func() error) error {
	if cond {
		return f()
	}
	return nil
}

// SwitchRun shows run id in the active pane, at the same timestep if it has one.
func (c *Controller) SwitchRun(id int) error {
	for _, r := range c.runs {
		if r.ID == id {
			p := c.panes[c.active]
			p.Run = r
			tl := c.Timeline(r)
			p.K = max(0, min(p.K, len(tl)-1))
			p.U = max(0, min(p.U, len(tl[p.K].Frames)-1))
			return nil
		}
	}
	return fmt.Errorf("no run %d", id)
}

// SetCompare turns compare mode on with one pane per value of field ("M" or
// "GHG"), each branched from the active pane's current timestep, or off
// (field "") keeping the active pane.
func (c *Controller) SetCompare(field string, ms []int) error {
	cur := c.panes[c.active]
	if field == "" {
		cur.Label, cur.apply = "", nil
		c.panes, c.active, c.compare = []*Pane{cur}, 0, ""
		return nil
	}
	var chs []Change
	switch field {
	case "M":
		if len(ms) < 2 {
			return errors.New("compare M needs at least two values")
		}
		for _, m := range ms {
			m := m
			if m < 1 || m > 10000 {
				return fmt.Errorf("M must be in [1, 10000], not %d", m)
			}
			chs = append(chs, Change{M: &m})
		}
	case "GHG":
		on, off := true, false
		chs = []Change{{GHG: &on}, {GHG: &off}}
	default:
		return fmt.Errorf("cannot compare %q (M or GHG)", field)
	}
	var panes []*Pane
	for _, ch := range chs {
		ch := ch
		p := &Pane{Run: cur.Run, K: cur.K, U: 0, apply: ch.apply, Label: ch.String()}
		if err := c.branchPane(p, ch); err != nil {
			return err
		}
		panes = append(panes, p)
	}
	c.panes, c.active, c.compare = panes, 0, field
	return nil
}

// Compare returns the compared setting ("" when compare mode is off).
func (c *Controller) Compare() string { return c.compare }

// SetActive chooses the pane the controls act on.
func (c *Controller) SetActive(i int) {
	if i >= 0 && i < len(c.panes) {
		c.active = i
	}
}

// Select observes cell (i, j) in every pane's later frames (i < 0: none).
func (c *Controller) Select(i, j int) {
	if i < 0 || j < 0 || i >= c.cfg.GridH || j >= c.cfg.GridW {
		i, j = -1, -1
	}
	c.selected = [2]int{i, j}
	for _, r := range c.runs {
		r.sampler.Observe(i, j)
	}
}

// Selected is the observed cell, (-1, -1) when none.
func (c *Controller) Selected() (int, int) { return c.selected[0], c.selected[1] }

// BrushMode is what the damage brush does.
type BrushMode int

const (
	BrushErase   BrushMode = iota // set C_out and C_h to zero
	BrushPerturb                  // add N(0, 1) noise to C_out and C_h
)

// Damage applies one brush stroke (cells as (row, column), each with the
// brush radius around it) to the active pane at its playhead. The damaged
// state becomes a new run so Undo can return to the old one.
func (c *Controller) Damage(cells [][2]int, radius float64, mode BrushMode) error {
	if len(cells) == 0 {
		return nil
	}
	p := c.panes[c.active]
	f, err := c.Frame(p.Run, p.K, p.U)
	if err != nil || f == nil {
		return fmt.Errorf("damage: no frame at step %d update %d: %v", p.K, p.U, err)
	}
	smp, err := c.sampleAt(p.Run, p.K, p.U)
	if err != nil {
		return err
	}
	cur, err := smp.Current()
	if err != nil {
		return err
	}
	st := cur.State.Clone()
	c.strokes++
	rng := rand.New(rand.NewPCG(uint64(c.strokes), 0x9e3779b97f4a7c15))
	applyBrush(c.cfg, st, cells, radius, mode, rng)
	if err := smp.SetCells(st); err != nil {
		return err
	}
	c.nextID++
	r := &Run{ID: c.nextID, Settings: p.Run.Settings, Parent: p.Run, ForkIndex: p.K, ForkUpdate: p.U,
		sampler: smp, resume: map[[2]int]Sampler{}, Damage: true}
	r.Label = fmt.Sprintf("damage @ step %d.%d", p.K, p.U)
	nf, err := smp.Current()
	if err != nil {
		return err
	}
	if len(f.Reached) == st.H*st.W {
		// erased cells are no longer reached
		nf.Reached = make([]bool, len(f.Reached))
		for p, was := range f.Reached {
			cell := nf.State.Cell(0, p/st.W, p%st.W)[c.cfg.InChannels:]
			for _, x := range cell {
				if x != 0 {
					nf.Reached[p] = was
					break
				}
			}
		}
	}
	c.record(r, nf, nil)
	r.resume[[2]int{p.K, p.U}] = smp.Branch()
	c.runs = append(c.runs, r)
	c.undo = append(c.undo, undoRec{pane: c.active, prev: p.Run, k: p.K, u: p.U, damage: r})
	p.Run = r
	return nil
}

// applyBrush changes C_out and C_h of every cell of every batch element
// within radius of a stroke point.
func applyBrush(cfg engine.Config, st *engine.State, cells [][2]int, radius float64, mode BrushMode, rng *rand.Rand) {
	hit := make([]bool, st.H*st.W)
	r2 := radius * radius
	rr := int(math.Ceil(radius))
	for _, c := range cells {
		for i := c[0] - rr; i <= c[0]+rr; i++ {
			for j := c[1] - rr; j <= c[1]+rr; j++ {
				if i < 0 || j < 0 || i >= st.H || j >= st.W {
					continue
				}
				di, dj := float64(i-c[0]), float64(j-c[1])
				if di*di+dj*dj <= r2 {
					hit[i*st.W+j] = true
				}
			}
		}
	}
	for b := 0; b < st.B; b++ {
		for p, h := range hit {
			if !h {
				continue
			}
			cell := st.Cell(b, p/st.W, p%st.W)[cfg.InChannels:]
			for k := range cell {
				if mode == BrushErase {
					cell[k] = 0
				} else {
					cell[k] += float32(rng.NormFloat64())
				}
			}
		}
	}
}

// CanUndo reports whether there is a damage stroke to undo.
func (c *Controller) CanUndo() bool { return len(c.undo) > 0 }

// Undo removes the last damage stroke: its pane returns to the run and
// position before it.
func (c *Controller) Undo() error {
	if len(c.undo) == 0 {
		return errors.New("nothing to undo")
	}
	u := c.undo[len(c.undo)-1]
	c.undo = c.undo[:len(c.undo)-1]
	if u.pane < len(c.panes) {
		p := c.panes[u.pane]
		p.Run, p.K, p.U = u.prev, u.k, u.u
	}
	for i, r := range c.runs {
		if r == u.damage {
			c.runs = append(c.runs[:i:i], c.runs[i+1:]...)
			break
		}
	}
	return nil
}
