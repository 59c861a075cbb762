package sample

import (
	"context"

	"geca/engine"
)

// Stepper is a sampling run that its caller steps: the local Sampler, and a
// run in a worker process (engine/remote), which the command line and the
// viewer drive the same way through this interface (Run, by contrast, runs a
// sample to its end in one call). A Stepper owns its history:
// it keeps snapshots of the starts of timesteps within the budget of
// Options.SnapshotBytes (SnapshotBytes says how much they hold), and Rewind
// goes back to any earlier timestep from them, replaying what it must.
type Stepper interface {
	// Len is the number of timesteps of the (respaced) schedule, N the
	// number of samples; DDIM reports DDIM steps.
	Len() int
	N() int
	DDIM() bool
	// TimestepOf is the original timestep of respaced index i, and Sigma
	// √(1 − ᾱ) there, the noise level of x_t (−1 and 0 outside).
	TimestepOf(i int) int
	Sigma(i int) float64

	// Index is the current timestep's respaced index (counting down; −1
	// once done), Timestep its original timestep, UpdatesDone the cell
	// updates done in it; Err is the run's sticky error.
	Index() int
	Timestep() int
	UpdatesDone() int
	Done() bool
	Err() error

	// The settings. A change at update 0 of a timestep applies to it (the
	// timestep is prepared again), later from the next timestep on.
	M() int
	GHG() bool
	CFG() float32
	UpdateRate() float32
	SetM(m int) error
	SetUpdateRate(r float32) error
	SetCFG(scale float32) error
	SetGHG(on bool) error

	// What the frames carry: SetObserver receives a frame after every
	// timestep (and every cell update with cellFrames); SetMeasure makes
	// Current carry |update|; WatchCell adds a cell's attention weights.
	SetObserver(fn func(*Frame), cellFrames bool)
	SetMeasure(on bool) error
	WatchCell(b, i, j int) error
	UnwatchCell() error

	// Stepping. StepUpdate does one cell update, or at the end of a
	// timestep its diffusion step; StepUpdateCurrent is StepUpdate
	// followed by Current.
	StepUpdate() error
	StepUpdateCurrent() (*Frame, error)
	StepTimestep(ctx context.Context) error
	RunTo(ctx context.Context, idx int) error
	RunToEnd(ctx context.Context) error
	// Current is the frame at the current position.
	Current() (*Frame, error)
	// SetState replaces the grids at the current position.
	SetState(st *engine.State) error
	// Result is the final samples (N, C_in, H, W) once the run is done.
	Result() ([]float32, error)

	// The history. Rewind goes back to the start of timestep index idx;
	// SnapshotBytes is the memory the kept snapshots hold; Fork returns an
	// independent run at the same position (without the observer and the
	// watched cell), which continues exactly as this one would.
	Rewind(ctx context.Context, idx int) error
	SnapshotBytes() int64
	Fork() (Stepper, error)

	// Close releases what the run holds outside this process (a worker's
	// memory); the run is not used afterwards.
	Close()
}

var _ Stepper = (*Sampler)(nil)

// TimestepOf is the original timestep of respaced index i (−1 outside).
func (s *Sampler) TimestepOf(i int) int {
	if i < 0 || i >= s.sched.Len() {
		return -1
	}
	return s.sched.Timestep(i)
}

// Sigma is √(1 − ᾱ) at respaced index i, the noise level of x_t (0
// outside).
func (s *Sampler) Sigma(i int) float64 {
	if tab := s.sched.SqrtOneMinusAlphasCumprod; i >= 0 && i < len(tab) {
		return tab[i]
	}
	return 0
}

// StepUpdateCurrent is StepUpdate followed by Current.
func (s *Sampler) StepUpdateCurrent() (*Frame, error) {
	if err := s.StepUpdate(); err != nil {
		return nil, err
	}
	return s.Current()
}

// Fork is Branch as a Run.
func (s *Sampler) Fork() (Stepper, error) { return s.Branch(), nil }

// Close does nothing: a local run holds only memory the garbage collector
// frees.
func (s *Sampler) Close() {}
