package main

import (
	"fmt"
	"image/color"
	"maps"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"geca/engine"
	"geca/engine/data"
	"geca/engine/train"
	"geca/internal/membudget"
	"geca/internal/progress"
)

func init() {
	register(&command{
		name:    "train",
		summary: "train a GeCA model on Fashion-MNIST or a folder of images",
		usage:   "--data fashion-mnist | --emoji garden|LIST | --images DIR [--vae FILE] | --latents DIR (see geca encode) [--config default|emoji|tiny|XS|S] [--embed D] [--heads N] [--mlp N] [--hidden N] [--pos-code 1d|2d] [--prediction eps|v] [--size N] [--M 8] [--update-rate 0.5] [--batch 32] [--steps N | --minutes N] [--lr 1e-4] [--resume FILE] [--max-memory SIZE] --out FILE.safetensors",
		run:     runTrain,
	})
}

func runTrain(args []string) error {
	c := commands["train"]
	fs := newFlags(c)
	dataName := fs.String("data", "", "built-in dataset: fashion-mnist (Debian package dataset-fashion-mnist) or emoji (colour emoji from Debian's fonts-noto-color-emoji, see --emoji)")
	emojiList := fs.String("emoji", "garden", "train on colour emoji (implies --data emoji): the emoji, one class each: a comma-separated list (code points or sequences) or a set name (garden: "+strings.Join(data.EmojiSets["garden"].Emoji, " ")+")")
	emojiFont := fs.String("emoji-font", data.EmojiFontPath, "with --data emoji: the colour emoji font (CBDT/CBLC bitmaps)")
	emojiVariants := fs.Int("emoji-variants", 64, "with --data emoji: training images per emoji (the first centred, the others shifted)")
	emojiShift := fs.Int("emoji-shift", 2, "with --data emoji: largest shift of a variant, in pixels")
	dataDir := fs.String("data-dir", "", "directory holding the Fashion-MNIST IDX files (default "+data.FashionMNISTDir+")")
	images := fs.String("images", "", "folder of images, one subfolder per class")
	rgb := fs.Bool("rgb", false, "with --images: train on RGB (3 channels) instead of grayscale")
	vaePath := fs.String("vae", "", "with --images: encode the images with this AutoencoderKL (diffusers folder or .safetensors, SD single files too) and train on the latents; --size is then the image size")
	vaeSample := fs.Bool("vae-sample", false, "with --vae: use a sample of the VAE posterior (as extract_features.py does, seeded by --seed) instead of its mean")
	vaeFlip := fs.Bool("vae-flip", false, "with --vae: mirror each image left to right with probability 1/2 before encoding (as extract_features.py, seeded by --seed)")
	latents := fs.String("latents", "", "folder of pre-extracted SD-VAE latents: features*/{i}.npy (1,4,32,32) and labels*/{i}.npy (1,K), as extract_features.py writes")
	config := fs.String("config", "default", "model size: default (the embedded Fashion-MNIST model), emoji (the same block, named GeCA-Emoji), tiny, XS, S")
	size := fs.Int("size", 0, "grid side in pixels (0: 28 for Fashion-MNIST, 32 for folders); Fashion-MNIST is padded with -1; with --vae the image side (0: 256, a multiple of 8; the grid is size/8 for SD VAEs)")
	m := fs.Int("M", 0, "cell updates per denoiser call (0: the config's, or with --resume the resumed model's)")
	rate := fs.Float64("update-rate", 0, "per-cell update probability of each update, above 0 and at most 1 (0: the config's, 0.5, or with --resume the resumed model's); 1 updates every cell every time")
	hidden := fs.Int("hidden", 0, "hidden channels C_h (0: the config's)")
	embed := fs.Int("embed", 0, "embedding width D of the block (0: the config's); a multiple of --heads")
	heads := fs.Int("heads", 0, "attention heads (0: the config's)")
	posCode := fs.String("pos-code", "", "positional code of a new model: 1d (the official code over the row-major cell index) or 2d (DiT's code over row and column); empty: the config's")
	prediction := fs.String("prediction", "", "what a new model predicts: eps (the official noise prediction) or v (velocity, which keeps the noisy steps' picture from being a small difference of large numbers, docs/model.md §6.5); empty: the config's")
	mlp := fs.Int("mlp", 0, "hidden width of the block's MLP (0: the config's); with --resume it widens the resumed model's MLP, whose new units start with no effect")
	batch := fs.Int("batch", 32, "samples per optimisation step")
	steps := fs.Int("steps", 0, "stop after this many steps in total (0: no limit)")
	minutes := fs.Float64("minutes", 0, "stop after this many minutes of this run (0: no limit)")
	lr := fs.Float64("lr", 1e-4, "AdamW learning rate")
	ema := fs.Float64("ema", 0.9999, "EMA decay")
	emaWarmup := fs.Bool("ema-warmup", false, "EMA decay min(ema, (1+step)/(10+step)), for short runs")
	seed := fs.Uint64("seed", 1, "seed of initialisation, batches and noise")
	minSNR := fs.Float64("min-snr", 0, "weight the noise MSE by min(SNR_t, γ)/SNR_t (Min-SNR-γ, e.g. 5), moving the model's effort from the nearly clean timesteps to the noisy ones; 0 is the official unweighted loss")
	carryCalls := fs.Int("carry-calls", 2, "with --carry: a carried state has been through 1 … N earlier calls (sampling carries it through every timestep)")
	carry := fs.Float64("carry", 0, "fraction of steps that start from the state an earlier call left (GHG-style carry) instead of a fresh seed; 0 is the official recipe")
	perClass := fs.Int("per-class", 0, "use at most this many training images per class (0: all)")
	resume := fs.String("resume", "", "continue from this checkpoint (its .train.safetensors state file), with the batch, learning rate, EMA, carry and min-SNR it was saved with unless those flags are given")
	out := fs.String("out", "", "output model file (.safetensors); the training state goes to NAME.train.safetensors")
	every := fs.Float64("save-minutes", 5, "write a checkpoint every this many minutes")
	previewEvery := fs.Float64("preview-minutes", 15, "write a sample grid (2 per class, EMA weights) every this many minutes (0: only at the end)")
	previewSteps := fs.Int("preview-steps", 25, "respaced DDPM steps of the preview samples")
	logEvery := fs.Int("log-every", 10, "print a log line every this many steps (when stderr is not a terminal)")
	device := addCPUDeviceFlag(fs)
	maxMem := addMemoryFlag(fs)
	if err := parseFlags(fs, c, args); err != nil {
		return err
	}
	if err := applyMemoryFlag(maxMem); err != nil {
		return err
	}
	if err := checkCPUDevice(*device, "train"); err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out FILE is required\nusage: geca train %s", c.usage)
	}
	if !strings.HasSuffix(*out, ".safetensors") {
		return usagef("--out %q must end in .safetensors", *out)
	}
	if flagSet(fs, "emoji") {
		// --emoji LIST says which data as clearly as --data emoji
		if *dataName != "" && !strings.EqualFold(*dataName, "emoji") {
			return usagef("--emoji trains on emoji; it cannot go with --data %s", *dataName)
		}
		*dataName = "emoji"
	}
	sources := 0
	for _, v := range []string{*dataName, *images, *latents} {
		if v != "" {
			sources++
		}
	}
	if sources != 1 {
		return usagef("give exactly one of --data fashion-mnist|emoji, --images DIR and --latents DIR")
	}
	if *vaePath != "" && *images == "" {
		return usagef("--vae FILE encodes the images of --images DIR; it needs --images")
	}
	if *vaePath != "" && *size%8 != 0 {
		return usagef("--size %d: with --vae it is the image size and must be a multiple of 8", *size)
	}
	if *vaeSample && *vaePath == "" {
		return usagef("--vae-sample needs --vae FILE")
	}
	if *vaeFlip && *vaePath == "" {
		return usagef("--vae-flip needs --vae FILE")
	}
	for _, r := range []struct {
		flag, want string
		ok         bool
	}{
		{"batch", fmt.Sprintf("1 … %d", engine.MaxBatch), *batch >= 1 && *batch <= engine.MaxBatch},
		{"steps", "0 or more", *steps >= 0}, {"minutes", "0 or more", *minutes >= 0},
		{"lr", "above 0", *lr > 0 && !math.IsInf(*lr, 0)}, {"ema", "0 ≤ decay < 1", *ema >= 0 && *ema < 1},
		{"size", "0 or more", *size >= 0}, {"M", fmt.Sprintf("0 … %d", engine.MaxM), *m >= 0 && *m <= engine.MaxM},
		{"hidden", "0 or more", *hidden >= 0}, {"embed", "0 or more", *embed >= 0},
		{"heads", "0 or more", *heads >= 0}, {"mlp", "0 or more", *mlp >= 0},
		{"update-rate", "0 < rate ≤ 1, or 0 for the model's", *rate >= 0 && *rate <= 1},
		{"carry", "0 … 1", *carry >= 0 && *carry <= 1},
		{"carry-calls", "1 … 50", *carryCalls >= 1 && *carryCalls <= 50},
		{"min-snr", "γ > 0, or 0 for the unweighted loss", *minSNR >= 0 && !math.IsInf(*minSNR, 0)},
	} {
		if !r.ok {
			return usagef("--%s %s: want %s", r.flag, fs.Lookup(r.flag).Value, r.want)
		}
	}
	if *resume != "" {
		// The block's shape is the resumed file's; saying otherwise must not
		// be ignored quietly. M is no shape (--M continues at another M), and
		// --mlp widens the MLP without changing what the model computes.
		for _, name := range []string{"config", "hidden", "embed", "heads", "pos-code", "prediction"} {
			if flagSet(fs, name) {
				return usagef("--%s cannot change a resumed model (its shape comes from %s); --M and --mlp can", name, *resume)
			}
		}
	}
	// The model, its training state and its pictures are written over and
	// over: none of them may be one of the inputs (the file --resume reads is
	// meant to be rewritten, and is not one).
	base := strings.TrimSuffix(*out, ".safetensors")
	if err := checkOutputs([]output{{"--out", *out}, {"--out (training state)", train.StatePath(*out)},
		{"--out (loss plot)", base + ".loss.png"}, {"--out (samples)", base + ".samples.png"}},
		append(vaeFiles(*vaePath), trainInputs(*dataDir, *latents)...)...); err != nil {
		return err
	}

	// Data.
	var ds *data.Dataset
	var dsName string
	var err error
	switch {
	case strings.ToLower(*dataName) == "emoji":
		sz := *size
		if sz == 0 {
			sz = 32
		}
		list, err := data.ParseEmojiList(*emojiList)
		if err != nil {
			return usagef("--emoji: %v", err)
		}
		ds, err = data.LoadEmoji(*emojiFont, list, data.EmojiOptions{Size: sz, Variants: *emojiVariants, Shift: *emojiShift,
			Seed: *seed, Background: color.NRGBA{255, 255, 255, 255}})
		if err != nil {
			return err
		}
		dsName = fmt.Sprintf("emoji %s (%d classes × %d variants, %dx%d RGB on white)", strings.Join(list, " "), len(list), *emojiVariants, sz, sz)
	case *dataName != "":
		if strings.ToLower(*dataName) != "fashion-mnist" {
			return usagef("unknown --data %q (known: fashion-mnist, emoji)", *dataName)
		}
		ds, err = data.LoadFashionMNIST(*dataDir, "train")
		if err != nil {
			return err
		}
		if *size != 0 && *size != ds.H {
			if ds, err = ds.Pad(*size, -1); err != nil {
				return err
			}
		}
		dsName = fmt.Sprintf("fashion-mnist train (%d images, %dx%d)", ds.N, ds.H, ds.W)
	case *latents != "":
		ds, err = data.LoadLatents(*latents)
		if err != nil {
			return err
		}
		dsName = fmt.Sprintf("latents %s (%d, %d classes, %dx%dx%d)", *latents, ds.N, len(ds.Classes), ds.H, ds.W, ds.C)
	case *vaePath != "":
		sz := *size
		if sz == 0 {
			sz = 256
		}
		ds, err = encodeImages(*images, *vaePath, sz, data.EncodeOptions{Sample: *vaeSample, Flip: *vaeFlip, Seed: *seed})
		if err != nil {
			return err
		}
		dsName = fmt.Sprintf("folder %s encoded by VAE %s (%d images, %d classes, %dx%d images, %dx%dx%d latents)", *images, *vaePath, ds.N, len(ds.Classes), sz, sz, ds.H, ds.W, ds.C)
	default:
		sz := *size
		if sz == 0 {
			sz = 32
		}
		ch := 1
		if *rgb {
			ch = 3
		}
		ds, err = data.LoadFolder(*images, sz, ch)
		if err != nil {
			return err
		}
		dsName = fmt.Sprintf("folder %s (%d images, %d classes, %dx%dx%d)", *images, ds.N, len(ds.Classes), sz, sz, ch)
	}
	ds = ds.Subset(*perClass)

	// Model and trainer.
	var tr *train.Trainer
	wall0 := 0.0
	if *resume != "" {
		// A resumed run keeps the recipe it was saved with; only the flags
		// given change it (their defaults are those of a new run).
		tr, wall0, err = train.Resume(*resume, ds, train.Changes{M: *m, UpdateRate: float32(*rate), MLP: *mlp}, func(o *train.Options) {
			if flagSet(fs, "batch") {
				o.Batch = *batch
			}
			if flagSet(fs, "lr") {
				o.LR = *lr
			}
			if flagSet(fs, "ema") {
				o.EMADecay = *ema
			}
			if flagSet(fs, "ema-warmup") {
				o.EMAWarmup = *emaWarmup
			}
			if flagSet(fs, "carry") {
				o.CarryProb = *carry
			}
			if flagSet(fs, "carry-calls") {
				o.CarryCalls = *carryCalls
			}
			if flagSet(fs, "min-snr") {
				o.MinSNR = *minSNR
			}
		})
		if err != nil {
			return err
		}
	} else {
		cfg, err := trainConfig(*config, ds, *latents != "" || *vaePath != "", blockSize{M: *m, UpdateRate: float32(*rate), Hidden: *hidden, Embed: *embed, Heads: *heads, MLP: *mlp, PosCode: *posCode, Prediction: *prediction})
		if err != nil {
			return err
		}
		opt := train.DefaultOptions()
		opt.Batch, opt.LR, opt.EMADecay, opt.EMAWarmup, opt.Seed, opt.CarryProb, opt.CarryCalls, opt.MinSNR = *batch, *lr, *ema, *emaWarmup, *seed, *carry, *carryCalls, *minSNR
		tr, err = train.NewTrainer(cfg, opt, ds)
		if err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	cfg := tr.Cfg
	// The network's activations are made at the first step; refuse now what
	// cannot fit.
	if err := membudget.Check(fmt.Sprintf("training %s on batches of %d", cfg.Name, tr.Opt.Batch), trainBytes(cfg, tr.Opt.Batch)); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "geca train: %s; model %s %dx%d C_in %d C_h %d D %d heads %d MLP %d M %d at update rate %g, %v, %v (%d parameters); batch %d, lr %g, carry %s, min-SNR %g, step %d\n",
		dsName, cfg.Name, cfg.GridH, cfg.GridW, cfg.InChannels, cfg.HiddenChannels, cfg.EmbedDim, cfg.Heads, cfg.MLPDim, cfg.M, cfg.UpdateRate, cfg.PosCode, cfg.Prediction,
		tr.P.Count(), tr.Opt.Batch, tr.Opt.LR, carryText(tr.Opt), tr.Opt.MinSNR, tr.Step)

	// Stop cleanly (with a checkpoint) on Ctrl-C or SIGTERM.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(stop)

	total := 0
	if *steps > 0 {
		total = *steps
	}
	bar := progress.New(os.Stderr, total, "train")
	start := time.Now()
	lastSave, lastPreview := start, start
	preview := func() {
		if err := writePreview(tr, *out, *previewSteps); err != nil {
			fmt.Fprintf(os.Stderr, "geca train: preview: %v\n", err)
		}
		lastPreview = time.Now()
	}
	save := func() error {
		wall := wall0 + time.Since(start).Seconds()
		if err := tr.Save(*out, dsName, wall); err != nil {
			return fmt.Errorf("saving %s: %w", *out, err)
		}
		if err := writeTrainImages(tr, *out); err != nil {
			fmt.Fprintf(os.Stderr, "geca train: %v\n", err)
		}
		return nil
	}
	var ema1 float64
	first := tr.Step
	for {
		if *steps > 0 && tr.Step >= *steps {
			break
		}
		if *minutes > 0 && time.Since(start).Minutes() >= *minutes {
			break
		}
		select {
		case <-stop:
			fmt.Fprintln(os.Stderr, "geca train: interrupted, saving")
			bar.Done()
			if err := save(); err != nil {
				return err
			}
			preview()
			return nil
		default:
		}
		st, err := tr.TrainStep()
		if err != nil {
			return err
		}
		if ema1 == 0 {
			ema1 = st.Loss
		}
		ema1 = 0.98*ema1 + 0.02*st.Loss
		rate := float64((tr.Step-first)*tr.Opt.Batch) / time.Since(start).Seconds()
		extra := fmt.Sprintf("loss %.4f (mse %.4f vb %.4f) %.1f samples/s", ema1, st.MSE, st.VB, rate)
		bar.Set(tr.Step, extra)
		if bar.Quiet() && *logEvery > 0 && tr.Step%*logEvery == 0 {
			fmt.Fprintf(os.Stderr, "step %d %s elapsed %s\n", tr.Step, extra, time.Since(start).Round(time.Second))
		}
		if time.Since(lastSave).Minutes() >= *every {
			if err := save(); err != nil {
				return err
			}
			lastSave = time.Now()
		}
		if *previewEvery > 0 && time.Since(lastPreview).Minutes() >= *previewEvery {
			preview()
		}
	}
	bar.Done()
	if err := save(); err != nil {
		return err
	}
	preview()
	fmt.Fprintf(os.Stderr, "geca train: %d steps, %s; wrote %s and %s\n", tr.Step, time.Since(start).Round(time.Second), *out, train.StatePath(*out))
	return nil
}

