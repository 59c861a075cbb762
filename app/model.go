package app

import (
	"fmt"
	"math"

	"geca/assets"
	"geca/engine"
	"geca/engine/ckpt"
	"geca/engine/sample"
	"geca/engine/vae"
	"geca/render"
)

// ModelEngine runs a GeCA model with engine/sample, and optionally decodes
// latents with a VAE.
type ModelEngine struct {
	Model *engine.Model
	// Label names the model in the status line.
	Label string
	// Random marks a model with random weights (the status line says so).
	Random bool
	// VAE decodes x0 fully for latent models (nil: preview only).
	VAE *vae.Decoder
	// Classes names the labels, when known.
	Classes []string
	// CFG is the guidance scale the viewer starts at (0: no guidance), for a
	// model known to need it.
	CFG float32
	// DeviceInfo says what computes the updates, for the status line ("":
	// not shown).
	DeviceInfo string
}

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

// NewSampler starts one sample (N = 1) with settings s.
func (e *ModelEngine) NewSampler(s Settings) (Sampler, error) {
	opt, err := e.options(s)
	if err != nil {
		return nil, err
	}
	smp, err := sample.New(e.Model, opt)
	if err != nil {
		return nil, err
	}
	smp.SetMeasure(true)
	return &modelSampler{s: smp, watch: [2]int{-1, -1}}, nil
}

// options are the sampling options of one sample with settings s.
func (e *ModelEngine) options(s Settings) (sample.Options, error) {
	cfg := e.Model.Cfg
	opt := sample.Options{Steps: s.Steps, M: s.M, GHG: s.GHG, CFG: s.CFG, UpdateRate: s.Rate, Seed: s.Seed, N: 1}
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

// modelSampler adapts sample.Sampler to the Sampler the controller drives.
type modelSampler struct {
	s     *sample.Sampler
	watch [2]int
}

func (m *modelSampler) frame(f *sample.Frame) *Frame {
	var sigma float64
	if tab, i := m.s.Schedule().SqrtOneMinusAlphasCumprod, f.TimestepIndex; i >= 0 && i < len(tab) {
		sigma = tab[i]
	}
	return viewFrame(f, sigma, m.watch)
}

// viewFrame turns a sampler frame into the viewer's, with the noise level
// sigma of its timestep and the watched cell.
func viewFrame(f *sample.Frame, sigma float64, watch [2]int) *Frame {
	i := f.TimestepIndex
	out := &Frame{Index: f.Timesteps - 1 - i, T: f.T, Update: f.Update, M: f.M, State: f.State,
		Xt: f.Xt, X0: f.X0, Magnitude: f.Magnitude, Attn: f.Attn, AttnCell: watch, Done: f.Done, Sigma: sigma}
	if f.Done && f.XPrev != nil {
		out.X0 = f.XPrev // the final sample
		out.Sigma = 0
	}
	if len(out.Attn) == 0 {
		out.Attn = nil
	}
	return out
}

func (m *modelSampler) Current() (*Frame, error) {
	f, err := m.s.Current()
	if err != nil {
		return nil, err
	}
	return m.frame(f), nil
}

// StepUpdate does one cell update, or at the end of a timestep its
// diffusion step followed by the preparation of the next timestep.
func (m *modelSampler) StepUpdate() (*Frame, error) {
	if m.s.Done() {
		return nil, sample.ErrDone
	}
	if err := m.s.StepUpdate(); err != nil {
		return nil, err
	}
	return m.Current()
}

func (m *modelSampler) Branch() Sampler {
	b := &modelSampler{s: m.s.Branch(), watch: m.watch}
	b.s.SetMeasure(true)
	if m.watch[0] >= 0 {
		_ = b.s.WatchCell(0, m.watch[0], m.watch[1])
	}
	return b
}

func (m *modelSampler) SetM(v int) error                { return m.s.SetM(v) }
func (m *modelSampler) SetGHG(on bool) error            { m.s.SetGHG(on); return nil }
func (m *modelSampler) SetCFG(v float32) error          { return m.s.SetCFG(v) }
func (m *modelSampler) SetRate(v float32) error         { return m.s.SetUpdateRate(v) }
func (m *modelSampler) SetCells(st *engine.State) error { return m.s.SetState(st) }

func (m *modelSampler) Observe(i, j int) {
	if i < 0 {
		m.s.UnwatchCell()
		m.watch = [2]int{-1, -1}
		return
	}
	if m.s.WatchCell(0, i, j) == nil {
		m.watch = [2]int{i, j}
	}
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

// LoadEngine opens a checkpoint (.pt or .safetensors) and, when vaePath is
// not empty, a VAE decoder.
func LoadEngine(path, vaePath string) (Engine, error) {
	m, _, err := ckpt.LoadModel(path, ckpt.Options{})
	if err != nil {
		return nil, err
	}
	e := &ModelEngine{Model: m, Label: fmt.Sprintf("%s (%s, %.1fM params)", baseName(path), m.Cfg.Name, float64(m.ParamCount())/1e6)}
	if vaePath != "" {
		d, err := vae.LoadDecoder(vaePath)
		if err != nil {
			return nil, fmt.Errorf("VAE %s: %w", vaePath, err)
		}
		e.VAE = d
	}
	return e, nil
}

func baseName(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' || p[i] == '\\' {
			return p[i+1:]
		}
	}
	return p
}

// StartSettings are the settings the window opens with: DefaultSettings, at
// the guidance scale the engine's model asks for (the built-in model samples
// its classes far more faithfully with guidance; assets/README.md).
func StartSettings(eng Engine) Settings {
	s := DefaultSettings(eng.Config())
	if me, ok := eng.(*ModelEngine); ok && me.CFG > 1 {
		s.CFG = me.CFG
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

// DefaultEngine is the model the viewer opens without --ckpt: the embedded
// Fashion-MNIST model (assets), or the random demo model if it cannot be
// loaded (the status line then marks the model as untrained).
func DefaultEngine() (Engine, error) {
	m, _, err := assets.DefaultModel()
	if err != nil {
		return NewDemoEngine(1)
	}
	return &ModelEngine{Model: m, Label: "Fashion-MNIST 28x28 (built in)", Classes: assets.DefaultClasses, CFG: assets.DefaultCFG}, nil
}
