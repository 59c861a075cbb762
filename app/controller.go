package app

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"geca/engine"
	"geca/internal/membudget"
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

	sampler Sampler            // at the head of the run
	resume  map[[2]int]Sampler // clones at recorded positions, to rewind and branch
	steps   []*StepRecord      // records for timesteps >= ForkIndex
	bytes   int64              // memory of its frames and resume points (estimate)
	order   int                // when it was last shown (for the memory budget)
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

// CompareKind is the setting that compare mode varies across panes.
type CompareKind int

const (
	CompareOff CompareKind = iota
	CompareM
	CompareGHG
)

func (k CompareKind) String() string {
	switch k {
	case CompareM:
		return "M"
	case CompareGHG:
		return "GHG"
	}
	return "off"
}

// CompareMode says what compare mode shows: the setting that varies, its
// values, and where the panes branch from.
type CompareMode struct {
	Kind CompareKind
	Ms   []int // CompareM: one pane per value
	// FromStart branches every pane from the start of the run, on the same
	// initial noise; otherwise from the start of the current timestep.
	FromStart bool
}

// changes are the per-pane settings of the mode.
func (m CompareMode) changes() ([]Change, error) {
	switch m.Kind {
	case CompareM:
		if len(m.Ms) < 2 {
			return nil, errors.New("compare M needs at least two values")
		}
		var chs []Change
		for _, v := range m.Ms {
			if v < 1 || v > MaxM {
				return nil, fmt.Errorf("M must be in [1, %d], not %d", MaxM, v)
			}
			chs = append(chs, Change{M: &v})
		}
		return chs, nil
	case CompareGHG:
		on, off := true, false
		return []Change{{GHG: &on}, {GHG: &off}}, nil
	}
	return nil, fmt.Errorf("cannot compare %v (M or GHG)", m.Kind)
}

// MaxM is the largest number of cell updates per timestep the viewer runs.
const MaxM = 10000

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
	// MaxBytes bounds the memory of the recorded history (frames and resume
	// points); see evict for what gives way beyond it.
	MaxBytes int64
	bytes    int64
	Playing  bool
	compare  CompareMode
	// influence: samplers measure the seed influence (doubles an update).
	influence   bool
	noInfluence bool // the engine gives none (a worker): do not ask again
	shown       int  // counter for Run.order
	notes       []string
	overBudget  bool // the last eviction could not get under MaxBytes
	// redone holds the frames Details recomputed and what they were
	// recomputed for: what they still lack (the influence inside a damaged
	// timestep) cannot be had, so they are not redone for the same asks.
	redone map[*Frame]detailsAsked
}

// detailsAsked is what Details was asked for: the selected cell's
// attention and the seed influence.
type detailsAsked struct {
	cell      [2]int
	influence bool
}

type undoRec struct {
	pane   int
	prev   *Run
	k, u   int
	damage *Run
}

// DefaultHistoryBytes is the history budget when the user sets none: 1 GiB,
// or half the process's memory limit (internal/membudget) when lower.
func DefaultHistoryBytes() int64 { return min(1<<30, membudget.Limit()/2) }

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

// Bytes is the memory the recorded history holds (an estimate).
func (c *Controller) Bytes() int64 { return c.bytes }

// OverBudget reports whether the history could not be brought under MaxBytes.
func (c *Controller) OverBudget() bool { return c.overBudget }

// TakeNotes returns the messages for the user since the last call (runs
// dropped to keep within the memory budget, ...).
func (c *Controller) TakeNotes() []string {
	n := c.notes
	c.notes = nil
	return n
}

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

// newRun starts a fresh sampler (position (0, 0)).
func (c *Controller) newRun(s Settings, parent *Run) (*Run, error) {
	smp, err := c.eng.NewSampler(s)
	if err != nil {
		return nil, err
	}
	c.prepare(smp)
	f, err := smp.Current()
	if err != nil {
		return nil, err
	}
	c.nextID++
	r := &Run{ID: c.nextID, Settings: s, Parent: parent, sampler: smp, resume: map[[2]int]Sampler{}, Health: newHealth()}
	c.record(r, f, smp)
	return r, nil
}

// prepare gives a sampler the controller's observation settings.
func (c *Controller) prepare(s Sampler) {
	s.SetInfluence(c.influence && !c.noInfluence)
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
	if f.Update == 0 && s != nil {
		r.resume[[2]int{f.Index, 0}] = s.Branch()
		c.account(r, resumeBytes(f))
	}
	c.evict()
}