// trainInputs are the data files of a training run that outputs must not
// overwrite: Fashion-MNIST's IDX files, the latents' record.
func trainInputs(dataDir, latents string) []string {
	var in []string
	if dataDir != "" {
		for _, f := range []string{"train-images-idx3-ubyte", "train-labels-idx1-ubyte"} {
			in = append(in, filepath.Join(dataDir, f), filepath.Join(dataDir, f+".gz"))
		}
	}
	if latents != "" {
		in = append(in, filepath.Join(latents, "encode.json"), filepath.Join(latents, "classes.txt"))
	}
	return in
}

// trainBytes estimates the memory of training cfg on batches of b: the
// parameters five times over (weights, gradients, EMA, two Adam moments)
// and, per cell of the batch, the activations each of the M updates keeps
// for the backward pass plus the network's own scratch (engine/train's
// Net and its updates), and a quarter more for the trainer's smaller
// buffers and the allocator's rounding.
func trainBytes(cfg engine.Config, b int) int64 {
	d, mlp, cd, h9 := cfg.EmbedDim, cfg.MLPDim, cfg.CellDim(), 9*cfg.Heads
	perUpdate := int64(cd + 12*d + 2*mlp + h9 + 5)
	scratch := int64(2*cd + 10*d + 2*mlp + h9 + cfg.UpdateDim())
	perRow := membudget.Sum(membudget.Bytes(int(perUpdate), max(cfg.M, 1)), scratch)
	// ModelBytes counts the weights twice and the positional code once.
	weights := (engine.ModelBytes(cfg) - engine.StateBytes(1, cfg.GridH, cfg.GridW, d)) / 2
	total := membudget.Sum(
		membudget.Bytes(int(weights), 5),
		membudget.Bytes(b, cfg.GridH, cfg.GridW, int(min(perRow, 1<<40)), 4),
	)
	return membudget.Sum(total, total/4)
}

