package sample

import (
	"geca/engine"
)

// FrameKind tells a cell-update frame from a timestep frame.
type FrameKind int

const (
	// FrameUpdate follows one cell update.
	FrameUpdate FrameKind = iota
	// FrameTimestep follows the diffusion step that ends a timestep.
	FrameTimestep
)

func (k FrameKind) String() string {
	if k == FrameTimestep {
		return "timestep"
	}
	return "update"
}

// Frame is what the sampler shows after a cell update or a timestep. Every
// slice is the frame's own copy. Latent arrays are channel-first
// (N, C_in, H, W) and hold the N samples (the conditional half under CFG);
// State and Magnitude cover all N_b grids, so sample b < N indexes all of them
// alike.
type Frame struct {
	Kind          FrameKind
	TimestepIndex int // respaced index i (n−1 … 0)
	Timesteps     int // n, the number of timesteps of the run
	T             int // the original timestep the model is given
	Update        int // cell updates done in this timestep (0…M; the M done on timestep frames)
	M             int // the M of this timestep
	N             int // samples
	CFG           bool

	// State is the grid after this update (timestep frames: after the M
	// updates, i.e. the carry the next timestep inherits under GHG).
	State *engine.State
	// Xt is the noisy latent x_t this timestep denoises.
	Xt []float32
	// X0 is the predicted x0: from the current ε̂ (C_out, CFG-guided) on
	// update frames, a preview of what the step would use if the timestep
	// ended now; on timestep frames the x̂0 the step used.
	X0 []float32
	// XPrev is the latent after the step (timestep frames only): x_{t−1},
	// or the final sample on the last frame.
	XPrev []float32
	// Magnitude is the L2 norm of the update applied to each cell by this
	// update, (N_b, H, W) (update frames only; 0 where the mask was 0).
	Magnitude []float32
	// Attn holds the attention weights (heads·9) of the watched cell in this
	// update (update frames with a watched cell only).
	Attn []float32
	// Done marks the last frame of the run.
	Done bool
}

func (s *Sampler) baseFrame(kind FrameKind) *Frame {
	return &Frame{
		Kind: kind, TimestepIndex: s.i, Timesteps: s.sched.Len(), T: s.sched.Timestep(s.i),
		Update: s.done, M: s.cur.M, N: s.n, CFG: s.cfgOn,
		State: s.st.Clone(),
		Xt:    append([]float32(nil), s.x[:s.n*s.latentSize()]...),
	}
}

// cellFrame builds the frame of the update just done, with the x0 preview.
func (s *Sampler) cellFrame() (*Frame, error) {
	f := s.baseFrame(FrameUpdate)
	if err := s.modelOutput(); err != nil {
		return nil, err
	}
	var err error
	if f.X0, err = s.previewX0(); err != nil {
		return nil, err
	}
	f.Magnitude = append([]float32(nil), s.sc.obs.Magnitude...)
	if s.sc.obs.Attn != nil {
		f.Attn = append([]float32(nil), s.sc.obs.Attn...)
	}
	return f, nil
}

// previewX0 is the x̂0 the next diffusion step would use, from the current ε̂
// (clamped as the step clamps it).
func (s *Sampler) previewX0() ([]float32, error) {
	size := s.n * s.latentSize()
	x0 := make([]float32, size)
	if err := s.sched.PredictX0(x0, s.x[:size], s.sc.eps[:size], s.i); err != nil {
		return nil, err
	}
	s.clip.Clamp(x0)
	return x0, nil
}

// timestepFrame builds the frame of the step just computed (before the
// sampler moves on).
func (s *Sampler) timestepFrame() *Frame {
	f := s.baseFrame(FrameTimestep)
	size := s.n * s.latentSize()
	f.X0 = append([]float32(nil), s.sc.x0[:size]...)
	f.XPrev = append([]float32(nil), s.sc.xPrev[:size]...)
	f.Done = s.i == 0
	return f
}

// clone deep-copies a frame.
func (f *Frame) clone() *Frame {
	c := *f
	cp := func(x []float32) []float32 {
		if x == nil {
			return nil
		}
		return append([]float32(nil), x...)
	}
	if f.State != nil {
		c.State = f.State.Clone()
	}
	c.Xt, c.X0, c.XPrev, c.Magnitude, c.Attn = cp(f.Xt), cp(f.X0), cp(f.XPrev), cp(f.Magnitude), cp(f.Attn)
	return &c
}
