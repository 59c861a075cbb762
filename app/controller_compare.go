package app

import (
	"errors"
	"fmt"
)

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
	// all of s, as origin makes the run again (the values p's run has
	// already change nothing)
	if err := smp.SetSettings(s); err != nil {
		smp.Close()
		return err
	}
	f, err := smp.Current()
	if err != nil {
		smp.Close()
		return err
	}
	c.nextID++
	r := &Run{ID: c.nextID, Settings: s, Parent: p.Run, ForkIndex: k, sampler: smp, Health: newHealth()}
	c.record(r, f)
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
	h, err := p.Run.sampler.head()
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