// carryText says how often and through how many calls states are carried.
func carryText(o train.Options) string {
	if o.CarryProb == 0 {
		return "0"
	}
	return fmt.Sprintf("%g (1 … %d calls)", o.CarryProb, o.LongestCarry())
}

// blockSize overrides a config's block; zero fields keep the config's.
type blockSize struct {
	M, Hidden, Embed, Heads, MLP int
	UpdateRate                   float32 // 0: the config's
	PosCode                      string  // "1d", "2d" or "" (the config's)
	Prediction                   string  // "eps", "v" or "" (the config's)
}

// posCodes and predictions map --pos-code's and --prediction's values to
// the model's; a model trained with another than its preset's gets the
// value in its name (-2D, -V).
var (
	posCodes    = map[string]engine.PosCode{"1d": engine.PosCodeOfficial, "2d": engine.PosCode2D}
	predictions = map[string]engine.Prediction{"eps": engine.PredictEps, "v": engine.PredictV}
)

// setVariant sets *dst to the value that flag's value val names among
// known (val "" keeps the preset's), and says so in the model's name.
func setVariant[T comparable](flag, val string, known map[string]T, dst *T, name *string) error {
	if val == "" {
		return nil
	}
	key := strings.ToLower(val)
	v, ok := known[key]
	if !ok {
		return usagef("--%s %q: want %s", flag, val, strings.Join(slices.Sorted(maps.Keys(known)), " or "))
	}
	if v != *dst {
		*dst, *name = v, *name+"-"+strings.ToUpper(key)
	}
	return nil
}

