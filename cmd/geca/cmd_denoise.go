package main

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"geca/engine"
	"geca/engine/ckpt"
	"geca/internal/npy"

	"gorgonia.org/tensor"
)

func init() {
	register(&command{
		name:    "denoise",
		summary: "run one denoiser call (M cell updates) on a given grid, for checking a checkpoint against PyTorch",
		usage:   "--ckpt FILE --state IN.npy --t T (--y Y.npy | --class K) [--M 12] [--update-rate 0.5] [--masks MASKS.npy] [--seed N] --out OUT.npy [--device cpu|cuda|auto | --engine HOST:PORT] [--max-memory SIZE]",
		run:     runDenoise,
	})
}

func runDenoise(args []string) error {
	c := commands["denoise"]
	fs := newFlags(c)
	ckptPath := fs.String("ckpt", "", "checkpoint: official .pt, .safetensors, or .npz of tensors keyed by the official state_dict names (optionally prefixed w/)")
	preset := fs.String("config", "", "model preset (GeCA-S or GeCA-XS) instead of the one the file implies; needed for an .npz without a config array")
	weights := fs.String("weights", "", "which weights of an official checkpoint: ema (default when present) or model")
	heads := fs.Int("heads", 0, "attention heads when the checkpoint does not say (0: derive)")
	statePath := fs.String("state", "", "input grid, float32 (B, C_in+C_out+C_h, H, W), channel-first as in PyTorch")
	tFlag := fs.String("t", "", "original diffusion timestep (0 to 999): one value for every sample, or one per sample, comma-separated")
	yPath := fs.String("y", "", "labels, float32 (B, K) or (K,) multi-hot")
	class := fs.Int("class", -2, "one class index for every sample (-1: the null label, all zeros)")
	mFlag := fs.Int("M", -1, "cell updates (default: the number of masks in --masks, else the config's M)")
	rate := fs.Float64("update-rate", 0.5, "per-cell update probability; 1 updates every cell (no mask), as the official code does")
	masksPath := fs.String("masks", "", "update masks, (M, B, 1, H, W) of 0/1 (replaces the random masks)")
	seed := fs.Uint64("seed", 0, "seed of the random update masks")
	outPath := fs.String("out", "", "output grid after the call, float32 (B, C, H, W)")
	dev := addDeviceFlags(fs, "cpu")
	maxMem := addMemoryFlag(fs)
	if err := parseFlags(fs, c, args); err != nil {
		return err
	}
	if err := applyMemoryFlag(maxMem); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case *ckptPath == "":
		return usagef("--ckpt FILE is required\nusage: geca denoise %s", c.usage)
	case *statePath == "":
		return usagef("--state IN.npy is required")
	case *outPath == "":
		return usagef("--out OUT.npy is required")
	case *tFlag == "":
		return usagef("--t T is required")
	case (*yPath == "") == (*class == -2):
		return usagef("give exactly one of --y Y.npy and --class K")
	case !(*rate > 0 && *rate <= 1):
		return usagef("--update-rate %v out of range (0, 1]", *rate)
	case *mFlag < -1 || *mFlag > engine.MaxM:
		return usagef("--M %d out of range [0, %d]", *mFlag, engine.MaxM)
	}
	if err := dev.check(); err != nil {
		return err
	}
	if err := checkOutputs([]output{{"--out", *outPath}}, *ckptPath, *statePath, *yPath, *masksPath); err != nil {
		return err
	}

	in, err := npy.ReadFile(*statePath)
	if err != nil {
		return err
	}
	if len(in.Shape) != 4 {
		return fmt.Errorf("%s: shape %v, want (B, C_in+C_out+C_h, H, W)", *statePath, in.Shape)
	}
	b, ch, h, w := in.Shape[0], in.Shape[1], in.Shape[2], in.Shape[3]
	if b < 1 || h < 1 || w < 1 {
		return fmt.Errorf("%s: empty grid of shape %v", *statePath, in.Shape)
	}
	model, err := loadDenoiser(*ckptPath, *preset, ckpt.Options{Weights: *weights, Heads: *heads}, h, w)
	if err != nil {
		return err
	}
	cfg := model.Cfg
	if ch != cfg.CellDim() {
		return fmt.Errorf("%s: %d channels, but %s cells have C_in+C_out+C_h = %d+%d+%d = %d", *statePath, ch, cfg.Name, cfg.InChannels, cfg.OutChannels(), cfg.HiddenChannels, cfg.CellDim())
	}
	if err := engine.CheckCall(cfg, b); err != nil {
		return fmt.Errorf("%s: %w", *statePath, err)
	}
	if i := firstNonFinite(in.Data); i >= 0 {
		return fmt.Errorf("%s: value %d is %v; a grid must be finite", *statePath, i, in.Data[i])
	}
	st, err := engine.FromNCHW(b, ch, h, w, in.Data)
	if err != nil {
		return fmt.Errorf("%s: %w", *statePath, err)
	}

	ts, err := parseTimesteps(*tFlag, b)
	if err != nil {
		return usagef("--t: %v", err)
	}
	ys, err := denoiseLabels(*yPath, *class, b, cfg.NumClasses)
	if err != nil {
		return err
	}
	cond, err := model.Condition(ts, ys)
	if err != nil {
		return err
	}

	M := cfg.M
	var masks *npy.Array
	if *masksPath != "" {
		if masks, err = npy.ReadFile(*masksPath); err != nil {
			return err
		}
		if len(masks.Shape) != 5 || masks.Shape[1] != b || masks.Shape[2] != 1 || masks.Shape[3] != h || masks.Shape[4] != w {
			return fmt.Errorf("%s: shape %v, want (M, %d, 1, %d, %d)", *masksPath, masks.Shape, b, h, w)
		}
		M = masks.Shape[0]
		if M > engine.MaxM {
			return fmt.Errorf("%s holds %d masks, more than the %d updates of a call", *masksPath, M, engine.MaxM)
		}
		if *mFlag >= 0 && *mFlag != M {
			return fmt.Errorf("%s holds %d masks but --M is %d", *masksPath, M, *mFlag)
		}
	} else if *mFlag >= 0 {
		M = *mFlag
	}

	be, err := dev.open()
	if err != nil {
		return err
	}
	defer be.close()
	if be.why != "" || be.client != nil || be.accel != nil {
		fmt.Fprintf(os.Stderr, "geca denoise: %s\n", be.note())
	}
	rm, err := be.use(model)
	if err != nil {
		return err
	}
	if rm != nil {
		var md []float32
		if masks != nil {
			md = masks.Data
		}
		out, err := rm.Denoise(st, ts, ys, M, float32(*rate), *seed, md)
		if err != nil {
			return err
		}
		if err := gridTrouble(out, "after the call"); err != nil {
			return err
		}
		return npy.WriteFile(*outPath, []int{b, ch, h, w}, out.ToNCHW())
	}
	u := model.NewUpdater(b)
	cells := b * h * w
	// Each update is checked (on the CPU, where it costs nothing beside the
	// update) so that a broken model is caught where it breaks.
	var each func(m int, st *engine.State) error
	if be.accel == nil {
		each = func(m int, st *engine.State) error {
			return gridTrouble(st, fmt.Sprintf("after update %d of %d", m+1, M))
		}
	}
	switch {
	case masks != nil:
		for m := 0; m < M; m++ {
			if err := u.Update(st, cond, masks.Data[m*cells:(m+1)*cells], nil); err != nil {
				return fmt.Errorf("%s: mask %d: %w", *masksPath, m, err)
			}
			if each != nil {
				if err := each(m, st); err != nil {
					return err
				}
			}
		}
	case *rate >= 1:
		if err := u.Call(st, cond, M, 1, nil, each); err != nil {
			return err
		}
	default:
		if err := u.Call(st, cond, M, float32(*rate), engine.NewStream(*seed, engine.StreamMask), each); err != nil {
			return err
		}
	}
	if err := gridTrouble(st, "after the call"); err != nil {
		return err
	}
	return npy.WriteFile(*outPath, []int{b, ch, h, w}, st.ToNCHW())
}

