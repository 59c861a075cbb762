package app

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"geca/engine"
)

type undoRec struct {
	pane   int
	prev   *Run
	k, u   int
	damage *Run
}

// BrushMode is what the damage brush does.
type BrushMode int

const (
	BrushErase   BrushMode = iota // set C_out and C_h to zero
	BrushPerturb                  // add N(0, 1) noise to C_out and C_h
	// BrushBlank blanks the image under the brush: the cells forget
	// (C_h = 0, v = 0) and their ε̂ becomes x_t/σ (their v̂ √ᾱ·x_t/σ in a
	// v model), which makes the predicted x₀ there exactly 0 (mid grey)
	// until they regrow.
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
	cur, err := smp.head()
	if err != nil {
		smp.Close()
		return err
	}
	st := cur.State.Clone()
	c.strokes++
	rng := rand.New(rand.NewPCG(uint64(c.strokes), 0x9e3779b97f4a7c15))
	applyBrush(c.cfg, st, cells, radius, mode, f.Sigma, rng)
	nf, err := smp.SetCells(st)
	if err != nil {
		smp.Close()
		return err
	}
	c.nextID++
	r := &Run{ID: c.nextID, Settings: p.Run.Settings, Parent: p.Run, ForkIndex: p.K, ForkUpdate: p.U,
		sampler: smp, edit: st, Damage: true, Health: p.Run.Health}
	r.Label = "damage @ " + StepLabel(p.K, p.U)
	if p.U == 0 {
		r.Label = fmt.Sprintf("damage @ step %d, update 0", p.K+1)
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
	c.record(r, nf)
	c.account(r, stateBytes(st))
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
	// the blank brush's output per unit of x_t, which makes x̂0 = 0:
	// x̂0 = (x_t − σ·ε̂)/√ᾱ = 0 for ε̂ = x_t/σ; for a v model
	// x̂0 = √ᾱ·x_t − σ·v̂ = 0 for v̂ = √ᾱ·x_t/σ (docs/model.md §6.5)
	blank := 1 / sigma
	if cfg.Prediction == engine.PredictV {
		blank = math.Sqrt(max(1-sigma*sigma, 0)) / sigma
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
					cell[c] = float32(float64(full[c]) * blank)
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
			c.frames -= r.bytes
			break
		}
	}
	c.release(u.damage)
	return nil
}
