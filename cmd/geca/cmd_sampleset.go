package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"image"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"

	"geca/assets"
	"geca/engine/ckpt"
	"geca/engine/data"
	"geca/engine/sample"
	"geca/engine/vae"
	"geca/internal/evalset"
	"geca/internal/filehash"
	"geca/internal/progress"
	"geca/internal/safefile"
	"geca/internal/shard"
	"geca/render"
)

func init() {
	register(&command{
		name:    "sample-set",
		summary: "make an evaluation set: N samples as PNGs (resumable, shardable over machines) and the .npz an FID evaluator reads",
		usage:   "[--ckpt FILE] --num-samples N --out DIR [--shard K/N|auto] [--labels-from LATENTS] [--steps 250] [--cfg 1.5] [--M m] [--clip-x0] [--seed 0] [--vae DIR | --approx] [--jobs 1] [--npz FILE] [--max-memory SIZE] | --pack DIR[,DIR...] --npz FILE",
		run:     runSampleSet,
	})
}

func runSampleSet(args []string) error {
	c := commands["sample-set"]
	fs := newFlags(c)
	mf := addModelFlags(fs, "checkpoint (.pt or .safetensors); default: a built-in model, --model")
	ckptPath := mf.ckpt
	weights := fs.String("weights", "", "which weights of a training checkpoint: ema (default) or model")
	num := fs.Int("num-samples", 0, "samples in the whole set (indices 0 … N−1, over all shards)")
	out := fs.String("out", "", "folder of this shard's PNGs and settings.json (rerun to resume)")
	shardFlag := fs.String("shard", "", "make only shard K/N of the indices (i mod N = K); auto: from a Slurm job array or a Kubernetes Indexed Job")
	labelsFrom := fs.String("labels-from", "", "latents folder in the official layout: sample i gets the label of its sample i mod count, the class mix of the official evaluation; default: class i mod K")
	steps := fs.String("steps", "", "respaced steps (default: "+assets.OfficialSampler.Steps+", the official setting; built-in models: "+builtinDefaults(samplerSteps)+")")
	method := fs.String("method", "", "ddpm or ddim (default: from --steps)")
	cfgScale := fs.Float64("cfg", -1, fmt.Sprintf("classifier-free guidance scale (default: %g, the official setting; built-in models: %s)", assets.OfficialSampler.CFG, builtinDefaults(samplerCFG)))
	mFlag := fs.Int("M", 0, "cell updates per denoiser call (0: the model's)")
	ghg := fs.String("ghg", "on", "Gene Heredity Guidance: on or off (built-in models: "+builtinDefaults(samplerGHG)+")")
	rate := fs.Float64("update-rate", 0, "per-cell update probability (0: the model's)")
	clip := fs.Bool("clip-x0", false, clipX0Help)
	seed := fs.Uint64("seed", 0, "seed of the set: sample i runs with its own seed mixed from this and i")
	vaeDir := fs.String("vae", "", "latent models: decode with this AutoencoderKL (diffusers folder or .safetensors)")
	approx := fs.Bool("approx", false, "latent models without --vae: write the cheap latent preview (not for FID)")
	jobs := fs.Int("jobs", 1, "samples made at once (each also uses the cores for its own updates)")
	npzOut := fs.String("npz", "", "pack the whole set into this .npz (arr_0, uint8 N×H×W×3) once it is complete")
	maxMem := addMemoryFlag(fs)
	pack := fs.String("pack", "", "comma-separated folders of the shards of one set: pack them into --npz instead of sampling")
	if err := parseFlags(fs, c, args); err != nil {
		return err
	}
	if err := applyMemoryFlag(maxMem); err != nil {
		return err
	}
	if *pack != "" {
		if *npzOut == "" {
			return usagef("--pack needs --npz FILE")
		}
		dirs := strings.Split(*pack, ",")
		return packSet(dirs, *npzOut)
	}
	if *num < 1 || *num > 10_000_000 {
		return usagef("--num-samples %d out of range [1, 10000000]", *num)
	}
	if *out == "" {
		return usagef("--out DIR is required\nusage: geca sample-set %s", c.usage)
	}
	if *jobs < 1 || *jobs > 256 {
		return usagef("--jobs %d out of range [1, 256]", *jobs)
	}
	if *npzOut != "" {
		if err := safefile.CheckOutput("--npz", *npzOut, *ckptPath, *vaeDir); err != nil {
			return err
		}
	}
	sh, err := shard.Parse(*shardFlag, nil)
	if err != nil {
		return usagef("--shard: %v", err)
	}
	ghgOn, err := parseSwitch("--ghg", *ghg)
	if err != nil {
		return err
	}

	// The model and its bytes' hash (settings tell sets of other models apart).
	model, _, builtin, err := mf.load(ckpt.Options{Weights: *weights})
	if err != nil {
		return err
	}
	var modelName, modelHash string
	if builtin != nil {
		modelName, modelHash = builtin.File, builtin.Hash()
	} else {
		modelName = filepath.Base(*ckptPath)
		if modelHash, err = filehash.File(*ckptPath); err != nil {
			return err
		}
	}
	cfg := model.Cfg
	defaults := assets.OfficialSampler
	if builtin != nil {
		defaults = builtin.Sampler
	}
	if *steps == "" {
		*steps = defaults.Steps
	}
	if *cfgScale < 0 {
		*cfgScale = float64(defaults.CFG)
	}
	if !flagSet(fs, "ghg") {
		ghgOn = defaults.GHG
	}

	// Labels: class i mod K, or the official evaluation's mix.
	classes := "balanced: sample i has class i mod K"
	label := func(i int) []float32 {
		y := make([]float32, cfg.NumClasses)
		y[i%cfg.NumClasses] = 1
		return y
	}
	if *labelsFrom != "" {
		ds, err := data.LoadLatents(*labelsFrom)
		if err != nil {
			return err
		}
		if len(ds.Classes) != cfg.NumClasses {
			return fmt.Errorf("--labels-from %s: %d classes, the model has %d", *labelsFrom, len(ds.Classes), cfg.NumClasses)
		}
		h := sha256.New()
		for _, v := range labelsOf(ds) {
			fmt.Fprintf(h, "%g,", v)
		}
		classes = fmt.Sprintf("labels of %s (%d, sha256 %x): sample i has the label of its sample i mod %d", filepath.Base(*labelsFrom), ds.N, h.Sum(nil)[:8], ds.N)
		all := labelsOf(ds)
		label = func(i int) []float32 {
			k := i % ds.N
			return all[k*cfg.NumClasses : (k+1)*cfg.NumClasses]
		}
	}

	// How samples become images.
	var dec vae.LatentDecoder
	decoder := "pixels"
	h, w, ch := cfg.GridH, cfg.GridW, min(cfg.InChannels, 3)
	if ch == 2 {
		ch = 3
	}
	switch {
	case !cfg.Latent:
		if *vaeDir != "" || *approx {
			return usagef("%s is a pixel-space model: --vae and --approx do not apply", modelName)
		}
	case *vaeDir != "":
		if dec, err = vae.Load(*vaeDir); err != nil {
			return err
		}
		if dec.LatentChannels() != cfg.InChannels {
			return fmt.Errorf("%s: the VAE takes %d latent channels, the model makes %d", *vaeDir, dec.LatentChannels(), cfg.InChannels)
		}
		vh, err := filehash.Path(*vaeDir)
		if err != nil {
			return err
		}
		decoder = fmt.Sprintf("vae %s sha256 %s", filepath.Base(*vaeDir), vh)
		h, w = dec.OutputSize(cfg.GridH, cfg.GridW)
		ch = 3
	case *approx:
		decoder, ch = "latent preview", 3
	default:
		return usagef("%s is a latent model: give --vae DIR to decode the samples (or --approx for previews, not for FID)", modelName)
	}

	opt := sample.Options{Steps: *steps, Method: *method, GHG: ghgOn, CFG: float32(*cfgScale), M: *mFlag, UpdateRate: float32(*rate), ClipX0: *clip, N: 1, SnapshotBytes: -1}
	if _, err := sample.New(model, withLabel(opt, label(0), 0)); err != nil {
		return usagef("%v", err)
	}
	mEff, rateEff := opt.M, opt.UpdateRate
	if mEff == 0 {
		mEff = cfg.M
	}
	if rateEff == 0 {
		rateEff = cfg.UpdateRate
	}
	folder, err := evalset.Open(*out, evalset.Settings{Model: modelName, ModelHash: modelHash, NumSamples: *num, Seed: *seed, Classes: classes,
		Steps: *steps, Method: *method, CFG: float32(*cfgScale), M: mEff, GHG: ghgOn, UpdateRate: rateEff, ClipX0: *clip, Decoder: decoder,
		Height: h, Width: w, Channels: ch}, sh)
	if err != nil {
		return err
	}
	todo := folder.Todo()
	mine := len(sh.Items(*num))
	fmt.Fprintf(os.Stderr, "geca sample-set: %s, shard %v: %d of its %d samples to make (%d done), steps %s, CFG %g%s, M %d, GHG %v, %s → %s\n",
		modelName, sh, len(todo), mine, mine-len(todo), *steps, *cfgScale, clipNote(*clip), mEff, ghgOn, decoder, *out)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	bar := progress.New(os.Stderr, len(todo), "samples")
	makeOne := func(i int) error {
		x, err := sample.Run(ctx, model, withLabel(opt, label(i), evalset.SampleSeed(*seed, i)))
		if err != nil {
			return fmt.Errorf("sample %d: %w", i, err)
		}
		for _, v := range x {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("sample %d: the model produced non-finite values (a broken or untrained checkpoint?)", i)
			}
		}
		var img image.Image
		switch {
		case dec != nil:
			rgb, err := dec.Decode(x, 1, cfg.GridH, cfg.GridW)
			if err != nil {
				return fmt.Errorf("sample %d: %w", i, err)
			}
			ims, err := vae.Images(rgb, 1, h, w)
			if err != nil {
				return err
			}
			img = ims[0]
		case cfg.Latent:
			img = render.LatentImage(x, cfg.InChannels, cfg.GridH, cfg.GridW, 0, vae.Preview)
		case ch == 1:
			img = greyImage(render.PixelImage(x, cfg.InChannels, cfg.GridH, cfg.GridW, 0))
		default:
			img = render.PixelImage(x, cfg.InChannels, cfg.GridH, cfg.GridW, 0)
		}
		return folder.Put(i, img)
	}
	err = runJobs(ctx, todo, *jobs, makeOne, func(done int) { bar.Set(done, "") })
	bar.Done()
	left := len(folder.Todo())
	if ctx.Err() != nil {
		fmt.Fprintf(os.Stderr, "geca sample-set: interrupted: %d of the shard's %d samples are written, %d left; run the same command again to continue\n", mine-left, mine, left)
		return errSampleSetInterrupted
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "geca sample-set: shard %v complete: %d samples in %s\n", sh, mine, *out)
	if *npzOut != "" {
		if sh != shard.All {
			return usagef("--npz with --shard: pack the shards' folders once all are done (geca sample-set --pack DIR,DIR,... --npz FILE)")
		}
		return packSet([]string{*out}, *npzOut)
	}
	return nil
}

