package app

import (
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
func (e *RemoteEngine) NewSampler(s Settings, snapshotBytes int64) (sample.Stepper, error) {
	opt, err := e.options(s, snapshotBytes)
	if err != nil {
		return nil, err
	}
	smp, err := e.model.NewSampler(opt)
	if err != nil {
		return nil, err
	}
	return smp, nil
}
