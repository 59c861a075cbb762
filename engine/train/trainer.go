package train

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"

	"gorgonia.org/tensor"

	"geca/engine"
	"geca/engine/ckpt"
	"geca/engine/data"
	"geca/engine/diffusion"
)

// Options are the training hyper-parameters. The defaults (DefaultOptions)
// are the official ones (docs/model.md §8) except where a short CPU run needs
// otherwise; the caller records what it used.
type Options struct {
	Batch        int     `json:"batch"`
	LR           float64 `json:"lr"`
	WeightDecay  float64 `json:"weight_decay"`
	EMADecay     float64 `json:"ema_decay"`
	EMAWarmup    bool    `json:"ema_warmup"`    // decay min(EMADecay, (1+s)/(10+s))
	LabelDropout float64 `json:"label_dropout"` // per label entry (docs/model.md §4.2)
	Seed         uint64  `json:"seed"`
	// CarryProb is the fraction of steps whose grids do not start from a
	// fresh seed but carry the state a previous denoiser call left, as GHG
	// sampling does (docs/model.md §5); 0 is the official recipe. See carry.
	CarryProb float64 `json:"carry_prob,omitempty"`
	// CarryCalls is the most earlier calls a carried state has been through
	// (each step draws 1 … CarryCalls); 0 means 2, the value before it was
	// an option. Sampling carries a state through every timestep, so a
	// model whose hidden state drifts over many calls needs longer chains.
	CarryCalls int `json:"carry_calls,omitempty"`
	// MinSNR is γ of Min-SNR-γ weighting of the noise MSE (MinSNRWeight);
	// 0 is the official unweighted loss.
	MinSNR float64 `json:"min_snr,omitempty"`
}

// LongestCarry is the most earlier calls a carried state comes through:
// CarryCalls, or 2 where a state file saved before that option says 0.
func (o Options) LongestCarry() int {
	if o.CarryCalls <= 0 {
		return 2
	}
	return o.CarryCalls
}

// DefaultOptions: batch 32, AdamW lr 1e-4, EMA 0.9999, label dropout 0.1.
func DefaultOptions() Options {
	return Options{Batch: 32, LR: 1e-4, EMADecay: 0.9999, LabelDropout: 0.1, Seed: 1}
}

// LossPoint is the mean loss over a stretch of steps ending at Step.
type LossPoint struct {
	Step int     `json:"step"`
	Loss float64 `json:"loss"`
	MSE  float64 `json:"mse"`
	VB   float64 `json:"vb"`
}

// Trainer runs the official training step (docs/model.md §8) on a dataset: per sample
// t ~ U{0..T−1}, ε ~ N(0, I), x_t = q_sample(x0, ε), a fresh seed, one
// denoiser call of M updates back-propagated through all of them, loss =
// MSE(ε, ε̂) + L_vb, AdamW, EMA.
type Trainer struct {
	Cfg   engine.Config
	Opt   Options
	Data  *data.Dataset
	P     *Params[float32]
	Net   *Net[float32]
	Adam  *AdamW
	EMA   *EMA
	Sched *diffusion.Schedule // the unrespaced training process: step index = timestep
	Step  int
	// CarriedCalls is how many earlier calls the current step's grids were
	// carried through (0: a fresh seed).
	CarriedCalls int

	History []LossPoint // one point per HistoryEvery steps
	acc     LossPoint
	accN    int

	s0, x0, xt, eps, y, dOut []float32
	t                        []int
	masks                    [][]float32

	// the no-gradient calls that make carried states (Options.CarryProb)
	pre      *Net[float32]
	preS     []float32
	preMasks [][]float32
}

// HistoryEvery is how many steps one loss-curve point averages.
const HistoryEvery = 10

// NewTrainer initialises a model of cfg (official initialisation) for ds.
func NewTrainer(cfg engine.Config, opt Options, ds *data.Dataset) (*Trainer, error) {
	p, err := NewParams[float32](cfg)
	if err != nil {
		return nil, err
	}
	p.InitOfficial(opt.Seed)
	return newTrainer(p, opt, ds)
}

