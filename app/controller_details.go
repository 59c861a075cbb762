package app

import (
	"errors"
)

// detailsAsked is what Details was asked for: the selected cell's
// attention and the seed influence.
type detailsAsked struct {
	cell      [2]int
	influence bool
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
		r.sampler.SetInfluence(on)
	}
}

// Influence reports whether the seed influence is measured.
func (c *Controller) Influence() bool { return c.influence }

// Details makes sure the frame under each pane's playhead carries what the
// window asks of it: the attention of the selected cell and the seed
// influence. Frames recorded before they were asked for (scrubbing back,
// selecting a cell) are recomputed from the timestep's start (sampleAt) with
// the same random streams, so they equal the recorded ones in every other
// value.
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
	wantInfl := c.influence && f.Influence == nil
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
	defer s.Close()
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
	put(start, f)
	for uu := start + 1; uu <= u && uu < len(nr.Frames); uu++ {
		if f, err = s.StepUpdate(); err != nil {
			return err
		}
		put(uu, f)
	}
	h.steps[k-h.ForkIndex] = &nr
	return nil
}
