package engine

// Accelerator computes the cell updates of a model on another device (a GPU:
// engine/cuda). A model given one (SetAccelerator) makes updaters
// whose Update and Call run there, with the same arguments, checks and
// results, up to floating-point rounding, as on the CPU; everything else
// (conditioning, seeding, guidance, the diffusion step) stays on the CPU.
type Accelerator interface {
	// Name describes the device, e.g. "CUDA: NVIDIA H200 (sm_90, 140 GiB)".
	Name() string
	// NewUpdater prepares the device side of an updater of m for states of
	// batch grids.
	NewUpdater(m *Model, batch int) (DeviceUpdater, error)
}

// DeviceUpdater is the device side of an Updater. Update has checked the
// shapes of its arguments, the mask values and the observe sizes; the
// device side checks that the state and conditioning values it has not
// seen yet are finite, as the CPU path does.
type DeviceUpdater interface {
	// Update is one cell update (Updater.Update); dense computes every
	// cell (Updater.Dense).
	Update(st *State, c *Cond, mask []float32, obs *Observe, dense bool) error
	// Updates runs len(masks) updates with the same conditioning (a nil
	// mask updates every cell) and no observation: one denoiser call with
	// the state copied to the device and back once.
	Updates(st *State, c *Cond, masks [][]float32, dense bool) error
	// Reset drops every cache.
	Reset()
}

// SetAccelerator makes the updaters created from now on compute on a (nil:
// the CPU).
func (m *Model) SetAccelerator(a Accelerator) { m.accel = a }

// Accelerator returns the model's accelerator (nil: the CPU).
func (m *Model) Accelerator() Accelerator { return m.accel }
