package engine

import (
	"errors"
	"fmt"
	"strings"

	"geca/internal/membudget"
)

// Config holds the hyper-parameters of a GeCA model (docs/model.md §1). Every size the
// model depends on is here; nothing is hard-coded elsewhere.
type Config struct {
	Name           string     `json:"name"`            // "GeCA-S", "GeCA-XS" or a free name for custom sizes
	GridH          int        `json:"grid_h"`          // grid rows (latent height); 32 for 256 px
	GridW          int        `json:"grid_w"`          // grid columns
	InChannels     int        `json:"in_channels"`     // C_in: channels of x_t (4 for SD latents, 1 or 3 for pixels)
	HiddenChannels int        `json:"hidden_channels"` // C_h
	EmbedDim       int        `json:"embed_dim"`       // D
	Heads          int        `json:"heads"`           // attention heads; head dim = D / heads
	MLPDim         int        `json:"mlp_dim"`         // MLP hidden width
	NumClasses     int        `json:"num_classes"`     // K, length of the multi-hot label
	M              int        `json:"m"`               // cell updates per denoiser call (step_n)
	UpdateRate     float32    `json:"update_rate"`     // per-cell update probability (0.5); >= 1 disables the mask
	Latent         bool       `json:"latent"`          // true: x is an SD-VAE latent (scale 0.18215); false: pixels in [-1, 1]
	PosCode        PosCode    `json:"pos_code,omitempty"`
	Prediction     Prediction `json:"prediction,omitempty"`
}

// Prediction names what the first C_in output channels of a cell hold
// (docs/model.md §6.5).
type Prediction string

const (
	// PredictEps is the official parameterisation: the noise ε̂. Every
	// official checkpoint uses it, and a config that names none means it.
	PredictEps Prediction = ""
	// PredictV is the velocity v̂ = √ᾱ·ε − √(1−ᾱ)·x0 (Salimans and Ho,
	// 2022), from which the sampler recovers ε̂. geca's own models may use
	// it.
	PredictV Prediction = "v"
)

// predictionNames are the known predictions, in words.
var predictionNames = map[Prediction]string{PredictEps: "ε-prediction", PredictV: "v-prediction"}

// String says which prediction, in words.
func (p Prediction) String() string {
	if s, ok := predictionNames[p]; ok {
		return s
	}
	return fmt.Sprintf("prediction %q", string(p))
}

// PosCode names the positional code added to every cell embedding
// (docs/model.md §2.2).
type PosCode string

const (
	// PosCodeOfficial is the official code: a 1-D sinusoid over the
	// row-major cell index. Every official checkpoint uses it, and a config
	// that names no code means it.
	PosCodeOfficial PosCode = ""
	// PosCode2D is DiT's 2-D sine-cosine code: half the channels encode the
	// column, half the row. geca's own small models may use it.
	PosCode2D PosCode = "2d"
)

// posCodeNames are the known codes, in words.
var posCodeNames = map[PosCode]string{PosCodeOfficial: "1-D positional code", PosCode2D: "2-D positional code"}

// String says which code, in words.
func (p PosCode) String() string {
	if s, ok := posCodeNames[p]; ok {
		return s
	}
	return fmt.Sprintf("positional code %q", string(p))
}

// OutChannels is C_out = 2·C_in: ε̂ followed by the learned-variance values v
// (docs/model.md §1: the official constructor ignores its own argument).
func (c Config) OutChannels() int { return 2 * c.InChannels }

// CellDim is the number of channels of one pix-cell: [C_in | C_out | C_h].
func (c Config) CellDim() int { return c.InChannels + c.OutChannels() + c.HiddenChannels }

// UpdateDim is the number of channels the update rule writes: [C_out | C_h].
func (c Config) UpdateDim() int { return c.OutChannels() + c.HiddenChannels }

// HeadDim is D / heads.
func (c Config) HeadDim() int { return c.EmbedDim / c.Heads }

// Cells is the number of pix-cells in the grid.
func (c Config) Cells() int { return c.GridH * c.GridW }

// Preset returns a registered configuration (docs/model.md §1) for a 32x32 latent grid
// with numClasses classes. Names are matched case-insensitively.
func Preset(name string, numClasses int) (Config, error) {
	base := Config{GridH: 32, GridW: 32, InChannels: 4, NumClasses: numClasses, M: 12, UpdateRate: 0.5, Latent: true}
	switch strings.ToLower(name) {
	case "geca-s", "s":
		base.Name, base.EmbedDim, base.Heads, base.MLPDim, base.HiddenChannels = "GeCA-S", 768, 12, 3072, 64
	case "geca-xs", "xs":
		base.Name, base.EmbedDim, base.Heads, base.MLPDim, base.HiddenChannels = "GeCA-XS", 384, 6, 64, 32
	default:
		return Config{}, fmt.Errorf("unknown model preset %q (known: GeCA-S, GeCA-XS)", name)
	}
	return base, base.Validate()
}

// Validate reports the inconsistent or out-of-range sizes, and a model whose
// memory (ModelBytes) would pass the limit (membudget).
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.GridH >= 1 && c.GridH <= 4096, "grid height %d out of range [1, 4096]", c.GridH)
	check(c.GridW >= 1 && c.GridW <= 4096, "grid width %d out of range [1, 4096]", c.GridW)
	check(c.InChannels >= 1 && c.InChannels <= 64, "in_channels %d out of range [1, 64]", c.InChannels)
	check(c.HiddenChannels >= 0 && c.HiddenChannels <= 4096, "hidden_channels %d out of range [0, 4096]", c.HiddenChannels)
	check(c.EmbedDim >= 1 && c.EmbedDim <= 16384, "embed_dim %d out of range [1, 16384]", c.EmbedDim)
	check(c.Heads >= 1 && c.Heads <= c.EmbedDim, "heads %d out of range [1, embed_dim]", c.Heads)
	check(c.Heads >= 1 && c.EmbedDim%max(c.Heads, 1) == 0, "embed_dim %d is not divisible by heads %d", c.EmbedDim, c.Heads)
	check(c.MLPDim >= 1 && c.MLPDim <= 65536, "mlp_dim %d out of range [1, 65536]", c.MLPDim)
	check(c.NumClasses >= 1 && c.NumClasses <= 100000, "num_classes %d out of range [1, 100000]", c.NumClasses)
	check(c.M >= 0 && c.M <= MaxM, "M %d out of range [0, %d]", c.M, MaxM)
	check(c.UpdateRate > 0 && c.UpdateRate <= 1, "update_rate %g out of range (0, 1]", c.UpdateRate)
	_, knownCode := posCodeNames[c.PosCode]
	_, knownPrediction := predictionNames[c.Prediction]
	check(knownCode, "pos_code %q unknown (known: \"\" for the official 1-D code, %q)", string(c.PosCode), string(PosCode2D))
	check(knownPrediction, "prediction %q unknown (known: \"\" for the official ε, %q)", string(c.Prediction), string(PredictV))
	check(c.PosCode != PosCode2D || c.EmbedDim%4 == 0, "embed_dim %d is not divisible by 4, as the 2-D positional code needs", c.EmbedDim)
	if len(errs) > 0 {
		return fmt.Errorf("invalid config %q: %w", c.Name, errors.Join(errs...))
	}
	// A config that fits these ranges may still describe a model that cannot
	// fit in memory (a 4096x4096 grid's positional code alone can pass 30 GB):
	// every model is built after this check (docs/safety.md).
	return membudget.Check(fmt.Sprintf("model %s (%dx%d grid, D %d)", cfgName(c), c.GridH, c.GridW, c.EmbedDim), ModelBytes(c))
}
