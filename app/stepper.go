package app

import (
	"context"
	"fmt"

	"geca/engine"
	"geca/engine/sample"
)

// stepper is a run as the controller drives it: a sample.Stepper, local or
// in a worker, which owns the run's history (its snapshots and Rewind), and
// the little the app keeps beside it. That is the watched cell (a Fork
// forgets it, and the app's frames name it), the seed-influence twin
// (influence.go, measured the same way on every Stepper) and the frame at
// the current position (where the run is, without asking a worker).
type stepper struct {
	run       sample.Stepper
	cfg       engine.Config
	watch     [2]int // (-1, -1) when none
	influence bool
	twin      *twin  // in step with run inside the current timestep; nil when not
	last      *Frame // the frame at run's position; nil when not known
	closed    bool
}

// newStepper takes run over. Its frames always carry |update| (the reach
// and the plots are made from it).
func newStepper(cfg engine.Config, run sample.Stepper) (*stepper, error) {
	if err := run.SetMeasure(true); err != nil {
		run.Close()
		return nil, err
	}
	return &stepper{run: run, cfg: cfg, watch: [2]int{-1, -1}}, nil
}

// view is the one place a sample.Frame becomes the app's Frame: timesteps
// counted from the start, the noise level of the timestep, the watched
// cell, the final sample as x₀, and the seed influence when the twin is in
// step. It records the frame as the stepper's position.
func (s *stepper) view(f *sample.Frame) *Frame {
	out := &Frame{Index: f.Timesteps - 1 - f.TimestepIndex, T: f.T, Update: f.Update, M: f.M, State: f.State,
		Xt: f.Xt, X0: f.X0, Magnitude: f.Magnitude, Attn: f.Attn, AttnCell: s.watch, Done: f.Done,
		Sigma: s.run.Sigma(f.TimestepIndex)}
	if f.Done && f.XPrev != nil {
		out.X0 = f.XPrev // the final sample
		out.Sigma = 0
	}
	if len(out.Attn) == 0 {
		out.Attn = nil
	}
	if !f.Done {
		out.Influence = s.twinInfluence(f.State)
	}
	if p := s.last; p != nil && !p.Done && out.Update > 0 && p.Index == out.Index && p.Update == out.Update {
		// A fork's sampler does not keep what the update that led here
		// measured; the frame it was forked at has it (and a stroke does
		// not change it).
		if out.Magnitude == nil {
			out.Magnitude = p.Magnitude
		}
		if out.Attn == nil && p.AttnCell == out.AttnCell {
			out.Attn = p.Attn
		}
	}
	s.last = out
	return out
}

// Current returns the frame at the run's position (at update 0 the
// timestep is prepared).
func (s *stepper) Current() (*Frame, error) {
	f, err := s.run.Current()
	if err != nil {
		return nil, err
	}
	s.syncTwin(f)
	return s.view(f), nil
}

// head is the frame at the run's position: the last one made, or Current.
func (s *stepper) head() (*Frame, error) {
	if s.last != nil {
		return s.last, nil
	}
	return s.Current()
}

// StepUpdate does one cell update, or at the end of a timestep its
// diffusion step (the next timestep is then prepared), and returns the
// frame it leads to.
func (s *stepper) StepUpdate() (*Frame, error) {
	if s.run.Done() {
		return nil, sample.ErrDone
	}
	s.stepTwin()
	f, err := s.run.StepUpdateCurrent()
	if err != nil {
		s.dropTwin() // it went on without the run
		return nil, err
	}
	s.syncTwin(f)
	return s.view(f), nil
}

// Fork returns an independent stepper at the same position with the same
// watched cell and influence measurement (and twin).
func (s *stepper) Fork() (*stepper, error) {
	run, err := s.run.Fork()
	if err != nil {
		return nil, err
	}
	b, err := newStepper(s.cfg, run)
	if err != nil {
		return nil, err
	}
	b.influence, b.last = s.influence, s.last
	if s.watch[0] >= 0 {
		b.Observe(s.watch[0], s.watch[1])
	}
	if s.twin != nil {
		b.twin = s.twin.fork() // nil if it fails: measured again from the next timestep
	}
	return b, nil
}

// rewind moves the run back to the start of timestep k (counted from the
// start of the run, as the app's frames count). The Stepper restores its
// snapshot there, or replays from an earlier one: the same random streams,
// so the same bits.
func (s *stepper) rewind(k int) error {
	s.dropTwin()
	s.last = nil
	idx := s.run.Len() - 1 - k
	if idx < 0 || idx >= s.run.Len() {
		return fmt.Errorf("cannot rewind to step %d of %d", k+1, s.run.Len())
	}
	return s.run.Rewind(context.Background(), idx)
}

// set applies a setting change. At update 0 the timestep may be prepared
// again, so the twin is made again (by the next Current); later it takes
// the change too.
func (s *stepper) set(change func(sample.Stepper) error) error {
	if err := change(s.run); err != nil {
		return err
	}
	s.last = nil
	if s.twin != nil && (s.run.UpdatesDone() == 0 || change(s.twin.run) != nil) {
		s.dropTwin()
	}
	return nil
}

func (s *stepper) SetM(m int) error {
	return s.set(func(r sample.Stepper) error { return r.SetM(m) })
}
func (s *stepper) SetGHG(on bool) error {
	return s.set(func(r sample.Stepper) error { return r.SetGHG(on) })
}
func (s *stepper) SetCFG(v float32) error {
	return s.set(func(r sample.Stepper) error { return r.SetCFG(v) })
}
func (s *stepper) SetRate(v float32) error {
	return s.set(func(r sample.Stepper) error { return r.SetUpdateRate(v) })
}

// SetSettings gives the run the knobs of settings st that may change
// during a run (a value it already has changes nothing).
func (s *stepper) SetSettings(st Settings) error {
	for _, set := range []func() error{
		func() error { return s.SetM(st.M) },
		func() error { return s.SetGHG(st.GHG) },
		func() error { return s.SetCFG(st.CFG) },
		func() error { return s.SetRate(st.Rate) },
	} {
		if err := set(); err != nil {
			return err
		}
	}
	return nil
}

// Observe asks for the attention weights of cell (i, j) in later frames;
// i < 0 stops it.
func (s *stepper) Observe(i, j int) {
	if i < 0 && s.watch[0] < 0 || s.watch == [2]int{i, j} {
		return // as it is (a worker is not asked again)
	}
	if i < 0 {
		if s.run.UnwatchCell() == nil {
			s.watch = [2]int{-1, -1}
		}
		return
	}
	if s.run.WatchCell(0, i, j) == nil {
		s.watch = [2]int{i, j}
	}
}

// SnapshotBytes is the memory the run's snapshots hold.
func (s *stepper) SnapshotBytes() int64 { return s.run.SnapshotBytes() }

// Close releases the run and its twin (a worker's memory). A second Close
// does nothing.
func (s *stepper) Close() {
	if s.closed {
		return
	}
	s.closed = true
	s.dropTwin()
	s.run.Close()
}
