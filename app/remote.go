package app

import (
	"geca/engine"
	"geca/engine/remote"
	"geca/engine/sample"
)

// RemoteEngine runs the samplers of a model in a worker (engine/remote): the
// GPU worker, or a worker on another machine. Previews, decoding and class
// names come from the local engine it wraps.
type RemoteEngine struct {
	*ModelEngine
	model *remote.Model
}

// NewRemoteEngine gives local's model to the worker of c; device says what
// computes, for the status line.
func NewRemoteEngine(local *ModelEngine, c *remote.Client, device string) (*RemoteEngine, error) {
	m, err := c.LoadModel(local.Model)
	if err != nil {
		return nil, err
	}
	e := *local
	e.DeviceInfo = device
	return &RemoteEngine{ModelEngine: &e, model: m}, nil
}

// NewSampler starts one sample (N = 1) with settings s in the worker.
func (e *RemoteEngine) NewSampler(s Settings) (Sampler, error) {
	opt, err := e.options(s)
	if err != nil {
		return nil, err
	}
	smp, err := e.model.NewSampler(opt)
	if err != nil {
		return nil, err
	}
	if err := smp.SetMeasure(true); err != nil {
		return nil, err
	}
	return &remoteSampler{s: smp, watch: [2]int{-1, -1}}, nil
}

// remoteSampler adapts remote.Sampler to the Sampler the controller drives.
type remoteSampler struct {
	s     *remote.Sampler
	watch [2]int
	err   error // a branch that could not be made fails every call
}

func (m *remoteSampler) frame(f *sample.Frame) *Frame {
	return viewFrame(f, m.s.Sigma(f.TimestepIndex), m.watch)
}

func (m *remoteSampler) Current() (*Frame, error) {
	if m.err != nil {
		return nil, m.err
	}
	f, err := m.s.Current()
	if err != nil {
		return nil, err
	}
	return m.frame(f), nil
}

func (m *remoteSampler) StepUpdate() (*Frame, error) {
	if m.err != nil {
		return nil, m.err
	}
	if m.s.Done() {
		return nil, sample.ErrDone
	}
	f, err := m.s.StepUpdateCurrent() // one round trip
	if err != nil {
		return nil, err
	}
	return m.frame(f), nil
}

func (m *remoteSampler) Branch() Sampler {
	if m.err != nil {
		return m
	}
	s, err := m.s.Branch()
	if err != nil {
		return &remoteSampler{s: m.s, err: err, watch: m.watch}
	}
	b := &remoteSampler{s: s, watch: m.watch}
	if err := s.SetMeasure(true); err != nil {
		b.err = err
	} else if m.watch[0] >= 0 {
		_ = s.WatchCell(0, m.watch[0], m.watch[1])
	}
	return b
}

func (m *remoteSampler) call(f func() error) error {
	if m.err != nil {
		return m.err
	}
	return f()
}

func (m *remoteSampler) SetM(v int) error       { return m.call(func() error { return m.s.SetM(v) }) }
func (m *remoteSampler) SetGHG(on bool) error   { return m.call(func() error { return m.s.SetGHG(on) }) }
func (m *remoteSampler) SetCFG(v float32) error { return m.call(func() error { return m.s.SetCFG(v) }) }
func (m *remoteSampler) SetRate(v float32) error {
	return m.call(func() error { return m.s.SetUpdateRate(v) })
}
func (m *remoteSampler) SetCells(st *engine.State) error {
	return m.call(func() error { return m.s.SetState(st) })
}

func (m *remoteSampler) Observe(i, j int) {
	if m.err != nil {
		return
	}
	if i < 0 {
		if m.s.UnwatchCell() == nil {
			m.watch = [2]int{-1, -1}
		}
		return
	}
	if m.s.WatchCell(0, i, j) == nil {
		m.watch = [2]int{i, j}
	}
}

// SetInfluence is not available through a worker: its frames carry no
// seed influence (the window says so).
func (m *remoteSampler) SetInfluence(bool) {}
