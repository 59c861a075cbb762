package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/draw"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"geca/assets"
	"geca/engine"
	"geca/engine/ckpt"
	"geca/engine/sample"
	"geca/engine/vae"
	"geca/internal/npy"
	"geca/internal/progress"
	"geca/render"
)

func init() {
	register(&command{
		name:    "sample",
		summary: "grow samples from a checkpoint: PNG grid, growth GIF, latents (.npy)",
		usage: "[--ckpt FILE] [--class 3 | --labels 0,1,0,...] [--n 8] [--steps 250] [--M 12 | --M 2,4,8,12,24] " +
			"[--ghg on|off] [--cfg 1.5] [--update-rate 0.5] [--clip-x0] [--seed 0] [--vae DIR] --out grid.png [--gif growth.gif] [--npy latents.npy] [--quiet] " +
			"[--device cpu|cuda|auto | --engine HOST:PORT]",
		run: runSample,
	})
}

// sampleJob is one parsed invocation.
type sampleJob struct {
	note     func(format string, a ...any)
	model    *engine.Model
	opt      sample.Options
	ms       []int // one run (grid row) per M
	newRun   func(sample.Options) (sample.Stepper, error)
	gifSteps string
	gifDelay int
	scale    int
	quiet    bool
}

func runSample(args []string) error {
	c := commands["sample"]
	fs := newFlags(c)
	mf := addModelFlags(fs, "checkpoint: official .pt (train.py's {model, ema, opt, args}) or .safetensors with geca.config metadata (default: a built-in model, --model)")
	ckptPath := mf.ckpt
	weights := fs.String("weights", "", `state_dict of an official .pt to use: "ema" (default when present) or "model"`)
	heads := fs.Int("heads", 0, "attention heads, when neither the file nor a preset name says (0: derive)")
	class := fs.String("class", "", "class index for every sample (one-hot), or several, e.g. 3,5 (multi-hot); -1 or none: unconditional")
	labels := fs.String("labels", "", "multi-hot label as K comma-separated values (e.g. 0,1,0); several labels separated by ';' go to successive samples")
	n := fs.Int("n", 8, "samples per row")
	steps := fs.String("steps", assets.OfficialSampler.Steps, `respaced sampling steps: "250", "50", "10,20" (sections), "ddim25" (built-in models: `+builtinDefaults(samplerSteps)+`)`)
	method := fs.String("method", "", `"ddpm" or "ddim" (default: ddim for "ddimN" steps, else ddpm)`)
	eta := fs.Float64("eta", 0, "DDIM noise scale (0: deterministic)")
	mFlag := fs.String("M", "", "cell updates per timestep (default: the model's, 12); a list such as 2,4,8,12,24 renders one row per M with the same seed")
	ghg := fs.String("ghg", "on", "Gene Heredity Guidance: on (carry the grid across timesteps, as the official code) or off (fresh seed every timestep) (built-in models: "+builtinDefaults(samplerGHG)+")")
	cfgScale := fs.Float64("cfg", float64(assets.OfficialSampler.CFG), "classifier-free guidance scale; 1 turns guidance off (built-in models: "+builtinDefaults(samplerCFG)+")")
	rate := fs.Float64("update-rate", 0, "per-cell update probability (default: the model's, 0.5)")
	clip := fs.Bool("clip-x0", false, clipX0Help)
	seed := fs.Uint64("seed", 0, "random seed (initial noise, seed cell, update masks, step noise)")
	vaeDir := fs.String("vae", "", "Stable Diffusion VAE (diffusers folder or .safetensors) to decode latents; without it the PNG shows a cheap latent preview")
	outPath := fs.String("out", "", "PNG grid of the final samples")
	gifPath := fs.String("gif", "", "animated GIF of the growth: the cell updates of --gif-timesteps, then the predicted x0 across timesteps")
	gifSteps := fs.String("gif-timesteps", "first", `timesteps whose cell updates the GIF shows: "first", "last", "all", "none" or respaced indices, e.g. 249,124`)
	gifDelay := fs.Int("gif-delay", 8, "GIF frame delay in hundredths of a second")
	npyPath := fs.String("npy", "", "final latents as float32 (rows·n, C, H, W), rows in --M order")
	scale := fs.Int("scale", 0, "integer upscaling of grid tiles (default: 1 for decoded images, else to about 256 px)")
	quiet := fs.Bool("quiet", false, "no progress bar or notes on stderr")
	dev := addDeviceFlags(fs, "auto")
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
	if err := dev.check(); err != nil {
		return err
	}
	switch {
	case *outPath == "" && *gifPath == "" && *npyPath == "":
		return usagef("nothing to write: give --out grid.png, --gif growth.gif and/or --npy latents.npy")
	case *n < 1 || *n > 4096:
		return usagef("--n %d out of range [1, 4096]", *n)
	case *class != "" && *labels != "":
		return usagef("give --class or --labels, not both")
	case *scale < 0 || *scale > 64:
		return usagef("--scale %d out of range [0, 64]", *scale)
	case *gifDelay < 1 || *gifDelay > 6000:
		return usagef("--gif-delay %d out of range [1, 6000]", *gifDelay)
	case math.IsNaN(*cfgScale) || *cfgScale < 0 || *cfgScale > 1e4:
		return usagef("--cfg %v out of range [0, 10000]", *cfgScale)
	case math.IsNaN(*eta) || *eta < 0 || *eta > 100:
		return usagef("--eta %v out of range [0, 100]", *eta)
	case math.IsNaN(*rate) || *rate < 0 || *rate > 1:
		return usagef("--update-rate %v out of range (0, 1]", *rate)
	}
	ghgOn, err := parseSwitch("--ghg", *ghg)
	if err != nil {
		return err
	}
	ms, err := parseMList(*mFlag)
	if err != nil {
		return usagef("--M: %v", err)
	}
	if _, err := parseGIFSteps(*gifSteps, 1000); err != nil {
		return usagef("--gif-timesteps: %v", err)
	}
	// Every output is checked before any work: a long run must not find out
	// at its end that it cannot write, or that it would overwrite its input.
	primary := *outPath
	if primary == "" {
		primary = *npyPath
	}
	if primary == "" {
		primary = *gifPath
	}
	partial := primary + partialSuffix
	if err := checkOutputs([]output{{"--out", *outPath}, {"--gif", *gifPath}, {"--npy", *npyPath}, {"--out (partial samples)", partial}},
		append(vaeFiles(*vaeDir), *ckptPath)...); err != nil {
		return err
	}

	model, ck, builtin, err := mf.load(ckpt.Options{Weights: *weights, Heads: *heads})
	if err != nil {
		return err
	}
	if builtin != nil {
		// A built-in model samples as measured for it unless told otherwise.
		if !flagSet(fs, "steps") {
			*steps = builtin.Sampler.Steps
		}
		if !flagSet(fs, "cfg") {
			*cfgScale = float64(builtin.Sampler.CFG)
		}
		if !flagSet(fs, "ghg") {
			ghgOn = builtin.Sampler.GHG
		}
	}
	cfg := model.Cfg
	lab, err := parseSampleLabels(*class, *labels, cfg.NumClasses, *n)
	if err != nil {
		return usagef("%v", err)
	}
	for i, m := range ms {
		if m == 0 {
			ms[i] = cfg.M
		}
	}
	job := &sampleJob{
		model: model, ms: ms, gifSteps: *gifSteps, gifDelay: *gifDelay, scale: *scale, quiet: *quiet,
		opt: sample.Options{Steps: *steps, Method: *method, Eta: float32(*eta), GHG: ghgOn, CFG: float32(*cfgScale),
			UpdateRate: float32(*rate), ClipX0: *clip, Labels: lab, N: *n, Seed: *seed, SnapshotBytes: -1},
	}
	// The memory of one run (rows run one after the other), then the options,
	// once, before any work (and before loading a VAE).
	if err := engine.CheckRun(cfg, *n, *cfgScale > 1); err != nil {
		return err
	}
	if _, err := sample.New(model, job.withM(ms[0])); err != nil {
		return usagef("%v", err)
	}
	var dec vae.LatentDecoder
	note := func(format string, a ...any) {
		if !*quiet {
			fmt.Fprintf(os.Stderr, format+"\n", a...)
		}
	}
	job.note = note
	switch {
	case *vaeDir != "" && !cfg.Latent:
		note("note: %s is a pixel-space model; --vae is not used", ck.Path)
	case *vaeDir != "":
		if err := checkVAEFolder(*vaeDir); err != nil {
			return err
		}
		stop := busy(*quiet, "loading VAE "+*vaeDir)
		dec, err = vae.Load(*vaeDir)
		stop()
		if err != nil {
			return err
		}
		if dec.LatentChannels() != cfg.InChannels {
			return fmt.Errorf("%s: the VAE takes %d latent channels, the model makes %d", *vaeDir, dec.LatentChannels(), cfg.InChannels)
		}
	case cfg.Latent && *outPath != "":
		note("note: no --vae given: %s shows the cheap latent-to-RGB preview (%dx%d), not decoded images", *outPath, cfg.GridW, cfg.GridH)
	}
	if *class == "" && *labels == "" {
		note("note: no --class or --labels: sampling unconditionally (all-zero labels)")
	}
	note("%s (%s weights, %s), %d parameters; %d sample(s) per row, steps %q, M %v, GHG %s, CFG %g%s",
		ck.Path, ck.Weights, cfg.Name, model.ParamCount(), *n, *steps, ms, onOff(ghgOn), *cfgScale, clipNote(*clip))

	be, err := dev.open()
	if err != nil {
		return err
	}
	defer be.close()
	if job.newRun, err = be.sampleRuns(model); err != nil {
		return err
	}
	note("%s", be.note())

	key := sampleKey{Checkpoint: checkpointID(*ckptPath, builtin), Weights: *weights, Heads: *heads, Steps: *steps, Method: *method,
		Eta: float32(*eta), GHG: ghgOn, CFG: float32(*cfgScale), Rate: float32(*rate), ClipX0: *clip, Labels: lab, N: *n, Seed: *seed,
		M: ms, Device: be.desc, Shape: [3]int{cfg.InChannels, cfg.GridH, cfg.GridW}}
	rows, err := partialRows(partial, key)
	if err != nil {
		return err
	}
	if k := countRows(rows); k > 0 {
		note("resuming: %d of %d row(s) of samples were finished by an earlier run (%s)", k, len(rows), partial)
		if *gifPath != "" {
			note("note: the GIF shows the growth of the rows computed now only")
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := job.run(ctx, rows, func(rows [][]float32) error { return savePartial(partial, key, rows) })
	if err != nil {
		k := countRows(res.latents)
		kept := fmt.Sprintf("%d of %d row(s) of samples are finished and kept in %s; run the same command again to compute the rest", k, len(ms), partial)
		if k == 0 {
			kept = "no row of samples was finished yet"
		}
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("interrupted: %s", kept)
		}
		return fmt.Errorf("%w (%s)", err, kept)
	}
	if res.computed > 0 {
		note("%d sample(s) in %.1f s (%.2f samples/min)", res.computed**n, res.elapsed.Seconds(), float64(res.computed**n)/res.elapsed.Minutes())
	}

	per := cfg.InChannels * cfg.GridH * cfg.GridW
	all := make([]float32, 0, len(ms)*(*n)*per)
	for _, r := range res.latents {
		all = append(all, r...)
	}
	if err := job.writeOutputs(res, all, dec, *outPath, *gifPath, *npyPath, *gifDelay); err != nil {
		return fmt.Errorf("%w (the samples are kept in %s; the same command writes them without sampling again)", err, partial)
	}
	removePartial(partial)
	return nil
}

// writeOutputs writes the latents, the grid and the GIF that were asked for.
func (j *sampleJob) writeOutputs(res *sampleResult, all []float32, dec vae.LatentDecoder, outPath, gifPath, npyPath string, gifDelay int) error {
	c := j.model.Cfg
	if npyPath != "" {
		if err := npy.WriteFile(npyPath, []int{len(j.ms) * j.opt.N, c.InChannels, c.GridH, c.GridW}, all); err != nil {
			return err
		}
	}
	if outPath != "" {
		img, err := j.grid(res.latents, dec)
		if err != nil {
			return err
		}
		if err := render.WritePNG(outPath, img); err != nil {
			return err
		}
	}
	if gifPath != "" {
		if len(res.gif) == 0 {
			j.note("note: no GIF written: every row was finished by an earlier run")
		} else if err := render.WriteGIF(gifPath, padFrames(res.gif), gifDelay); err != nil {
			return err
		}
	}
	return nil
}

// countRows counts the finished rows.
func countRows(rows [][]float32) int {
	k := 0
	for _, r := range rows {
		if r != nil {
			k++
		}
	}
	return k
}

func (j *sampleJob) withM(m int) sample.Options {
	o := j.opt
	o.M = m
	return o
}

// parseMList reads "12" or "2,4,8,12,24" ("" is the model's M, returned as 0).
func parseMList(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return []int{0}, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%q is not a number of updates", f)
		}
		if v < 1 || v > 10000 {
			return nil, fmt.Errorf("M = %d out of range [1, 10000]", v)
		}
		out = append(out, v)
	}
	if len(out) > 64 {
		return nil, fmt.Errorf("%d values; at most 64 rows", len(out))
	}
	return out, nil
}

