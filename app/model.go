package app

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"geca/assets"
	"geca/engine"
	"geca/engine/ckpt"
	"geca/engine/sample"
	"geca/engine/vae"
	"geca/internal/filehash"
	"geca/render"
)

// ModelEngine runs a GeCA model with engine/sample, and optionally decodes
// latents with a VAE.
type ModelEngine struct {
	Model *engine.Model
	// Label names the model in the status line.
	Label string
	// Source and Hash name the checkpoint for export metadata: its file
	// name and the SHA-256 of its bytes (hex). Path is the file as opened,
	// absolute ("" for a built-in model).
	Source, Hash string
	Path         string
	// Builtin is the name of the built-in model this is (assets.Builtins),
	// "" for a file.
	Builtin string
	// Opening is how the window first shows this model (nil: as it is).
	Opening *Opening
	// Random marks a model with random weights (the status line says so).
	Random bool
	// VAE decodes x0 fully for latent models (nil: preview only); VAEName
	// names it.
	VAE     LatentDecoder
	VAEName string
	// Classes names the labels, when known.
	Classes []string
	// Start is the sampler the viewer starts with (zero: DefaultSettings).
	Start assets.Sampler
	// DeviceInfo says what computes the updates, for the status line ("":
	// not shown).
	DeviceInfo string
}

// LatentDecoder turns latents into images (the AutoencoderKL decoder or TAESD).
type LatentDecoder = vae.LatentDecoder

// Device says what computes the updates (and why, when the GPU was asked
// for and the CPU is used).
func (e *ModelEngine) Device() string { return e.DeviceInfo }

// ClassNames names the model's classes (nil when unknown).
func (e *ModelEngine) ClassNames() []string { return e.Classes }

func (e *ModelEngine) Config() engine.Config { return e.Model.Cfg }
func (e *ModelEngine) Name() string          { return e.Label }
func (e *ModelEngine) Untrained() bool       { return e.Random }

// Preview is the cheap latent-to-RGB map for SD latents (nil for pixel
// models or latents it does not fit).
func (e *ModelEngine) Preview() render.Preview {
	if !e.Model.Cfg.Latent || e.Model.Cfg.InChannels != vae.PreviewChannels {
		return nil
	}
	return vae.Preview
}

// Decoder decodes one latent (C_in, h, w) to RGB (3, 8h, 8w).
func (e *ModelEngine) Decoder() func(latent []float32, h, w int) ([]float32, error) {
	if e.VAE == nil || !e.Model.Cfg.Latent {
		return nil
	}
	d := e.VAE
	return func(latent []float32, h, w int) ([]float32, error) { return d.Decode(latent, 1, h, w) }
}

// NewSampler starts one sample (N = 1) with settings s in this process.
func (e *ModelEngine) NewSampler(s Settings, snapshotBytes int64) (sample.Stepper, error) {
	opt, err := e.options(s, snapshotBytes)
	if err != nil {
		return nil, err
	}
	smp, err := sample.New(e.Model, opt)
	if err != nil {
		return nil, err
	}
	return smp, nil
}

// options are the sampling options of one sample with settings s, whose
// snapshots stay within snapshotBytes.
func (e *ModelEngine) options(s Settings, snapshotBytes int64) (sample.Options, error) {
	cfg := e.Model.Cfg
	opt := sample.Options{Steps: s.Steps, M: s.M, GHG: s.GHG, CFG: s.CFG, UpdateRate: s.Rate, Seed: s.Seed, N: 1,
		SnapshotBytes: snapshotBytes}
	if len(s.Labels) > 0 {
		y := make([]float32, cfg.NumClasses)
		for _, l := range s.Labels {
			if l < 0 || l >= cfg.NumClasses {
				return opt, fmt.Errorf("label %d out of range [0, %d)", l, cfg.NumClasses)
			}
			y[l] = 1
		}
		opt.Labels = [][]float32{y}
	}
	return opt, nil
}

// DemoConfig is the small pixel-space model the viewer opens when no
// checkpoint is given and none is embedded: 32x32 grey cells, cheap enough to
// animate smoothly on a laptop CPU.
func DemoConfig() engine.Config {
	return engine.Config{Name: "demo (random)", GridH: 32, GridW: 32, InChannels: 1, HiddenChannels: 16,
		EmbedDim: 64, Heads: 4, MLPDim: 128, NumClasses: 10, M: 12, UpdateRate: 0.5}
}

// NewDemoEngine returns an engine on a random model with DemoConfig.
func NewDemoEngine(seed uint64) (*ModelEngine, error) {
	m, err := engine.NewRandomModel(DemoConfig(), seed, 0.5)
	if err != nil {
		return nil, err
	}
	return &ModelEngine{Model: m, Label: "demo model (32x32 grey)", Random: true}, nil
}