func newTrainer(p *Params[float32], opt Options, ds *data.Dataset) (*Trainer, error) {
	cfg := p.Cfg
	if opt.Batch < 1 {
		return nil, fmt.Errorf("batch %d must be at least 1", opt.Batch)
	}
	if ds.H != cfg.GridH || ds.W != cfg.GridW || ds.C != cfg.InChannels {
		return nil, fmt.Errorf("images are %dx%dx%d but the model grid is %dx%d with %d input channels", ds.H, ds.W, ds.C, cfg.GridH, cfg.GridW, cfg.InChannels)
	}
	if len(ds.Classes) != cfg.NumClasses {
		return nil, fmt.Errorf("dataset has %d classes, model %d", len(ds.Classes), cfg.NumClasses)
	}
	if ds.N < opt.Batch {
		return nil, fmt.Errorf("dataset has %d images, fewer than one batch of %d", ds.N, opt.Batch)
	}
	sched, err := diffusion.New(diffusion.DefaultSteps, "")
	if err != nil {
		return nil, err
	}
	tr := &Trainer{Cfg: cfg, Opt: opt, Data: ds, P: p, Net: NewNet(p, opt.Batch), Sched: sched}
	tr.Adam = NewAdamW(p, opt.LR)
	tr.Adam.WeightDecay = opt.WeightDecay
	tr.EMA = NewEMA(p, opt.EMADecay, opt.EMAWarmup)
	R, Cin := tr.Net.R, cfg.InChannels
	tr.s0, tr.x0, tr.xt, tr.eps = make([]float32, R*tr.Net.Cd), make([]float32, R*Cin), make([]float32, R*Cin), make([]float32, R*Cin)
	tr.y, tr.dOut, tr.t = make([]float32, opt.Batch*cfg.NumClasses), make([]float32, R*tr.Net.Cd), make([]int, opt.Batch)
	for m := 0; m < cfg.M; m++ {
		tr.masks = append(tr.masks, make([]float32, opt.Batch*cfg.Cells()))
	}
	return tr, nil
}

// batchIndices returns the dataset indices of step s: epochs are shuffled
// permutations (drop_last), a pure function of (seed, step).
func (tr *Trainer) batchIndices(step int) []int {
	B := tr.Opt.Batch
	per := tr.Data.N / B
	epoch, pos := step/per, (step%per)*B
	return tr.Data.Permutation(tr.Opt.Seed, epoch)[pos : pos+B]
}

// prepare draws everything random of step s from a generator seeded by
// (seed, s), so a resumed run repeats exactly what an uninterrupted one does.
func (tr *Trainer) prepare(step int) error {
	cfg, N, Cin, Cd := tr.Cfg, tr.Cfg.Cells(), tr.Cfg.InChannels, tr.Net.Cd
	r := rand.New(rand.NewPCG(tr.Opt.Seed^0x7472616e, uint64(step)))
	idx := tr.batchIndices(step)
	zero(tr.s0)
	zero(tr.y)
	for b, di := range idx {
		t := r.IntN(tr.Sched.Len())
		tr.t[b] = t
		sa, sb := float32(tr.Sched.SqrtAlphasCumprod[t]), float32(tr.Sched.SqrtOneMinusAlphasCumprod[t])
		img := tr.Data.Image(di)
		for c := 0; c < N; c++ {
			row := b*N + c
			for k := 0; k < Cin; k++ {
				e := float32(r.NormFloat64())
				x0 := img[c*Cin+k]
				tr.x0[row*Cin+k], tr.eps[row*Cin+k] = x0, e
				xt := sa*x0 + sb*e
				tr.xt[row*Cin+k] = xt
				tr.s0[row*Cd+k] = xt
			}
		}
		// Seed: C_out of the centre cell ~ N(0, 1), everything else zero (docs/model.md §4.3).
		centre := b*N + (cfg.GridH/2)*cfg.GridW + cfg.GridW/2
		for k := 0; k < cfg.OutChannels(); k++ {
			tr.s0[centre*Cd+Cin+k] = float32(r.NormFloat64())
		}
		// Label with per-entry dropout (docs/model.md §4.2): every non-zero entry is
		// dropped independently.
		K := cfg.NumClasses
		if tr.Data.Multi != nil {
			for k, v := range tr.Data.Multi[di*K : (di+1)*K] {
				if v != 0 && r.Float64() >= tr.Opt.LabelDropout {
					tr.y[b*K+k] = v
				}
			}
		} else if r.Float64() >= tr.Opt.LabelDropout {
			tr.y[b*K+tr.Data.Labels[di]] = 1
		}
	}
	tr.drawMasks(r, tr.masks)
	tr.CarriedCalls = 0
	if tr.Opt.CarryProb > 0 && r.Float64() < tr.Opt.CarryProb {
		return tr.carry(r)
	}
	return nil
}

func (tr *Trainer) drawMasks(r *rand.Rand, masks [][]float32) {
	for _, mk := range masks {
		for i := range mk {
			mk[i] = float32(math.Floor(float64(float32(r.Float64()) + tr.Cfg.UpdateRate)))
		}
	}
}