// gridTrouble reports a non-finite value of a grid, naming when (after
// which update) and where (grid, cell, channel) it is.
func gridTrouble(st *engine.State, when string) error {
	i := firstNonFinite(st.Data)
	if i < 0 {
		return nil
	}
	cell := i / st.C
	return fmt.Errorf("the grid became non-finite %s: grid %d, cell (%d, %d), channel %d is %v",
		when, cell/(st.H*st.W), cell%(st.H*st.W)/st.W, cell%st.W, i%st.C, st.Data[i])
}

// loadDenoiser reads a model for an h×w grid. The grid is not part of the
// weights (positional codes are computed), so it comes from the state.
func loadDenoiser(path, preset string, opt ckpt.Options, h, w int) (*engine.Model, error) {
	var cfg engine.Config
	var tensors map[string]*tensor.Dense
	switch {
	case strings.HasSuffix(path, ".npz"):
		arrays, err := npy.ReadNPZ(path)
		if err != nil {
			return nil, err
		}
		prefixed := false
		for k := range arrays {
			if strings.HasPrefix(k, "w/") {
				prefixed = true
				break
			}
		}
		tensors = map[string]*tensor.Dense{}
		for k, a := range arrays {
			name := k
			if prefixed {
				var ok bool
				if name, ok = strings.CutPrefix(k, "w/"); !ok {
					continue
				}
			} else if k == "config" {
				continue
			}
			tensors[name] = tensor.New(tensor.WithShape(a.Shape...), tensor.WithBacking(a.Data))
		}
		k := 0
		if yw, ok := tensors[engine.YEmbedderTable0.WeightKey()]; ok && yw.Dims() == 2 {
			k = yw.Shape()[1]
		}
		switch {
		case preset != "":
			if cfg, err = engine.Preset(preset, max(k, 1)); err != nil {
				return nil, usagef("--config: %v", err)
			}
		case arrays["config"] != nil:
			a := arrays["config"]
			if len(a.Data) != 8 {
				return nil, fmt.Errorf("%s: config array has %d values, want 8 (H, W, C_in, C_h, D, heads, mlp, K)", path, len(a.Data))
			}
			v := make([]int, 8)
			for i, x := range a.Data {
				if x != float32(int(x)) {
					return nil, fmt.Errorf("%s: config value %v is not an integer", path, x)
				}
				v[i] = int(x)
			}
			cfg = engine.Config{Name: path, InChannels: v[2], HiddenChannels: v[3], EmbedDim: v[4], Heads: v[5], MLPDim: v[6], NumClasses: v[7], M: 12, UpdateRate: 0.5}
		default:
			return nil, usagef("%s has no config array: give --config GeCA-S or GeCA-XS", path)
		}
	default:
		ck, err := ckpt.Load(path, opt)
		if err != nil {
			return nil, err
		}
		tensors = ck.Tensors
		if preset != "" {
			k := 1
			if yw, ok := tensors[engine.YEmbedderTable0.WeightKey()]; ok && yw.Dims() == 2 {
				k = yw.Shape()[1]
			}
			if cfg, err = engine.Preset(preset, k); err != nil {
				return nil, usagef("--config: %v", err)
			}
		} else if cfg, err = ck.Config(); err != nil {
			return nil, err
		}
	}
	cfg.GridH, cfg.GridW = h, w
	m, err := engine.NewModel(cfg, tensors)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// maxDenoiseT is the last timestep of the 1000-step process GeCA is trained
// with.
const maxDenoiseT = 999

func parseTimesteps(s string, b int) ([]int, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 1 && len(parts) != b {
		return nil, fmt.Errorf("%d values for a batch of %d", len(parts), b)
	}
	ts := make([]int, b)
	for i := range ts {
		p := strings.TrimSpace(parts[min(i, len(parts)-1)])
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || v > maxDenoiseT {
			return nil, fmt.Errorf("%q is not a timestep (an integer from 0 to %d)", p, maxDenoiseT)
		}
		ts[i] = v
	}
	return ts, nil
}

func denoiseLabels(path string, class, b, k int) ([][]float32, error) {
	ys := make([][]float32, b)
	if path == "" {
		if class < -1 || class >= k {
			return nil, usagef("--class %d out of range [-1, %d)", class, k)
		}
		for i := range ys {
			ys[i] = make([]float32, k)
			if class >= 0 {
				ys[i][class] = 1
			}
		}
		return ys, nil
	}
	a, err := npy.ReadFile(path)
	if err != nil {
		return nil, err
	}
	switch {
	case len(a.Shape) == 1 && a.Shape[0] == k:
		for i := range ys {
			ys[i] = a.Data
		}
	case len(a.Shape) == 2 && a.Shape[0] == b && a.Shape[1] == k:
		for i := range ys {
			ys[i] = a.Data[i*k : (i+1)*k]
		}
	default:
		return nil, fmt.Errorf("%s: shape %v, want (%d, %d) or (%d,)", path, a.Shape, b, k, k)
	}
	for i, v := range a.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("%s: value %v at index %d is not finite", path, v, i)
		}
	}
	return ys, nil
}