// parseSampleLabels builds the labels of n samples from --class or --labels.
func parseSampleLabels(class, labels string, k, n int) ([][]float32, error) {
	switch {
	case class != "":
		c := strings.TrimSpace(class)
		y := make([]float32, k)
		if c == "-1" || c == "none" {
			return [][]float32{y}, nil
		}
		for _, f := range strings.Split(c, ",") {
			v, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return nil, fmt.Errorf("--class: %q is not a class index", f)
			}
			if v < 0 || v >= k {
				return nil, fmt.Errorf("--class: class %d out of range [0, %d) for this model", v, k)
			}
			y[v] = 1
		}
		return [][]float32{y}, nil
	case labels != "":
		var out [][]float32
		for _, vec := range strings.Split(labels, ";") {
			fields := strings.Split(vec, ",")
			if len(fields) != k {
				return nil, fmt.Errorf("--labels: %q has %d values, the model has %d classes", vec, len(fields), k)
			}
			y := make([]float32, k)
			for i, f := range fields {
				v, err := strconv.ParseFloat(strings.TrimSpace(f), 32)
				if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
					return nil, fmt.Errorf("--labels: %q is not a number", f)
				}
				y[i] = float32(v)
			}
			out = append(out, y)
		}
		if len(out) != 1 && len(out) != n {
			return nil, fmt.Errorf("--labels: %d labels for --n %d (give one, or one per sample)", len(out), n)
		}
		return out, nil
	}
	return nil, nil
}