// carry replaces the fresh seed of this step's grids by the state that 1 …
// Options.CarryCalls earlier denoiser calls (no gradient) leave, as Gene Heredity Guidance
// does at sampling time (docs/model.md §5): the official trainer only ever starts from
// a fresh seed, so its models meet carried states for the first time when
// sampling, and a small model's hidden state can then grow without bound
// over the hundreds of carried calls. Each earlier call runs at a slightly
// noisier t' = t + s, s ~ U{1..25} (the stride of 40- to 250-step sampling),
// on x_t' built from the same x0 and ε. The hidden channels are always
// carried; C_out too for half the samples (GHG without CFG) and re-seeded for
// the others (GHG with CFG).
func (tr *Trainer) carry(r *rand.Rand) error {
	cfg, N, Cin, Cd, Cout := tr.Cfg, tr.Cfg.Cells(), tr.Cfg.InChannels, tr.Net.Cd, tr.Cfg.OutChannels()
	B := tr.Opt.Batch
	if tr.pre == nil {
		tr.pre = NewNet(tr.P, B)
		tr.pre.NoGrad = true
		tr.preS = make([]float32, len(tr.s0))
		for m := 0; m < cfg.M; m++ {
			tr.preMasks = append(tr.preMasks, make([]float32, B*N))
		}
	}
	calls := 1 + r.IntN(tr.Opt.LongestCarry())
	tr.CarriedCalls = calls
	// The earlier timesteps, noisiest first.
	ts := make([][]int, calls)
	for b := 0; b < B; b++ {
		t := tr.t[b]
		for c := calls - 1; c >= 0; c-- {
			t = min(t+1+r.IntN(25), tr.Sched.Len()-1)
			if ts[c] == nil {
				ts[c] = make([]int, B)
			}
			ts[c][b] = t
		}
	}
	keepOut := make([]bool, B)
	for b := range keepOut {
		keepOut[b] = r.IntN(2) == 0
	}
	seedCentre := func(st []float32, b int) {
		centre := b*N + (cfg.GridH/2)*cfg.GridW + cfg.GridW/2
		for k := 0; k < Cout; k++ {
			st[centre*Cd+Cin+k] = float32(r.NormFloat64())
		}
	}
	zero(tr.preS)
	for b := 0; b < B; b++ {
		seedCentre(tr.preS, b)
	}
	setXt := func(st []float32, t []int) {
		for b := 0; b < B; b++ {
			sa, sb := float32(tr.Sched.SqrtAlphasCumprod[t[b]]), float32(tr.Sched.SqrtOneMinusAlphasCumprod[t[b]])
			for c := 0; c < N; c++ {
				row := b*N + c
				for k := 0; k < Cin; k++ {
					st[row*Cd+k] = sa*tr.x0[row*Cin+k] + sb*tr.eps[row*Cin+k]
				}
			}
		}
	}
	// The carry rule of one sample from a finished state into the next grid.
	inherit := func(dst, src []float32, b int) {
		for c := 0; c < N; c++ {
			row := (b*N + c) * Cd
			if keepOut[b] {
				copy(dst[row+Cin:row+Cd], src[row+Cin:row+Cd])
			} else {
				for k := 0; k < Cout; k++ {
					dst[row+Cin+k] = 0
				}
				copy(dst[row+Cin+Cout:row+Cd], src[row+Cin+Cout:row+Cd])
			}
		}
		if !keepOut[b] {
			seedCentre(dst, b)
		}
	}
	for c := 0; c < calls; c++ {
		setXt(tr.preS, ts[c])
		tr.drawMasks(r, tr.preMasks)
		out, err := tr.pre.Forward(tr.preS, ts[c], tr.y, tr.preMasks)
		if err != nil {
			return err
		}
		next := tr.s0
		if c+1 < calls {
			next = tr.preS
		}
		for b := 0; b < B; b++ {
			inherit(next, out, b)
		}
	}
	return nil
}

// StepStats reports one optimisation step.
type StepStats struct {
	Step          int
	Loss, MSE, VB float64
}

