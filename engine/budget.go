package engine

import (
	"fmt"

	"geca/internal/membudget"
)

// The memory model of the engine (docs/safety.md): every allocation whose
// size a file, a flag or a peer chooses is estimated here, from the config
// and the batch, and checked against one limit (membudget) before anything
// is allocated. The CLI, the viewer and the worker all build models through
// Config.Validate and runs through CheckRun, so one check guards them all.

// Caps on the counts outside input controls, whatever memory is available.
const (
	// MaxBatch bounds the grids of one batch (samples, or 2× samples under
	// classifier-free guidance).
	MaxBatch = 1 << 17
	// MaxM bounds the cell updates of one denoiser call.
	MaxM = 10000
)

const f32 = 4 // bytes of a float32

// ModelBytes estimates the memory a model of config c holds: its weights
// (as loaded, and packed once more for the CPU's matrix products) and the
// positional code of its grid, (H·W)×D values.
func ModelBytes(c Config) int64 {
	var w int64
	for _, s := range Params(c) {
		w = membudget.Sum(w, membudget.Bytes(append(s.Shape, f32)...))
	}
	return membudget.Sum(w, w, membudget.Bytes(c.GridH, c.GridW, c.EmbedDim, f32))
}

// StateBytes is the memory of a State of b grids of h×w cells of c channels.
func StateBytes(b, h, w, c int) int64 { return membudget.Bytes(b, h, w, c, f32) }

// UpdaterBytes estimates the scratch of an Updater for batch grids (the CPU
// updater; a device updater needs less here): per cell of the batch two
// copies of the cell, nine rows of D, the update, the wider of the MLP
// hidden row and two rows of D, and three small per-cell entries; an eighth
// more, and a page for each of its buffers, for the allocator's rounding.
func UpdaterBytes(c Config, batch int) int64 {
	perCell := membudget.Sum(
		membudget.Bytes(2, c.CellDim()),
		membudget.Bytes(9, c.EmbedDim),
		int64(c.UpdateDim()),
		int64(max(2*c.EmbedDim, c.MLPDim)),
		3,
	)
	perGrid := membudget.Sum(membudget.Bytes(int(min(perCell, 1<<40)), c.GridH, c.GridW), membudget.Bytes(10, c.EmbedDim))
	b := membudget.Bytes(batch, int(min(perGrid, 1<<50)), f32)
	return membudget.Sum(b, b/8, updaterBuffers*8<<10)
}

// updaterBuffers is about the number of buffers an Updater allocates.
const updaterBuffers = 24

// RunBytes estimates the memory of a sampling run of n samples, 2n grids
// under classifier-free guidance: the grids, the updater, the latents and
// the sampler's per-grid scratch (eight latent-sized buffers), and the
// labels. Snapshots kept for scrubbing come on top (their own budget).
func RunBytes(c Config, n int, guided bool) int64 {
	nbi := min(n, 1<<40)
	if guided {
		nbi *= 2
	}
	latent := membudget.Bytes(nbi, c.InChannels, c.GridH, c.GridW, f32)
	return membudget.Sum(
		StateBytes(nbi, c.GridH, c.GridW, c.CellDim()),
		UpdaterBytes(c, nbi),
		membudget.Bytes(8, int(min(latent, 1<<50))),
		membudget.Bytes(nbi, c.GridH, c.GridW, 2*f32),
		membudget.Bytes(n, c.NumClasses, f32),
	)
}

// CheckRun refuses a sampling run of n samples (guided: 2n grids) of a
// model of config c whose memory (RunBytes) would pass the limit.
func CheckRun(c Config, n int, guided bool) error {
	if n < 1 || n > MaxBatch || (guided && 2*n > MaxBatch) {
		return fmt.Errorf("%d samples out of range [1, %d]", n, MaxBatch/2)
	}
	what := fmt.Sprintf("sampling %d sample(s) of %dx%d cells", n, c.GridH, c.GridW)
	if guided {
		what += " with guidance"
	}
	return membudget.Check(what, RunBytes(c, n, guided))
}

// CheckCall refuses a denoiser call on b grids of model config c whose
// grid and updater memory would pass the limit.
func CheckCall(c Config, b int) error {
	if b < 1 || b > MaxBatch {
		return fmt.Errorf("batch of %d grids out of range [1, %d]", b, MaxBatch)
	}
	return membudget.Check(fmt.Sprintf("a denoiser call on %d grid(s) of %dx%d cells", b, c.GridH, c.GridW),
		membudget.Sum(StateBytes(b, c.GridH, c.GridW, c.CellDim()), UpdaterBytes(c, b)))
}

// CheckState refuses a state of b grids of h×w cells of c channels over the
// limit (or with a non-positive size).
func CheckState(b, h, w, c int) error {
	if b < 1 || h < 1 || w < 1 || c < 1 {
		return fmt.Errorf("state shape (%d, %d, %d, %d) has an empty dimension", b, c, h, w)
	}
	return membudget.Check(fmt.Sprintf("a state of %d grid(s) of %dx%d cells of %d channels", b, h, w, c), StateBytes(b, h, w, c))
}