// LoadEngine opens a checkpoint (.pt or .safetensors).
func LoadEngine(path string) (Engine, error) {
	m, _, err := ckpt.LoadModel(path, ckpt.Options{})
	if err != nil {
		return nil, err
	}
	hash, err := filehash.File(path)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	return &ModelEngine{Model: m, Source: baseName(path), Hash: hash, Path: abs,
		Label: fmt.Sprintf("%s (%s, %.1fM params)", baseName(path), m.Cfg.Name, float64(m.ParamCount())/1e6)}, nil
}

// LoadVAEFile opens a VAE folder or file (vae.Load).
func LoadVAEFile(path string) (LatentDecoder, error) { return vae.Load(path) }

func baseName(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' || p[i] == '\\' {
			return p[i+1:]
		}
	}
	return p
}

// StartSettings are the settings the window opens a model with:
// DefaultSettings with the sampler the engine's model asks for (the
// built-in model: assets.DefaultSampler, chosen by measurement).
func StartSettings(eng Engine) Settings {
	s := DefaultSettings(eng.Config())
	if me := modelEngine(eng); me != nil && me.Start.Steps != "" {
		s.Steps, s.CFG, s.GHG = me.Start.Steps, me.Start.CFG, me.Start.GHG
	}
	return s
}

// DefaultSettings are the viewer's starting settings for a model: the
// model's M and update rate, GHG on, no guidance (CFG doubles the cost), 50
// steps, seed 1, and class 1 for class-conditional models.
func DefaultSettings(cfg engine.Config) Settings {
	m := cfg.M
	if m <= 0 {
		m = 12
	}
	rate := cfg.UpdateRate
	if !(rate > 0) || math.IsNaN(float64(rate)) {
		rate = 0.5
	}
	s := Settings{Steps: "50", M: m, GHG: true, CFG: 1, Rate: rate, Seed: 1}
	if cfg.NumClasses > 1 {
		s.Labels = []int{1 % cfg.NumClasses}
	}
	return s
}

// OfficialSettings are s with the official sampler of GeCA checkpoints
// (assets.OfficialSampler: DDPM 250 steps, CFG 1.5, GHG on).
func OfficialSettings(s Settings) Settings {
	o := assets.OfficialSampler
	s.Steps, s.CFG, s.GHG = o.Steps, o.CFG, o.GHG
	return s
}

// Opening is how the window first shows a model, the first time it becomes
// the current one: a view, a play rate and the damage brush ready on the
// image.
type Opening struct {
	View   render.View
	Speed  float64 // updates per second
	Damage bool    // the "blank the image" brush on, for the regrowth demo
}

// builtinOpenings says how the built-in models open beyond their sampler
// (assets.Builtin.Sampler). The emoji model is the teaching model: its x₀,
// in colour, turns from noise into the emoji at a rate an audience can
// follow (16 updates a second: half a minute for the run), with the brush
// ready for the regrowth demo (docs/viewer.md). The seed's reach is not
// dimmed: past the first timesteps it would darken the picture the
// audience watches; the demo preset (Shift+D) tells the growth story.
var builtinOpenings = map[string]*Opening{
	"emoji": {View: render.ViewX0, Speed: 16, Damage: true},
}

// BuiltinPrefix marks a built-in model where a checkpoint path is expected:
// "builtin:emoji" (Open, the path field, --model).
const BuiltinPrefix = "builtin:"

// BuiltinEngine runs one of the built-in models (assets.Builtins).
func BuiltinEngine(b *assets.Builtin) (*ModelEngine, error) {
	m, _, err := b.Load()
	if err != nil {
		return nil, err
	}
	return &ModelEngine{Model: m, Label: b.Title + " (built in)", Classes: b.Classes, Start: b.Sampler,
		Builtin: b.Name, Opening: builtinOpenings[b.Name], Source: b.File + " (built in)", Hash: b.Hash()}, nil
}

// Open opens a model by reference: BuiltinPrefix and the name of a built-in
// model, or a checkpoint path (LoadEngine).
func Open(ref string) (Engine, error) {
	if name, ok := strings.CutPrefix(ref, BuiltinPrefix); ok {
		b, err := assets.Lookup(name)
		if err != nil {
			return nil, err
		}
		return BuiltinEngine(b)
	}
	return LoadEngine(ref)
}

// DefaultEngine is the model the viewer opens without --ckpt: the first
// built-in model (Fashion-MNIST), or the random demo model if it cannot be
// loaded (the status line then marks the model as untrained).
func DefaultEngine() (Engine, error) {
	e, err := BuiltinEngine(assets.Builtins[0])
	if err != nil {
		return NewDemoEngine(1)
	}
	return e, nil
}