// trainConfig picks the model size for a dataset: the named config with
// size's overrides.
func trainConfig(name string, ds *data.Dataset, latent bool, size blockSize) (engine.Config, error) {
	var cfg engine.Config
	switch strings.ToLower(name) {
	case "default", "fmnist":
		cfg = train.DefaultFashionConfig()
	case "emoji": // the built-in emoji model: the Fashion-MNIST model's block on RGB
		cfg = train.DefaultFashionConfig()
		cfg.Name = "GeCA-Emoji"
	case "tiny":
		cfg = engine.Config{Name: "GeCA-tiny", InChannels: 1, HiddenChannels: 8, EmbedDim: 32, Heads: 2, MLPDim: 64, M: 6, UpdateRate: 0.5}
	default:
		p, err := engine.Preset(name, len(ds.Classes))
		if err != nil {
			return engine.Config{}, usageError{err.Error()}
		}
		cfg = p
	}
	cfg.GridH, cfg.GridW, cfg.InChannels, cfg.NumClasses, cfg.Latent = ds.H, ds.W, ds.C, len(ds.Classes), latent
	if size.M > 0 {
		cfg.M = size.M
	}
	if size.UpdateRate > 0 {
		cfg.UpdateRate = size.UpdateRate
	}
	// A resized block is another model: its name says how it differs, so
	// that it never passes for the preset it started from.
	for _, o := range []struct {
		v     int
		dst   *int
		label string
	}{{size.Embed, &cfg.EmbedDim, "D"}, {size.Heads, &cfg.Heads, "H"}, {size.MLP, &cfg.MLPDim, "MLP"}, {size.Hidden, &cfg.HiddenChannels, "Ch"}} {
		if o.v > 0 && o.v != *o.dst {
			*o.dst = o.v
			cfg.Name = train.ResizedName(cfg.Name, o.label, o.v)
		}
	}
	if err := setVariant("pos-code", size.PosCode, posCodes, &cfg.PosCode, &cfg.Name); err != nil {
		return engine.Config{}, err
	}
	if err := setVariant("prediction", size.Prediction, predictions, &cfg.Prediction, &cfg.Name); err != nil {
		return engine.Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return engine.Config{}, usagef("model %s: %v", cfg.Name, err)
	}
	return cfg, nil
}

