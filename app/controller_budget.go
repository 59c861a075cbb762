package app

import (
	"fmt"
	"slices"

	"geca/engine"
	"geca/internal/membudget"
)

// DefaultHistoryBytes is the history budget when the user sets none: 1 GiB,
// or half the process's memory limit (internal/membudget) when lower.
func DefaultHistoryBytes() int64 { return min(1<<30, membudget.Limit()/2) }

// Bytes is the memory the recorded history holds (an estimate): the
// snapshots of the runs, as each run reports them, and the frames the
// controller keeps. A branch's snapshots from before its fork are its
// parent's (a fork shares them), so the sum may count them twice: it errs
// on the side of the budget.
func (c *Controller) Bytes() int64 { return c.frames + c.snapshotBytes() }

// snapshotBytes is the memory of the runs' snapshots.
func (c *Controller) snapshotBytes() int64 {
	var n int64
	for _, r := range c.runs {
		n += r.sampler.SnapshotBytes()
	}
	return n
}

// snapshotShare is the memory a new run may keep snapshots in: an eighth
// of the budget (the frames on screen and the other runs need the rest).
// Beyond it the run keeps every other snapshot, repeatedly, and a rewind
// replays from the one before (sample.Options.SnapshotBytes); a branch
// keeps the share of the run it forks. Without a budget, the sampler's
// default.
func (c *Controller) snapshotShare() int64 {
	if c.MaxBytes <= 0 {
		return 0
	}
	return max(c.MaxBytes/8, 1)
}

// OverBudget reports whether the history could not be brought under MaxBytes.
func (c *Controller) OverBudget() bool { return c.overBudget }

// TakeNotes returns the messages for the user since the last call (runs
// dropped to keep within the memory budget, ...).
func (c *Controller) TakeNotes() []string {
	n := c.notes
	c.notes = nil
	return n
}

// account adds b bytes of frames to run r.
func (c *Controller) account(r *Run, b int64) {
	r.bytes += b
	c.frames += b
}

func frameBytes(f *Frame) int64 {
	n := len(f.Xt) + len(f.X0) + len(f.Magnitude) + len(f.Attn) + len(f.Influence) + len(f.Reached)/4
	if f.State != nil {
		n += len(f.State.Data)
	}
	return int64(4*n + 200)
}

func stateBytes(st *engine.State) int64 { return int64(4*len(st.Data) + 100) }

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

// evict keeps the recorded history within MaxBytes. The runs keep their
// snapshots within their share (snapshotShare); what gives way here is, in
// order: the inner frames (not the first and last) of complete timesteps no
// pane is in, which are recomputed exactly when revisited; then whole runs
// that no pane shows and no other run grows from, least recently shown
// first (the user is told).
func (c *Controller) evict() {
	if c.MaxBytes <= 0 {
		c.overBudget = false
		return
	}
	used := c.Bytes()
	if used <= c.MaxBytes {
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
			if used <= target {
				c.overBudget = false
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
					used -= frameBytes(f)
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
	for used > target {
		victim := c.droppable()
		if victim == nil {
			break
		}
		used -= victim.bytes + victim.sampler.SnapshotBytes()
		c.dropRun(victim)
		c.notes = append(c.notes, fmt.Sprintf("dropped branch #%d (%s) to stay within the memory budget of %s",
			victim.ID, victim.Label, membudget.Format(c.MaxBytes)))
	}
	over := used > c.MaxBytes
	if over && !c.overBudget {
		c.notes = append(c.notes, fmt.Sprintf("the history needs %s, over the memory budget of %s: raise the budget or reset",
			membudget.Format(used), membudget.Format(c.MaxBytes)))
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
	c.frames -= r.bytes
	r.bytes = 0
	c.release(r)
	var undo []undoRec
	for _, u := range c.undo {
		if u.prev != r && u.damage != r {
			undo = append(undo, u)
		}
	}
	c.undo = undo
}

// grownFrom reports whether a run in the list grows from run r.
func (c *Controller) grownFrom(r *Run) bool {
	for _, x := range c.runs {
		for p := x.Parent; p != nil; p = p.Parent {
			if p == r {
				return true
			}
		}
	}
	return false
}

// release closes the sampler of run r, gone from the list, unless a run in
// the list grows from it; then those of its ancestors that left the list
// before it (undone strokes) and that nothing needs any more.
func (c *Controller) release(r *Run) {
	for ; r != nil && !slices.Contains(c.runs, r) && !c.grownFrom(r); r = r.Parent {
		r.sampler.Close()
	}
}

// Close releases every run's sampler (a worker's memory); the controller
// is not used afterwards.
func (c *Controller) Close() {
	for _, r := range c.runs {
		for x := r; x != nil; x = x.Parent {
			x.sampler.Close()
		}
	}
}
