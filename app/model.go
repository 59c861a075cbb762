package app

import (
	"fmt"
	"math"
	"slices"

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
	// name and the SHA-256 of its bytes (hex).
	Source, Hash string
	// Builtin marks the embedded default model.
	Builtin bool
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

// options are the sampling options of one sample with settings s. The
// controller keeps its own resume points, so the sampler keeps only its first
// snapshot.
func (e *ModelEngine) options(s Settings) (sample.Options, error) {
	cfg := e.Model.Cfg
	opt := sample.Options{Steps: s.Steps, M: s.M, GHG: s.GHG, CFG: s.CFG, UpdateRate: s.Rate, Seed: s.Seed, N: 1,
		SnapshotBytes: -1}
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
// With the seed influence on it runs a twin alongside, cf: the same
// timestep without the seed cell, stepped with the same masks.
type modelSampler struct {
	s         *sample.Sampler
	watch     [2]int
	influence bool
	cf        *sample.Sampler // in step with s inside the current timestep; nil when not
}

func (m *modelSampler) frame(f *sample.Frame) *Frame {
	var sigma float64
	if tab, i := m.s.Schedule().SqrtOneMinusAlphasCumprod, f.TimestepIndex; i >= 0 && i < len(tab) {
		sigma = tab[i]
	}
	out := viewFrame(f, sigma, m.watch)
	if m.cf != nil && !f.Done {
		out.Influence = influence(m.s.Model().Cfg, f.State, m.cf.State())
	}
	return out
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

// influence is the per-cell L2 distance of the [C_out | C_h] channels of
// grid 0 of a and b (H·W values).
func influence(cfg engine.Config, a, b *engine.State) []float32 {
	if a == nil || b == nil || len(a.Data) != len(b.Data) || a.C != b.C {
		return nil
	}
	n := a.H * a.W
	out := make([]float32, n)
	for p := 0; p < n; p++ {
		ca, cb := a.Data[p*a.C+cfg.InChannels:(p+1)*a.C], b.Data[p*a.C+cfg.InChannels:(p+1)*a.C]
		var s float64
		for k := range ca {
			d := float64(ca[k]) - float64(cb[k])
			s += d * d
		}
		out[p] = float32(math.Sqrt(s))
	}
	return out
}

// seedless returns st with the centre cell's C_out and C_h zeroed in every
// grid: the timestep as it would run without the seed cell.
func seedless(cfg engine.Config, st *engine.State) *engine.State {
	out := st.Clone()
	for b := 0; b < out.B; b++ {
		clear(out.Cell(b, out.H/2, out.W/2)[cfg.InChannels:])
	}
	return out
}

// syncTwin starts the seedless twin at update 0 of a prepared timestep and
// drops it where it cannot be in step.
func (m *modelSampler) syncTwin() {
	if !m.influence || m.s.Done() {
		m.cf = nil
		return
	}
	if m.cf != nil && m.cf.Index() == m.s.Index() && m.cf.UpdatesDone() == m.s.UpdatesDone() {
		return
	}
	m.cf = nil
	if m.s.UpdatesDone() != 0 {
		return // switched on mid-timestep: from the next one
	}
	cf := m.s.Branch()
	if cf.SetState(seedless(m.s.Model().Cfg, m.s.State())) == nil {
		m.cf = cf
	}
}

func (m *modelSampler) Current() (*Frame, error) {
	f, err := m.s.Current() // prepares the timestep at update 0
	if err != nil {
		return nil, err
	}
	m.syncTwin()
	return m.frame(f), nil
}

// StepUpdate does one cell update, or at the end of a timestep its
// diffusion step followed by the preparation of the next timestep.
func (m *modelSampler) StepUpdate() (*Frame, error) {
	if m.s.Done() {
		return nil, sample.ErrDone
	}
	if m.cf != nil && m.s.UpdatesDone() < m.s.M() {
		if err := m.cf.StepUpdate(); err != nil {
			m.cf = nil
		}
	} else {
		m.cf = nil // the twin ends with the cell updates of its timestep
	}
	if err := m.s.StepUpdate(); err != nil {
		return nil, err
	}
	return m.Current()
}

func (m *modelSampler) Branch() Sampler {
	b := &modelSampler{s: m.s.Branch(), watch: m.watch, influence: m.influence}
	if m.cf != nil {
		b.cf = m.cf.Branch()
	}
	b.s.SetMeasure(true)
	if m.watch[0] >= 0 {
		_ = b.s.WatchCell(0, m.watch[0], m.watch[1])
	}
	return b
}

// setting applies a setting change to the run and its twin. At update 0
// the timestep may be prepared again, so the twin is rebuilt.
func (m *modelSampler) setting(set func(*sample.Sampler) error) error {
	if err := set(m.s); err != nil {
		return err
	}
	if m.cf != nil && (m.s.UpdatesDone() == 0 || set(m.cf) != nil) {
		m.cf = nil
	}
	return nil
}

func (m *modelSampler) SetM(v int) error {
	return m.setting(func(s *sample.Sampler) error { return s.SetM(v) })
}
func (m *modelSampler) SetGHG(on bool) error {
	return m.setting(func(s *sample.Sampler) error { s.SetGHG(on); return nil })
}
func (m *modelSampler) SetCFG(v float32) error {
	return m.setting(func(s *sample.Sampler) error { return s.SetCFG(v) })
}
func (m *modelSampler) SetRate(v float32) error {
	return m.setting(func(s *sample.Sampler) error { return s.SetUpdateRate(v) })
}

// SetCells replaces the grid (the damage brush). The twin gets the same
// damage: every cell the edit changed takes the edited values there too, so
// the influence keeps measuring the seed alone.
func (m *modelSampler) SetCells(st *engine.State) error {
	before := m.s.State()
	if err := m.s.SetState(st); err != nil {
		return err
	}
	if m.cf == nil {
		return nil
	}
	tw := m.cf.State()
	if len(tw.Data) != len(st.Data) || len(before.Data) != len(st.Data) {
		m.cf = nil
		return nil
	}
	for p := 0; p < st.B*st.H*st.W; p++ {
		cell := st.Data[p*st.C : (p+1)*st.C]
		if !slices.Equal(cell, before.Data[p*st.C:(p+1)*st.C]) {
			copy(tw.Data[p*st.C:(p+1)*st.C], cell)
		}
	}
	if m.cf.SetState(tw) != nil {
		m.cf = nil
	}
	return nil
}

func (m *modelSampler) SetInfluence(on bool) {
	m.influence = on
	if !on {
		m.cf = nil
	}
}

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
	return &ModelEngine{Model: m, Source: baseName(path), Hash: hash,
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

// DefaultEngine is the model the viewer opens without --ckpt: the embedded
// Fashion-MNIST model (assets), or the random demo model if it cannot be
// loaded (the status line then marks the model as untrained).
func DefaultEngine() (Engine, error) {
	m, _, err := assets.DefaultModel()
	if err != nil {
		return NewDemoEngine(1)
	}
	return &ModelEngine{Model: m, Label: "Fashion-MNIST 28x28 (built in)", Classes: assets.DefaultClasses,
		Start: assets.DefaultSampler, Builtin: true, Source: assets.DefaultModelName + " (built in)",
		Hash: filehash.Bytes(assets.DefaultModelBytes)}, nil
}
