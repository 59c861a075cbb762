package app

import (
	"fmt"

	"geca/internal/membudget"
)

// DefaultHistoryBytes is the history budget when the user sets none: 1 GiB,
// or half the process's memory limit (internal/membudget) when lower.
func DefaultHistoryBytes() int64 { return min(1<<30, membudget.Limit()/2) }

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

func (c *Controller) account(r *Run, b int64) {
	r.bytes += b
	c.bytes += b
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
