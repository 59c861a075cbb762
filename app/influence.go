package app

import (
	"math"
	"slices"

	"geca/engine"
	"geca/engine/sample"
)

// The seed influence (Frame.Influence, docs/viewer.md) is measured here, on
// top of sample.Stepper, so that a run in a worker measures it as a local
// one does. At update 0 of a timestep the run is forked and the fork's
// centre cell loses its C_out and C_h: the timestep without its seed. The
// twin does every cell update of the timestep alongside the run, and a fork
// continues the run's random streams, so it draws the same update masks
// from the same x_t. It costs a second update for every update.

// twin is the seedless copy of a run inside one timestep.
type twin struct {
	run sample.Stepper
	st  *engine.State // its grid at the run's position
}

// SetInfluence turns the measurement on or off. Switched on, it starts at
// the next update 0 (this one when the run is there).
func (s *stepper) SetInfluence(on bool) {
	s.influence = on
	if !on {
		s.dropTwin()
	}
}

// syncTwin keeps the twin in step with the run, which is now at frame f:
// it starts one at update 0 and drops one that is not in step.
func (s *stepper) syncTwin(f *sample.Frame) {
	if !s.influence || f.Done || s.run.Done() {
		s.dropTwin()
		return
	}
	if t := s.twin; t != nil && t.run.Index() == s.run.Index() && t.run.UpdatesDone() == s.run.UpdatesDone() {
		return
	}
	s.dropTwin()
	if s.run.UpdatesDone() != 0 || f.State == nil {
		return // switched on mid-timestep: from the next one
	}
	run, err := s.run.Fork()
	if err != nil {
		return
	}
	st := seedless(s.cfg, f.State)
	if run.SetState(st) != nil {
		run.Close()
		return
	}
	s.twin = &twin{run: run, st: st}
}

// stepTwin does the twin's cell update before the run's; at the end of
// the timestep (the run's next step is the diffusion step) the twin ends.
func (s *stepper) stepTwin() {
	t := s.twin
	if t == nil {
		return
	}
	if s.run.UpdatesDone() >= s.run.M() {
		s.dropTwin()
		return
	}
	f, err := t.run.StepUpdateCurrent()
	if err != nil {
		s.dropTwin()
		return
	}
	t.st = f.State
}

// twinInfluence is the influence of the run's grid st (nil without a twin).
func (s *stepper) twinInfluence(st *engine.State) []float32 {
	if s.twin == nil {
		return nil
	}
	return influence(s.cfg, st, s.twin.st)
}

func (s *stepper) dropTwin() {
	if s.twin != nil {
		s.twin.run.Close()
		s.twin = nil
	}
}

// fork is an independent copy of the twin (nil if the Stepper cannot fork).
func (t *twin) fork() *twin {
	run, err := t.run.Fork()
	if err != nil {
		return nil
	}
	return &twin{run: run, st: t.st}
}

// SetCells replaces the run's grids (the damage brush) and returns the
// frame it leads to. The twin gets the same damage: every cell the edit
// changed takes the edited values there too, so the influence keeps
// measuring the seed alone.
func (s *stepper) SetCells(st *engine.State) (*Frame, error) {
	before, err := s.head()
	if err != nil {
		return nil, err
	}
	if err := s.run.SetState(st); err != nil {
		return nil, err
	}
	if t := s.twin; t != nil {
		s.damageTwin(t, before.State, st)
	}
	return s.Current()
}

func (s *stepper) damageTwin(t *twin, before, st *engine.State) {
	if before == nil || len(before.Data) != len(st.Data) || len(t.st.Data) != len(st.Data) || before.C != st.C {
		s.dropTwin()
		return
	}
	tw := t.st.Clone()
	for p := 0; p < st.B*st.H*st.W; p++ {
		cell := st.Data[p*st.C : (p+1)*st.C]
		if !slices.Equal(cell, before.Data[p*st.C:(p+1)*st.C]) {
			copy(tw.Data[p*st.C:(p+1)*st.C], cell)
		}
	}
	if t.run.SetState(tw) != nil {
		s.dropTwin()
		return
	}
	t.st = tw
}

// influence is the per-cell L2 distance of the [C_out | C_h] channels of
// grid 0 of a and b (H·W values).
func influence(cfg engine.Config, a, b *engine.State) []float32 {
	if a == nil || b == nil || len(a.Data) != len(b.Data) || a.C != b.C || a.C < cfg.InChannels {
		return nil
	}
	n := a.H * a.W
	out := make([]float32, n)
	for p := 0; p < n; p++ {
		ca, cb := a.Data[p*a.C+cfg.InChannels:(p+1)*a.C], b.Data[p*a.C+cfg.InChannels:(p+1)*a.C]
		var s float64
		for k := range ca {
			d := float64(ca[k]) - float64(cb[k])
			s += d * d
		}
		out[p] = float32(math.Sqrt(s))
	}
	return out
}

// seedless returns st with the centre cell's C_out and C_h zeroed in every
// grid: the timestep as it would run without the seed cell.
func seedless(cfg engine.Config, st *engine.State) *engine.State {
	out := st.Clone()
	for b := 0; b < out.B; b++ {
		clear(out.Cell(b, out.H/2, out.W/2)[cfg.InChannels:])
	}
	return out
}