// TrainStep runs one optimisation step.
func (tr *Trainer) TrainStep() (StepStats, error) {
	if err := tr.prepare(tr.Step); err != nil {
		return StepStats{}, err
	}
	out, err := tr.Net.Forward(tr.s0, tr.t, tr.y, tr.masks)
	if err != nil {
		return StepStats{}, err
	}
	mse, vb, err := tr.Net.Loss(tr.Sched, out, tr.t, tr.x0, tr.xt, tr.eps, tr.dOut, tr.Opt.MinSNR)
	if err != nil {
		return StepStats{}, err
	}
	if math.IsNaN(mse) || math.IsNaN(vb) || math.IsInf(mse+vb, 0) {
		return StepStats{}, fmt.Errorf("step %d: loss is not finite (mse %g, vb %g)", tr.Step, mse, vb)
	}
	tr.P.ZeroGrad()
	tr.Net.Backward(tr.dOut)
	tr.Adam.Update(tr.P)
	tr.Step++
	tr.EMA.Update(tr.P, tr.Step)
	st := StepStats{Step: tr.Step, Loss: mse + vb, MSE: mse, VB: vb}
	tr.acc.Loss += st.Loss
	tr.acc.MSE += mse
	tr.acc.VB += vb
	tr.accN++
	if tr.Step%HistoryEvery == 0 {
		k := float64(tr.accN)
		tr.History = append(tr.History, LossPoint{Step: tr.Step, Loss: tr.acc.Loss / k, MSE: tr.acc.MSE / k, VB: tr.acc.VB / k})
		tr.acc, tr.accN = LossPoint{}, 0
	}
	return st, nil
}

// EMAParams returns a copy of the EMA weights as a parameter set.
func (tr *Trainer) EMAParams() *Params[float32] {
	p, _ := NewParams[float32](tr.Cfg)
	for i, q := range p.List {
		copy(q.W, tr.EMA.W[i])
	}
	return p
}

// MetaTrain is the metadata key of the training summary (trainState as
// JSON) in training-state files and model files; the config goes under
// ckpt.MetaConfig.
const MetaTrain = "geca.train"

type trainState struct {
	Step     int         `json:"step"`
	AdamStep int         `json:"adam_step"`
	Options  Options     `json:"options"`
	Dataset  string      `json:"dataset,omitempty"`
	History  []LossPoint `json:"history,omitempty"`
	WallSecs float64     `json:"wall_seconds"`
}

// StatePath is the training-state file that goes with a model file:
// "model.safetensors" -> "model.train.safetensors".
func StatePath(model string) string {
	return strings.TrimSuffix(model, ".safetensors") + ".train.safetensors"
}

// Save writes the model file (EMA weights under the official names, config in
// the metadata: what every part of the app loads) and, next to it, the
// training-state file (weights, EMA, Adam moments, step) that --resume reads.
// dataset names the data for the record; wall is the training time so far.
func (tr *Trainer) Save(path, dataset string, wall float64) error {
	cj, err := json.Marshal(tr.Cfg)
	if err != nil {
		return err
	}
	ts := trainState{Step: tr.Step, AdamStep: tr.Adam.Step, Options: tr.Opt, Dataset: dataset, History: tr.History, WallSecs: wall}
	tj, err := json.Marshal(ts)
	if err != nil {
		return err
	}
	meta := map[string]string{ckpt.MetaConfig: string(cj), MetaTrain: string(tj), "format": "pt", ckpt.MetaWeights: ckpt.TrainingState}
	ema := map[string]*tensor.Dense{}
	var names []string
	for i, q := range tr.P.List {
		ema[q.Key] = dense(q.Shape, tr.EMA.W[i])
		names = append(names, q.Key)
	}
	// The model file carries only the short summary, not the whole history.
	short := ts
	short.History = nil
	sj, _ := json.Marshal(short)
	if err := ckpt.SaveSafetensors(path, ema, names, map[string]string{ckpt.MetaConfig: string(cj), MetaTrain: string(sj), "format": "pt", ckpt.MetaWeights: "ema"}); err != nil {
		return err
	}
	all := map[string]*tensor.Dense{}
	var an []string
	for i, q := range tr.P.List {
		for _, e := range []struct {
			prefix string
			data   []float32
		}{{"model.", q.W}, {"ema.", tr.EMA.W[i]}, {"adam.m.", tr.Adam.M[i]}, {"adam.v.", tr.Adam.V[i]}} {
			all[e.prefix+q.Key] = dense(q.Shape, e.data)
			an = append(an, e.prefix+q.Key)
		}
	}
	return ckpt.SaveSafetensors(StatePath(path), all, an, meta)
}

// Changes are what a resumed run may change about its model; zero fields
// keep the file's.
type Changes struct {
	// M is the number of updates per denoiser call. No weight depends on
	// M, so a model can be fine-tuned at another M.
	M int
	// UpdateRate is the per-cell update probability of each of the M
	// updates (docs/model.md §3, step 10). No weight depends on it either: a
	// model trained with the official stochastic mask (0.5) can be
	// fine-tuned to update every cell every time (1), so that no cell ends a
	// call updated only once or not at all.
	UpdateRate float32
	// MLP widens the block's MLP to this many hidden units. The new units'
	// first-layer weights get the official initialisation and their
	// second-layer weights start at zero, so the widened model computes
	// exactly what the file's model computes until training moves them. Their
	// EMA starts at their initial values, their first Adam moment at zero and
	// their second at the mean of their tensor's stored ones.
	MLP int
}