// parseGIFSteps turns --gif-timesteps into a predicate on the respaced index
// of a run of n timesteps.
func parseGIFSteps(s string, n int) (func(i int) bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "none":
		return func(int) bool { return false }, nil
	case "first":
		return func(i int) bool { return i == n-1 }, nil
	case "last":
		return func(i int) bool { return i == 0 }, nil
	case "all":
		return func(int) bool { return true }, nil
	}
	set := map[int]bool{}
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%q is not a timestep index (first, last, all, none or indices n-1 … 0)", f)
		}
		set[v] = true
	}
	return func(i int) bool { return set[i] }, nil
}

type sampleResult struct {
	latents  [][]float32 // per row: (n, C, H, W); nil for rows not finished
	gif      []image.Image
	elapsed  time.Duration
	computed int // rows computed by this run
}

// run samples every row that rows does not hold yet (one run per M, one
// after the other), handing the rows to save after each one finishes, and
// collects the GIF frames. After an error, the result holds the rows
// finished so far.
func (j *sampleJob) run(ctx context.Context, rows [][]float32, save func([][]float32) error) (*sampleResult, error) {
	res := &sampleResult{latents: rows}
	todo := len(rows) - countRows(rows)
	var bar *progress.Bar
	defer func() { bar.Done() }()
	start := time.Now()
	defer func() { res.elapsed = time.Since(start) }()
	// Timestep frames of every row, gathered per timestep index so rows line
	// up; cell-update frames only when there is a single row.
	var tsFrames [][]*sample.Frame
	var cell []*sample.Frame
	var showUpdates, keepT func(int) bool
	nt, done := 0, 0
	const maxCellFrames = 600 // about 600 MB of RGBA at most before encoding
	capped := false
	for r, m := range j.ms {
		if rows[r] != nil {
			continue
		}
		s, err := j.newRun(j.withM(m))
		if err != nil {
			return res, err
		}
		if nt == 0 {
			nt = s.Len()
			showUpdates, _ = parseGIFSteps(j.gifSteps, nt)
			stride := max(1, (nt+59)/60) // at most about 60 timestep frames
			keepT = func(i int) bool { return i == 0 || (nt-1-i)%stride == 0 }
			tsFrames = make([][]*sample.Frame, nt)
			if !j.quiet {
				bar = progress.New(os.Stderr, nt*todo, "sampling")
			}
		}
		w := &valueWatch{per: j.latentSize()}
		for !s.Done() {
			i := s.Index()
			wantCells := len(j.ms) == 1 && showUpdates(i) && len(res.gif) < maxCellFrames
			if len(j.ms) == 1 && showUpdates(i) && !wantCells && !capped && !j.quiet {
				capped = true
				fmt.Fprintf(os.Stderr, "note: the GIF keeps the cell updates of the first %d frames only\n", maxCellFrames)
			}
			s.SetObserver(func(f *sample.Frame) {
				switch {
				case f.Kind == sample.FrameTimestep:
					w.timestep(f)
					if keepT(f.TimestepIndex) {
						if tsFrames[f.TimestepIndex] == nil {
							tsFrames[f.TimestepIndex] = make([]*sample.Frame, len(j.ms))
						}
						tsFrames[f.TimestepIndex][r] = f
					}
				case f.Kind == sample.FrameUpdate && wantCells:
					cell = append(cell, f)
				}
			}, wantCells)
			// A local run keeps the start of the timestep, so that values that
			// turn non-finite can be traced to the update that made them.
			var before *sample.Sampler
			if ls, ok := s.(*sample.Sampler); ok {
				before = ls.Branch()
			}
			if err := s.StepTimestep(ctx); err != nil {
				return res, err
			}
			if w.bad != "" {
				return res, w.report(ctx, before, s.TimestepOf(i), i, nt)
			}
			if w.exploded != "" && !w.told {
				w.told = true
				j.note("warning: %s at timestep t=%d (index %d of %d) and after; the checkpoint may be broken, or the settings too coarse (few DDPM steps, high --cfg: try more --steps or ddimN)", w.exploded, s.TimestepOf(i), i, nt)
			}
			if wantCells {
				// Cell frames are rendered as they come, to keep memory flat.
				for _, f := range cell {
					res.gif = append(res.gif, j.gifFrame([]*sample.Frame{f}, true))
				}
				cell = cell[:0]
			}
			bar.Set(done*nt+(nt-s.Index()-1), fmt.Sprintf("M=%d t=%d", s.M(), s.TimestepOf(i)))
		}
		lat, err := s.Result()
		if err != nil {
			return res, err
		}
		s.Close() // a worker's run: free its memory there
		res.latents[r] = lat
		res.computed++
		done++
		if err := save(res.latents); err != nil {
			return res, fmt.Errorf("keeping the finished samples: %w", err)
		}
	}
	for i := nt - 1; i >= 0; i-- {
		if tsFrames[i] != nil {
			res.gif = append(res.gif, j.gifFrame(tsFrames[i], false))
		}
	}
	return res, nil
}