// errSampleSetInterrupted ends a command that stopped on Ctrl-C after keeping its work.
var errSampleSetInterrupted = fmt.Errorf("interrupted")

func withLabel(opt sample.Options, y []float32, seed uint64) sample.Options {
	opt.Labels, opt.Seed = [][]float32{y}, seed
	return opt
}

// runJobs calls do for every index, jobs at a time, and stops starting new
// ones after the first error or when ctx ends; done counts finished ones.
func runJobs(ctx context.Context, idx []int, jobs int, do func(int) error, done func(int)) error {
	var (
		mu       sync.Mutex
		next, ok int
		first    error
		wg       sync.WaitGroup
	)
	for w := 0; w < jobs; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if first != nil || ctx.Err() != nil || next == len(idx) {
					mu.Unlock()
					return
				}
				i := idx[next]
				next++
				mu.Unlock()
				err := do(i)
				mu.Lock()
				if err != nil && first == nil && ctx.Err() == nil {
					first = err
				}
				if err == nil {
					ok++
					done(ok)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

func packSet(dirs []string, out string) error {
	for i := range dirs {
		dirs[i] = strings.TrimSpace(dirs[i])
	}
	if err := safefile.CheckOutput("--npz", out); err != nil {
		return err
	}
	var bar *progress.Bar
	err := evalset.Pack(dirs, out, func(done, total int) {
		if bar == nil {
			bar = progress.New(os.Stderr, total, "packing")
		}
		bar.Set(done, "")
	})
	bar.Done()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "geca sample-set: wrote %s (arr_0: uint8, N×H×W×3)\n", out)
	return nil
}

// greyImage keeps one channel of an RGBA image whose channels are equal.
func greyImage(src *image.RGBA) *image.Gray {
	g := image.NewGray(src.Bounds())
	for i := range g.Pix {
		g.Pix[i] = src.Pix[4*i]
	}
	return g
}

func labelsOf(ds *data.Dataset) []float32 {
	if ds.Multi != nil {
		return ds.Multi
	}
	out := make([]float32, ds.N*len(ds.Classes))
	for i, l := range ds.Labels {
		out[i*len(ds.Classes)+l] = 1
	}
	return out
}

func parseSwitch(flag, v string) (bool, error) {
	switch strings.ToLower(v) {
	case "on", "true", "1", "yes":
		return true, nil
	case "off", "false", "0", "no":
		return false, nil
	}
	return false, usagef("%s %q: want on or off", flag, v)
}