func (c *Controller) account(r *Run, b int64) {
	r.bytes += b
	c.bytes += b
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

func frameBytes(f *Frame) int64 {
	n := len(f.Xt) + len(f.X0) + len(f.Magnitude) + len(f.Attn) + len(f.Influence) + len(f.Reached)/4
	if f.State != nil {
		n += len(f.State.Data)
	}
	return int64(4*n + 200)
}

// resumeBytes estimates a resume point made at frame f: the sampler's grid
// and latent, and the copies it keeps to prepare the timestep again (twice
// that with the seedless twin).
func resumeBytes(f *Frame) int64 {
	n := len(f.Xt)
	if f.State != nil {
		n += len(f.State.Data)
	}
	b := int64(8*n + 2048)
	if f.Influence != nil {
		b *= 2
	}
	return b
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

// touch marks the runs the panes show (and their ancestors) as the most
// recently shown, so the memory budget drops others first.
func (c *Controller) touch() {
	c.shown++
	for _, p := range c.panes {
		for r := p.Run; r != nil; r = r.Parent {
			r.order = c.shown
		}
	}
}

// evict keeps the recorded history within MaxBytes. In order: the inner
// frames (not the first and last) of complete timesteps no pane is in, which
// are recomputed exactly when revisited; then whole runs that no pane shows
// and no other run grows from, least recently shown first (the user is told);
// then resume points of shown runs, keeping every eighth timestep (scrubbing
// back replays from the one before).
func (c *Controller) evict() {
	if c.MaxBytes <= 0 || c.bytes <= c.MaxBytes {
		c.overBudget = false
		return
	}
	target := c.MaxBytes * 3 / 4
	playhead := map[*StepRecord]bool{}
	for _, p := range c.panes {
		if rec := c.recordAt(p.Run, p.K); rec != nil {
			playhead[rec] = true
		}
	}
	for _, r := range c.runs {
		for i, rec := range r.steps {
			if c.bytes <= target {
				return
			}
			if !rec.Complete() || i == len(r.steps)-1 || len(rec.Frames) < 3 || playhead[rec] {
				continue
			}
			nr := *rec
			nr.Frames = make([]*Frame, len(rec.Frames))
			nr.Frames[0], nr.Frames[len(rec.Frames)-1] = rec.Frames[0], rec.Last()
			freed := false
			first := 1
			if i == 0 && r.ForkUpdate > 0 {
				first = r.ForkUpdate + 1 // frames before a damage are the parent's
			}
			for u, f := range rec.Frames[1 : len(rec.Frames)-1] {
				if f != nil && u+1 >= first {
					c.account(r, -frameBytes(f))
					freed = true
				} else if f != nil {
					nr.Frames[u+1] = f
				}
			}
			if freed {
				r.steps[i] = &nr
			}
		}
	}
	for c.bytes > target {
		victim := c.droppable()
		if victim == nil {
			break
		}
		c.dropRun(victim)
		c.notes = append(c.notes, fmt.Sprintf("dropped branch #%d (%s) to stay within the memory budget of %s",
			victim.ID, victim.Label, membudget.Format(c.MaxBytes)))
	}
	for _, r := range c.runs {
		for pos, s := range r.resume {
			if c.bytes <= target {
				break
			}
			if pos[0]%8 == 0 || pos[0] == r.ForkIndex || s == nil {
				continue
			}
			delete(r.resume, pos)
			if rec := c.recordAt(r, pos[0]); rec != nil && rec.Frames[0] != nil {
				c.account(r, -resumeBytes(rec.Frames[0]))
			}
		}
	}
	over := c.bytes > c.MaxBytes
	if over && !c.overBudget {
		c.notes = append(c.notes, fmt.Sprintf("the history needs %s, over the memory budget of %s: raise the budget or reset",
			membudget.Format(c.bytes), membudget.Format(c.MaxBytes)))
	}
	c.overBudget = over
}

// droppable is the least recently shown run that no pane shows and no
// other run branches from.
func (c *Controller) droppable() *Run {
	keep := map[*Run]bool{}
	for _, p := range c.panes {
		for r := p.Run; r != nil; r = r.Parent {
			keep[r] = true
		}
	}
	for _, r := range c.runs {
		if r.Parent != nil {
			keep[r.Parent] = true
		}
	}
	var best *Run
	for _, r := range c.runs {
		if !keep[r] && (best == nil || r.order < best.order) {
			best = r
		}
	}
	return best
}

func (c *Controller) dropRun(r *Run) {
	for i, x := range c.runs {
		if x == r {
			c.runs = append(c.runs[:i:i], c.runs[i+1:]...)
			break
		}
	}
	c.bytes -= r.bytes
	r.bytes = 0
	var undo []undoRec
	for _, u := range c.undo {
		if u.prev != r && u.damage != r {
			undo = append(undo, u)
		}
	}
	c.undo = undo
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
			c.account(r, frameBytes(f))
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
		s := o.sampler.Branch()
		c.prepare(s)
		return s, nil
	}
	best, found := [2]int{}, false
	for pos := range o.resume {
		if (pos[0] < k || pos[0] == k && pos[1] <= u) && (!found || pos[0] > best[0] || pos[0] == best[0] && pos[1] > best[1]) {
			best, found = pos, true
		}
	}
	if !found {
		return nil, fmt.Errorf("cannot rewind to step %d, update %d: no resume point", k+1, u)
	}
	s := o.resume[best].Branch()
	c.prepare(s)
	for guard := 0; ; guard++ {
		f, err := s.Current()
		if err != nil {
			return nil, err
		}
		if f.Index == k && f.Update == u {
			return s, nil
		}
		if f.Index > k || f.Done || guard > 1<<20 {
			return nil, fmt.Errorf("cannot rewind to step %d, update %d: replay passed it", k+1, u)
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

// kind is the compare kind the change belongs to.
func (ch Change) kind() CompareKind {
	switch {
	case ch.M != nil:
		return CompareM
	case ch.GHG != nil:
		return CompareGHG
	}
	return CompareOff
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
		if *ch.CFG <= 1 {
			return "CFG off"
		}
		return fmt.Sprintf("CFG %g", *ch.CFG)
	case ch.Rate != nil:
		return fmt.Sprintf("rate %g", *ch.Rate)
	}
	return "?"
}

// StepLabel writes a position the way the window counts everywhere:
// timesteps from 1, updates from 0 (update 0 is the start of a timestep).
func StepLabel(k, u int) string {
	if u == 0 {
		return fmt.Sprintf("step %d", k+1)
	}
	return fmt.Sprintf("step %d, update %d", k+1, u)
}

// ChangeSetting branches the active pane's run at its current timestep with
// the new setting: the new run re-does this timestep (and continues) with
// it, and the old run stays in the branch list. In compare mode the change
// applies to every pane, except a change of the setting the panes compare.
func (c *Controller) ChangeSetting(ch Change) error {
	s := c.base
	ch.apply(&s)
	if err := checkSettings(s); err != nil {
		return err
	}
	multi := len(c.panes) > 1
	if multi && ch.kind() == c.compare.Kind {
		return fmt.Errorf("the panes compare %v: change it in the Compare field", c.compare.Kind)
	}
	c.base = s
	var errs []error
	for i, p := range c.panes {
		if !multi && i != c.active {
			continue
		}
		if err := c.branchPane(p, ch); err != nil {
			errs = append(errs, err)
		}
	}
	c.touch()
	return errors.Join(errs...)
}

// branchPane shows in pane p a run that continues p's run from the start of
// timestep k with the change applied: an earlier branch made the same way
// when there is one, else a new run.
func (c *Controller) branchPane(p *Pane, ch Change) error {
	s := p.Run.Settings
	ch.apply(&s)
	k := p.K
	for _, r := range c.runs {
		if r.Parent == p.Run && r.ForkIndex == k && r.ForkUpdate == 0 && !r.Damage && sameSettings(r.Settings, s) {
			p.Run, p.U = r, 0
			p.Label = c.paneLabel(p)
			return nil
		}
	}
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
	f, err := smp.Current()
	if err != nil {
		return err
	}
	c.nextID++
	r := &Run{ID: c.nextID, Settings: s, Parent: p.Run, ForkIndex: k, sampler: smp, resume: map[[2]int]Sampler{}, Health: newHealth()}
	c.record(r, f, smp)
	r.Label = fmt.Sprintf("%s @ %s", ch, StepLabel(k, 0))
	c.runs = append(c.runs, r)
	p.Run, p.K, p.U = r, k, 0
	p.Label = c.paneLabel(p)
	return nil
}

// paneLabel describes the run pane p shows: in compare mode the compared
// setting's value of that run, else "".
func (c *Controller) paneLabel(p *Pane) string {
	if len(c.panes) <= 1 && p.value == nil {
		return ""
	}
	s := p.Run.Settings
	switch c.compare.Kind {
	case CompareM:
		return fmt.Sprintf("M=%d", s.M)
	case CompareGHG:
		return map[bool]string{true: "GHG on", false: "GHG off"}[s.GHG]
	}
	return ""
}

func ifSet(cond bool, f func() error) error {
	if cond {
		return f()
	}
	return nil
}

// SwitchRun shows run id in the active pane. Alone, the pane stays at the
// same position when the run has it; in compare mode it joins the other
// panes' position (computing up to it when the run has not got there), so
// the panes stay in lock-step, and its label describes the run it shows.
func (c *Controller) SwitchRun(id int) error {
	var run *Run
	for _, r := range c.runs {
		if r.ID == id {
			run = r
		}
	}
	if run == nil {
		return fmt.Errorf("no run %d", id)
	}
	p := c.panes[c.active]
	k, u := p.K, p.U
	for i, q := range c.panes {
		if i != c.active {
			k, u = q.K, q.U
			break
		}
	}
	p.Run = run
	c.touch()
	if len(c.panes) == 1 {
		tl := c.Timeline(run)
		p.K = max(0, min(p.K, len(tl)-1))
		p.U = max(0, min(p.U, len(tl[p.K].Frames)-1))
		_, err := c.Frame(run, p.K, p.U)
		return err
	}
	p.value = nil
	p.Label = c.paneLabel(p)
	return c.moveTo(p, k, u)
}

// moveTo puts pane p at (k, u) of its run, or as near as the run goes: the
// last update of timestep k when the run has fewer, computing forward when
// the run has not got there yet.
func (c *Controller) moveTo(p *Pane, k, u int) error {
	tl := c.Timeline(p.Run)
	if k < len(tl) && (u < len(tl[k].Frames) || tl[k].Complete()) {
		p.K, p.U = k, min(u, len(tl[k].Frames)-1)
		_, err := c.Frame(p.Run, p.K, p.U)
		return err
	}
	h, err := p.Run.sampler.Current()
	if err != nil {
		return err
	}
	p.K, p.U = h.Index, h.Update
	for guard := 0; guard < 1<<22; guard++ {
		rec := c.recordAt(p.Run, p.K)
		if p.K > k || p.K == k && (p.U >= u || p.U >= rec.M) || c.Done(c.paneIndex(p)) {
			return nil
		}
		if err := c.advance(p); err != nil {
			return err
		}
	}
	return errors.New("could not reach the other panes' position")
}

func (c *Controller) paneIndex(p *Pane) int {
	for i, q := range c.panes {
		if q == p {
			return i
		}
	}
	return 0
}

// SetCompare turns compare mode on with one pane per value of the mode,
// each branched from the active pane's run (at the start of the current
// timestep, or of the run with FromStart), or off, keeping the active pane.
func (c *Controller) SetCompare(mode CompareMode) error {
	cur := c.panes[c.active]
	if mode.Kind == CompareOff {
		cur.Label, cur.value = "", nil
		c.panes, c.active, c.compare = []*Pane{cur}, 0, CompareMode{}
		return nil
	}
	chs, err := mode.changes()
	if err != nil {
		return err
	}
	k := cur.K
	if mode.FromStart {
		k = 0
	}
	prev := c.compare
	c.compare = mode
	var panes []*Pane
	for _, ch := range chs {
		p := &Pane{Run: cur.Run, K: k, U: 0, value: &ch}
		if err := c.branchPane(p, ch); err != nil {
			c.compare = prev
			return err
		}
		panes = append(panes, p)
	}
	c.panes, c.active = panes, 0
	for _, p := range panes {
		p.Label = c.paneLabel(p)
	}
	c.touch()
	return nil
}

// Compare returns the compare mode (Kind CompareOff when it is off).
func (c *Controller) Compare() CompareMode { return c.compare }

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

// SetInfluence turns the seed-influence measurement on or off for every
// run's later frames; frames shown without it are recomputed by Details.
func (c *Controller) SetInfluence(on bool) {
	c.influence = on
	for _, r := range c.runs {
		r.sampler.SetInfluence(on && !c.noInfluence)
	}
}

// Influence reports whether the seed influence is measured, and whether the
// engine can measure it at all.
func (c *Controller) Influence() (on, available bool) { return c.influence, !c.noInfluence }

// Details makes sure the frame under each pane's playhead carries what the
// window asks of it: the attention of the selected cell and the seed
// influence. Frames recorded before they were asked for (scrubbing back,
// selecting a cell) are recomputed from the timestep's resume point with the
// same random streams, so they equal the recorded ones in every other value.
func (c *Controller) Details() error {
	var errs []error
	for _, p := range c.panes {
		f, err := c.Frame(p.Run, p.K, p.U)
		if err != nil || f == nil {
			errs = append(errs, err)
			continue
		}
		if c.needsDetails(f) {
			errs = append(errs, c.redo(p))
		}
	}
	return errors.Join(errs...)
}

func (c *Controller) needsDetails(f *Frame) bool {
	if f.Done || c.redone[f] == (detailsAsked{c.selected, c.influence}) {
		return false
	}
	wantAttn := c.selected[0] >= 0 && f.Update > 0 && (f.Attn == nil || f.AttnCell != c.selected)
	wantInfl := c.influence && !c.noInfluence && f.Influence == nil
	return wantAttn || wantInfl
}

// redo recomputes the frames of pane p's timestep up to its playhead with
// the attention and influence asked for, replacing them in the record.
func (c *Controller) redo(p *Pane) error {
	k, u := p.K, p.U
	o := owner(p.Run, k, u)
	start := 0
	if k == o.ForkIndex {
		start = o.ForkUpdate
	}
	s, err := c.sampleAt(p.Run, k, start)
	if err != nil {
		return err
	}
	h := holder(p.Run, k)
	if h == nil {
		return nil
	}
	old := h.steps[k-h.ForkIndex]
	nr := *old
	nr.Frames = append([]*Frame(nil), old.Frames...)
	nr.Spread = append([]float32(nil), old.Spread...)
	if c.redone == nil || len(c.redone) > 4096 {
		c.redone = map[*Frame]detailsAsked{}
	}
	put := func(uu int, f *Frame) {
		c.redone[f] = detailsAsked{c.selected, c.influence}
		if of := nr.Frames[uu]; of != nil {
			f.Reached = of.Reached
			c.account(h, frameBytes(f)-frameBytes(of))
		} else {
			c.account(h, frameBytes(f))
		}
		nr.Frames[uu] = f
		if uu < len(nr.Spread) {
			nr.Spread[uu] = frameStats(c.cfg, f).spread
		}
	}
	f, err := s.Current()
	if err != nil {
		return err
	}
	if start == 0 || nr.Frames[start] == nil {
		put(start, f)
	}
	for uu := start + 1; uu <= u && uu < len(nr.Frames); uu++ {
		if f, err = s.StepUpdate(); err != nil {
			return err
		}
		put(uu, f)
	}
	h.steps[k-h.ForkIndex] = &nr
	if c.influence && f.Influence == nil && !f.Done && start == 0 {
		c.noInfluence = true // the engine does not measure it
	}
	return nil
}

// BrushMode is what the damage brush does.
type BrushMode int

const (
	BrushErase   BrushMode = iota // set C_out and C_h to zero
	BrushPerturb                  // add N(0, 1) noise to C_out and C_h
	// BrushBlank blanks the image under the brush: the cells forget
	// (C_h = 0, v = 0) and their ε̂ becomes x_t/σ, which makes the
	// predicted x₀ there exactly 0 (mid grey) until they regrow.
	BrushBlank
)

func (m BrushMode) String() string {
	switch m {
	case BrushPerturb:
		return "perturb"
	case BrushBlank:
		return "blank the image"
	}
	return "erase"
}

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
		return fmt.Errorf("damage: no frame at %s: %v", StepLabel(p.K, p.U), err)
	}
	if f.Done {
		return ErrFinished
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
	applyBrush(c.cfg, st, cells, radius, mode, f.Sigma, rng)
	if err := smp.SetCells(st); err != nil {
		return err
	}
	c.nextID++
	r := &Run{ID: c.nextID, Settings: p.Run.Settings, Parent: p.Run, ForkIndex: p.K, ForkUpdate: p.U,
		sampler: smp, resume: map[[2]int]Sampler{}, Damage: true, Health: p.Run.Health}
	r.Label = "damage @ " + StepLabel(p.K, p.U)
	if p.U == 0 {
		r.Label = fmt.Sprintf("damage @ step %d, update 0", p.K+1)
	}
	nf, err := smp.Current()
	if err != nil {
		return err
	}
	if len(f.Reached) == st.H*st.W {
		// erased cells are no longer reached
		nf.Reached = make([]bool, len(f.Reached))
		for q, was := range f.Reached {
			cell := nf.State.Cell(0, q/st.W, q%st.W)[c.cfg.InChannels:]
			for _, x := range cell {
				if x != 0 {
					nf.Reached[q] = was
					break
				}
			}
		}
	}
	c.record(r, nf, nil)
	r.resume[[2]int{p.K, p.U}] = smp.Branch()
	c.account(r, resumeBytes(nf))
	c.runs = append(c.runs, r)
	c.undo = append(c.undo, undoRec{pane: c.active, prev: p.Run, k: p.K, u: p.U, damage: r})
	p.Run = r
	if len(c.panes) > 1 {
		p.Label = c.paneLabel(p)
	}
	c.touch()
	return nil
}

// StrokeCells returns the cells a brush drag passes through from a to b
// (both included), one per step along the longer axis, so a quick drag
// leaves a continuous line rather than separate dots.
func StrokeCells(a, b [2]int) [][2]int {
	di, dj := b[0]-a[0], b[1]-a[1]
	n := max(abs(di), abs(dj))
	out := make([][2]int, 0, n+1)
	for s := 0; s <= n; s++ {
		t := 0.0
		if n > 0 {
			t = float64(s) / float64(n)
		}
		c := [2]int{a[0] + int(math.Round(t*float64(di))), a[1] + int(math.Round(t*float64(dj)))}
		if len(out) == 0 || out[len(out)-1] != c {
			out = append(out, c)
		}
	}
	return out
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// applyBrush changes C_out and C_h of every cell of every batch element
// within radius of a stroke point; sigma is the noise level of x_t (for
// BrushBlank).
func applyBrush(cfg engine.Config, st *engine.State, cells [][2]int, radius float64, mode BrushMode, sigma float64, rng *rand.Rand) {
	hit := make([]bool, st.H*st.W)
	// a cell is hit when its centre is within the radius of a stroke
	// point; at least the stroke point itself
	r2 := max(radius*radius, 0.25)
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
			full := st.Cell(b, p/st.W, p%st.W)
			cell := full[cfg.InChannels:]
			for k := range cell {
				switch mode {
				case BrushPerturb:
					cell[k] += float32(rng.NormFloat64())
				default:
					cell[k] = 0
				}
			}
			if mode == BrushBlank && sigma > 0 {
				for c := 0; c < cfg.InChannels; c++ {
					cell[c] = float32(float64(full[c]) / sigma) // x₀ = (x_t − σ ε̂)/√ᾱ = 0
				}
			}
		}
	}
}

// CanUndo reports whether there is a damage stroke to undo.
func (c *Controller) CanUndo() bool { return len(c.undo) > 0 }

// ErrFinished is Damage's answer on the final sample: there is no update
// left to regrow from (a remark for the status line).
var ErrFinished = errors.New("the run is finished: go back a step (←) to damage it and watch it regrow")

// ErrNothingToUndo is Undo's answer with no stroke to undo: a remark for the
// status line, not an error banner.
var ErrNothingToUndo = errors.New("nothing to undo")

// Undo removes the last damage stroke: its pane returns to the run and
// position before it.
func (c *Controller) Undo() error {
	if len(c.undo) == 0 {
		return ErrNothingToUndo
	}
	u := c.undo[len(c.undo)-1]
	c.undo = c.undo[:len(c.undo)-1]
	if u.pane < len(c.panes) {
		p := c.panes[u.pane]
		p.Run, p.K, p.U = u.prev, u.k, u.u
		if len(c.panes) > 1 {
			p.Label = c.paneLabel(p)
		}
	}
	for i, r := range c.runs {
		if r == u.damage {
			c.runs = append(c.runs[:i:i], c.runs[i+1:]...)
			c.bytes -= r.bytes
			break
		}
	}
	return nil
}