// latentSize is C_in·H·W, the values of one sample.
func (j *sampleJob) latentSize() int {
	c := j.model.Cfg
	return c.InChannels * c.GridH * c.GridW
}

// valueWatch looks at every timestep's grid and latent for values that are
// not finite (the run is stopped) or that exploded (it is said once).
type valueWatch struct {
	per           int
	bad, exploded string
	told          bool
	badGrid       bool // the grid went bad (else the latent, in the step)
}

func (w *valueWatch) timestep(f *sample.Frame) {
	if w.bad != "" {
		return
	}
	if f.State != nil {
		if i := firstNonFinite(f.State.Data); i >= 0 {
			w.bad, w.badGrid = fmt.Sprintf("grid value %v (grid %d)", f.State.Data[i], i/(f.State.H*f.State.W*f.State.C)), true
			return
		}
	}
	switch t := valueTrouble(f.XPrev, w.per); {
	case t == "":
	case firstNonFinite(f.XPrev) >= 0:
		w.bad = "latent " + t
	case w.exploded == "":
		w.exploded = "the latents' " + t
	}
}

// report says where non-finite values began: the timestep, and for a local
// run the cell update (replaying the timestep from before, a branch of the
// run, with a frame after every update).
func (w *valueWatch) report(ctx context.Context, before *sample.Sampler, t, i, n int) error {
	where := fmt.Sprintf("timestep t=%d (index %d of %d)", t, i, n)
	if before != nil {
		upd, m := -1, 0
		before.SetObserver(func(f *sample.Frame) {
			if upd < 0 && f.Kind == sample.FrameUpdate && f.State != nil && firstNonFinite(f.State.Data) >= 0 {
				upd, m = f.Update, f.M
			}
		}, true)
		if err := before.StepTimestep(ctx); err == nil || upd >= 0 {
			if upd >= 0 {
				where += fmt.Sprintf(", cell update %d of %d", upd, m)
			} else if !w.badGrid {
				where += ", in the diffusion step (the grid was finite)"
			}
		}
	}
	return fmt.Errorf("sampling went wrong: non-finite values began at %s: %s; the checkpoint or the settings make the model diverge", where, w.bad)
}