// writeTrainImages writes the sample grid and loss curve next to the checkpoint.
func writeTrainImages(tr *train.Trainer, out string) error {
	base := strings.TrimSuffix(out, ".safetensors")
	if err := train.WriteLossCurve(base+".loss.png", tr.History); err != nil {
		return err
	}
	return nil
}

// writePreview samples two images per class from the EMA weights with the
// app's default sampling (GHG on, CFG 1.5) and writes them as
// NAME.samples.png (one row per class).
func writePreview(tr *train.Trainer, out string, steps int) error {
	if tr.Cfg.Latent || (tr.Cfg.InChannels != 1 && tr.Cfg.InChannels != 3) {
		return nil // latents need the VAE decoder to be looked at: use geca sample --vae
	}
	const per = 2
	K := tr.Cfg.NumClasses
	var labels []int
	for k := 0; k < K; k++ {
		for i := 0; i < per; i++ {
			labels = append(labels, k)
		}
	}
	imgs, err := train.Sample(tr.EMAParams(), labels, train.SampleOptions{Steps: steps, CFG: 1.5, Seed: 1})
	if err != nil {
		return err
	}
	grid := train.SampleGrid(imgs, K, per, tr.Cfg.GridH, tr.Cfg.GridW, tr.Cfg.InChannels, 2)
	return train.WritePNG(strings.TrimSuffix(out, ".safetensors")+".samples.png", grid)
}