// Resume loads a training-state file (or the state file next to a model file)
// and continues training on ds with the options the file was saved with,
// which set may change.
// ch changes the model (its other fields, which fix a weight's meaning, come
// from the file).
func Resume(path string, ds *data.Dataset, ch Changes, set func(*Options)) (*Trainer, float64, error) {
	if !strings.HasSuffix(path, ".train.safetensors") {
		if _, err := os.Stat(StatePath(path)); err == nil {
			path = StatePath(path)
		}
	}
	f, err := readTrainingFile(path)
	if err != nil {
		return nil, 0, err
	}
	var st trainState
	if err := json.Unmarshal([]byte(f.meta[MetaTrain]), &st); err != nil {
		return nil, 0, fmt.Errorf("%s: metadata %q: %v (not a training-state file?)", path, MetaTrain, err)
	}
	stored, err := NewParams[float32](f.cfg) // the shapes in the file
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %v", path, err)
	}
	cfg := f.cfg
	if ch.M > 0 {
		cfg.M = ch.M
	}
	if ch.UpdateRate > 0 {
		cfg.UpdateRate = ch.UpdateRate
	}
	if ch.MLP > 0 {
		if ch.MLP < cfg.MLPDim {
			return nil, 0, fmt.Errorf("%s: the MLP has %d hidden units; it can grow, not shrink to %d", path, cfg.MLPDim, ch.MLP)
		}
		if ch.MLP != cfg.MLPDim {
			cfg.MLPDim, cfg.Name = ch.MLP, ResizedName(cfg.Name, "MLP", ch.MLP)
		}
	}
	p, err := NewParams[float32](cfg)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %v", path, err)
	}
	if cfg.MLPDim != f.cfg.MLPDim {
		initNewUnits(p, f.cfg.MLPDim, st.Options.Seed^uint64(st.Step))
	}
	for i, q := range p.List {
		if err := f.readGrown("model."+q.Key, q.W, q.Shape, stored.List[i].Shape); err != nil {
			return nil, 0, err
		}
	}
	opt := st.Options
	if set != nil {
		set(&opt)
	}
	tr, err := newTrainer(p, opt, ds)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %v", path, err)
	}
	for i, q := range p.List {
		grown := !slices.Equal(q.Shape, stored.List[i].Shape)
		for _, e := range []struct {
			prefix   string
			dst      []float32
			meanFill bool // new entries start at the stored mean (else as newTrainer made them)
		}{
			{"ema.", tr.EMA.W[i], false},
			{"adam.m.", tr.Adam.M[i], false},
			// The run is past Adam's bias correction: a second moment of zero
			// would make the new weights' first hundreds of steps several times
			// larger than the others'.
			{"adam.v.", tr.Adam.V[i], true},
		} {
			if grown && e.meanFill {
				v, err := f.mean(e.prefix + q.Key)
				if err != nil {
					return nil, 0, err
				}
				for k := range e.dst {
					e.dst[k] = v
				}
			}
			if err := f.readGrown(e.prefix+q.Key, e.dst, q.Shape, stored.List[i].Shape); err != nil {
				return nil, 0, err
			}
		}
	}
	tr.Step, tr.Adam.Step, tr.History = st.Step, st.AdamStep, st.History
	return tr, st.WallSecs, nil
}

// initNewUnits gives a model widened from `from` MLP units the official
// initialisation of its new units' first layer, and zero for their
// second-layer weights, so that they change nothing until trained. (The
// stored weights are read over the rest afterwards.)
func initNewUnits(p *Params[float32], from int, seed uint64) {
	p.InitOfficial(seed)
	fc2 := p.Linear(engine.TransformerFFNet3).Weight
	for i := 0; i < fc2.Shape[0]; i++ {
		zero(fc2.W[i*fc2.Shape[1]+from : (i+1)*fc2.Shape[1]])
	}
}

// LoadModelFile reads a model file written by Save (or any safetensors file
// with the official names and "geca.config" metadata): the weights it holds
// (the EMA weights for our files) and its metadata.
func LoadModelFile(path string) (*Params[float32], map[string]string, error) {
	f, err := readTrainingFile(path)
	if err != nil {
		return nil, nil, err
	}
	p, err := NewParams[float32](f.cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %v", path, err)
	}
	for _, q := range p.List {
		if err := f.read(q.Key, q.W); err != nil {
			return nil, nil, err
		}
	}
	return p, f.meta, nil
}