// tileScale picks the upscaling of tiles of size h×w.
func (j *sampleJob) tileScale(h int) int {
	if j.scale > 0 {
		return j.scale
	}
	return max(1, 256/max(h, 1))
}

// preview draws sample b of a latent or pixel batch x (N, C, H, W) cheaply.
func (j *sampleJob) preview(x []float32, b int) image.Image {
	c := j.model.Cfg
	if !c.Latent {
		return render.PixelImage(x, c.InChannels, c.GridH, c.GridW, b)
	}
	var p render.Preview
	if c.InChannels == vae.PreviewChannels {
		p = vae.Preview
	}
	return render.LatentImage(x, c.InChannels, c.GridH, c.GridW, b, p)
}

// grid lays the final samples out: one labelled row per M for a sweep, else a
// near-square grid.
func (j *sampleJob) grid(latents [][]float32, dec vae.LatentDecoder) (image.Image, error) {
	c := j.model.Cfg
	n := j.opt.N
	tiles := make([][]image.Image, len(latents))
	th := c.GridH
	for r, x := range latents {
		if dec != nil {
			img, err := decodeEach(dec, x, n, c.GridH, c.GridW, j.quiet)
			if err != nil {
				return nil, err
			}
			oh, ow := dec.OutputSize(c.GridH, c.GridW)
			if i := firstNonFinite(img); i >= 0 {
				return nil, fmt.Errorf("the VAE decoder made a non-finite value (%v) in image %d of row %d", img[i], i/(3*oh*ow), r)
			}
			ims, err := vae.Images(img, n, oh, ow)
			if err != nil {
				return nil, err
			}
			for _, im := range ims {
				tiles[r] = append(tiles[r], im)
			}
			th = oh
			continue
		}
		for b := range n {
			tiles[r] = append(tiles[r], j.preview(x, b))
		}
	}
	scale := j.tileScale(th)
	if len(latents) > 1 {
		labels := make([]string, len(j.ms))
		for r, m := range j.ms {
			labels[r] = fmt.Sprintf("M=%d", m)
		}
		return render.Montage(tiles, labels, nil, scale), nil
	}
	cols := int(math.Ceil(math.Sqrt(float64(n))))
	var rows [][]image.Image
	for k := 0; k < n; k += cols {
		rows = append(rows, tiles[0][k:min(k+cols, n)])
	}
	return render.Montage(rows, nil, nil, scale), nil
}

// gifFrame draws one GIF frame. With one row of samples: the x0 preview and
// ε̂ (channel 0) of every sample, after a cell update or a timestep. For an M
// sweep (timestep frames only): the x0 preview of every row.
func (j *sampleJob) gifFrame(frames []*sample.Frame, cellUpdate bool) image.Image {
	c := j.model.Cfg
	n := j.opt.N
	scale := max(1, j.tileScale(c.GridH)/2)
	f0 := frames[0]
	for _, f := range frames {
		if f != nil {
			f0 = f
			break
		}
	}
	var rows [][]image.Image
	var labels []string
	if len(frames) == 1 {
		var x0, eps []image.Image
		for b := range n {
			x0 = append(x0, j.preview(f0.X0, b))
			im, err := render.Render(render.ViewEps, &render.Source{Cfg: c, State: f0.State}, render.Options{Sample: b})
			if err == nil {
				eps = append(eps, im)
			}
		}
		rows = [][]image.Image{x0, eps}
		label := fmt.Sprintf("x0  t=%d", f0.T)
		if cellUpdate {
			label = fmt.Sprintf("x0  t=%d  update %d/%d", f0.T, f0.Update, f0.M)
		}
		labels = []string{label, "eps[0]"}
	} else {
		for r, f := range frames {
			var row []image.Image
			if f != nil {
				for b := range n {
					row = append(row, j.preview(f.X0, b))
				}
			}
			rows = append(rows, row)
			labels = append(labels, fmt.Sprintf("M=%d  t=%d", j.ms[r], f0.T))
		}
	}
	return render.Montage(rows, labels, nil, scale)
}

// padFrames puts every frame on a canvas of the largest size (labels of
// different widths make montages of different sizes; a GIF needs one).
func padFrames(frames []image.Image) []image.Image {
	var w, h int
	for _, f := range frames {
		w, h = max(w, f.Bounds().Dx()), max(h, f.Bounds().Dy())
	}
	out := make([]image.Image, len(frames))
	for i, f := range frames {
		if f.Bounds().Dx() == w && f.Bounds().Dy() == h {
			out[i] = f
			continue
		}
		dst := image.NewRGBA(image.Rect(0, 0, w, h))
		draw.Draw(dst, dst.Rect, image.NewUniform(render.MontageBackground), image.Point{}, draw.Src)
		draw.Draw(dst, f.Bounds().Sub(f.Bounds().Min), f, f.Bounds().Min, draw.Src)
		out[i] = dst
	}
	return out
}

// flagSet reports whether the flag called name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
