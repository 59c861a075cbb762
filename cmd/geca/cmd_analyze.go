package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"geca/assets"
	"geca/engine"
	"geca/engine/ckpt"
	"geca/engine/data"
	"geca/engine/msweep"
	"geca/engine/sample"
	"geca/engine/train/eval"
	"geca/internal/chart"
	"geca/internal/progress"
	"geca/internal/safefile"
	"geca/internal/shard"
	"geca/render"
)

func init() {
	register(&command{
		name:    "analyze-m",
		summary: "measure undergrowth and overgrowth: denoising error and the seed's reach for each M",
		usage:   "[--ckpt FILE | --model fmnist|emoji] [--data fashion-mnist|emoji | --latents DIR] [--ms 1,2,4,8,16] [--timesteps 100,500,900] [--images 200] [--shard K/N|auto] [--agreement N] [--max-memory SIZE] --out PREFIX | --merge A.csv,B.csv --out PREFIX",
		run:     runAnalyzeM,
	})
}

func runAnalyzeM(args []string) error {
	c := commands["analyze-m"]
	fs := newFlags(c)
	mf := addModelFlags(fs, "checkpoint (.pt or .safetensors); default: a built-in model, --model")
	ckptPath := mf.ckpt
	dataName := fs.String("data", "", "held-out images: fashion-mnist (its test set; the default for the built-in Fashion-MNIST model) or emoji (the emoji model's ten emoji, shifted as in training; its default)")
	dataDir := fs.String("data-dir", "", "folder of the Fashion-MNIST IDX files (default "+data.FashionMNISTDir+")")
	latents := fs.String("latents", "", "held-out latents in the official layout (features*/{i}.npy, labels*/{i}.npy), for latent models")
	msFlag := fs.String("ms", "", "the values of M, ascending (default: 1 … 2×the trained M, log-spaced)")
	tsFlag := fs.String("timesteps", "100,300,500,700,900", "timesteps of the 1000-step process to measure at")
	nImages := fs.Int("images", 200, "held-out images to use (the first N of the set)")
	seed := fs.Uint64("seed", 1, "seed of the noise, seed cells and masks")
	shardFlag := fs.String("shard", "", "measure only shard K/N of the images (auto: from Slurm or Kubernetes); merge the CSVs with --merge")
	agreement := fs.Int("agreement", 0, "built-in model: also sample N images per class for each M and report how often an independent classifier agrees with the requested class")
	agreeSteps := fs.String("agreement-steps", assets.DefaultSampler.Steps, "with --agreement: the sampler's respaced steps")
	agreeCFG := fs.Float64("agreement-cfg", float64(assets.DefaultSampler.CFG), "with --agreement: the classifier-free guidance scale")
	agreeGHG := fs.String("agreement-ghg", onOff(assets.DefaultSampler.GHG), "with --agreement: Gene Heredity Guidance, on or off")
	merge := fs.String("merge", "", "comma-separated CSVs of shards to add up instead of measuring")
	maxMem := addMemoryFlag(fs)
	out := fs.String("out", "", "output prefix: PREFIX.csv, PREFIX.heat.png (timestep × M), PREFIX.lines.png (error vs M), PREFIX.agreement.png (with --agreement)")
	if err := parseFlags(fs, c, args); err != nil {
		return err
	}
	if err := applyMemoryFlag(maxMem); err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out PREFIX is required\nusage: geca analyze-m %s", c.usage)
	}
	for _, suffix := range []string{".csv", ".heat.png", ".lines.png"} {
		if err := safefile.CheckOutput("--out", *out+suffix, *ckptPath); err != nil {
			return err
		}
	}
	if *merge != "" {
		return mergeAnalyses(strings.Split(*merge, ","), *out)
	}
	sh, err := shard.Parse(*shardFlag, nil)
	if err != nil {
		return usagef("--shard: %v", err)
	}
	if *nImages < 1 || *nImages > 1_000_000 {
		return usagef("--images %d out of range [1, 1000000]", *nImages)
	}
	if *agreement < 0 || *agreement > 10000 {
		return usagef("--agreement %d out of range [0, 10000]", *agreement)
	}
	if math.IsNaN(*agreeCFG) || *agreeCFG < 0 || *agreeCFG > 1e4 {
		return usagef("--agreement-cfg %v out of range [0, 10000]", *agreeCFG)
	}
	ghgOn, err := parseSwitch("--agreement-ghg", *agreeGHG)
	if err != nil {
		return err
	}
	ts, err := parseIntList(*tsFlag)
	if err != nil {
		return usagef("--timesteps: %v", err)
	}

	model, _, builtin, err := mf.load(ckpt.Options{})
	if err != nil {
		return err
	}
	fmnist := builtin == assets.FashionMNIST // the test set and the --agreement classifier are Fashion-MNIST's
	if builtin == assets.Emoji && *dataName == "" && *latents == "" {
		*dataName = "emoji"
	}
	cfg := model.Cfg
	ms := msweep.DefaultMs(cfg.M)
	if *msFlag != "" {
		if ms, err = parseIntList(*msFlag); err != nil {
			return usagef("--ms: %v", err)
		}
	}
	if *agreement > 0 && (!fmnist || sh != shard.All) {
		return usagef("--agreement needs the built-in Fashion-MNIST model and no --shard")
	}

	// Held-out data.
	var ds *data.Dataset
	switch {
	case *latents != "" && *dataName != "":
		return usagef("give --data or --latents, not both")
	case *latents != "":
		ds, err = data.LoadLatents(*latents)
	case *dataName == "" && !fmnist:
		return usagef("a checkpoint needs held-out data: --latents DIR (latent models), --data fashion-mnist or --data emoji")
	case strings.EqualFold(*dataName, "emoji"):
		// the targets shifted as the training images are (engine/data)
		ds, err = data.LoadEmoji("", data.EmojiSets["garden"].Emoji, data.EmojiOptions{Size: cfg.GridW, Variants: 20, Shift: 2,
			Seed: *seed, Background: color.NRGBA{255, 255, 255, 255}})
	case *dataName == "" || strings.EqualFold(*dataName, "fashion-mnist"):
		ds, err = data.LoadFashionMNIST(*dataDir, "t10k")
		if err == nil && ds.H != cfg.GridH {
			ds, err = ds.Pad(cfg.GridH, -1)
		}
	default:
		return usagef("unknown --data %q (known: fashion-mnist, emoji)", *dataName)
	}
	if err != nil {
		return err
	}
	if ds.H != cfg.GridH || ds.W != cfg.GridW || ds.C != cfg.InChannels {
		return fmt.Errorf("held-out data is %dx%dx%d, the model's grid is %dx%dx%d", ds.H, ds.W, ds.C, cfg.GridH, cfg.GridW, cfg.InChannels)
	}
	if len(ds.Classes) != cfg.NumClasses {
		return fmt.Errorf("held-out data has %d classes, the model %d", len(ds.Classes), cfg.NumClasses)
	}
	var images []msweep.Image
	for _, i := range sh.Items(min(*nImages, ds.N)) {
		y := make([]float32, cfg.NumClasses)
		if ds.Multi != nil {
			copy(y, ds.Multi[i*cfg.NumClasses:])
		} else {
			y[ds.Labels[i]] = 1
		}
		images = append(images, msweep.Image{Index: i, X0: ds.Image(i), Label: y})
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Fprintf(os.Stderr, "geca analyze-m: %s (trained M %d), %d images (shard %v) × %d timesteps, M %v\n",
		cfg.Name, cfg.M, len(images), sh, len(ts), ms)
	start := time.Now()
	bar := progress.New(os.Stderr, len(images)*len(ts), "measuring")
	res, err := msweep.Run(ctx, model, images, msweep.Options{Ms: ms, Timesteps: ts, Seed: *seed, Batch: max(8, 2*runtime.GOMAXPROCS(0))},
		func(done, total int) { bar.Set(done, "") })
	bar.Done()
	if err != nil {
		return err
	}
	var agree []float64
	if *agreement > 0 {
		if agree, err = agreementByM(model, ds, ms, *agreement, assets.Sampler{Steps: *agreeSteps, CFG: float32(*agreeCFG), GHG: ghgOn}, *seed, *dataDir); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "geca analyze-m: measured in %s\n", time.Since(start).Round(time.Second))
	return writeAnalysis(res, cfg.M, agree, *out)
}

// agreementByM samples perClass images of each class for every M with the
// sampler settings s (by default the viewer's) and scores them with an MLP trained on real
// Fashion-MNIST.
func agreementByM(m *engine.Model, test *data.Dataset, ms []int, perClass int, s assets.Sampler, seed uint64, dataDir string) ([]float64, error) {
	train, err := data.LoadFashionMNIST(dataDir, "train")
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(os.Stderr, "geca analyze-m: training the classifier on real images")
	judge := eval.TrainClassifier(train, 256, 5, 1)
	fmt.Fprintf(os.Stderr, "geca analyze-m: classifier accuracy on real test images %.1f %%\n", 100*judge.Accuracy(test))
	var out []float64
	bar := progress.New(os.Stderr, len(ms), "sampling for agreement")
	for i, M := range ms {
		res, err := eval.Agreement(judge, m, perClass, 50, sample.Options{Steps: s.Steps, GHG: s.GHG, CFG: s.CFG, M: M, Seed: seed})
		if err != nil {
			return nil, err
		}
		out = append(out, res.Agreement)
		bar.Set(i+1, fmt.Sprintf("M=%d: %.0f %%", M, 100*res.Agreement))
	}
	bar.Done()
	return out, nil
}

// The CSV holds sums, so that the files of shards add up exactly.
var analysisHeader = []string{"M", "t", "images", "eps_mse_sum", "vb_bits_sum", "reach_sum", "nonfinite", "eps_mse", "vb_bits", "reach", "agreement"}

func writeAnalysis(res *msweep.Result, trainedM int, agree []float64, out string) error {
	err := safefile.Write(out+".csv", func(w io.Writer) error {
		cw := csv.NewWriter(w)
		cw.Write(append([]string{"# trained_M=" + strconv.Itoa(trainedM)}, make([]string, len(analysisHeader)-1)...))
		cw.Write(analysisHeader)
		for mi := range res.Ms {
			for ti := range res.Timesteps {
				p := res.At(mi, ti)
				mse, vb, reach := p.Means()
				a := ""
				if agree != nil {
					a = strconv.FormatFloat(agree[mi], 'g', -1, 64)
				}
				cw.Write([]string{strconv.Itoa(p.M), strconv.Itoa(p.T), strconv.Itoa(p.N), f64(p.EpsMSE), f64(p.VBBits), f64(p.Reach),
					strconv.Itoa(p.Bad), f64(mse), f64(vb), f64(reach), a})
			}
		}
		cw.Flush()
		return cw.Error()
	})
	if err != nil {
		return err
	}
	if err := render.WritePNG(out+".heat.png", heatChart(res, trainedM).Draw()); err != nil {
		return err
	}
	if err := render.WritePNG(out+".lines.png", lineChart(res, trainedM).Draw(720, 420)); err != nil {
		return err
	}
	if agree != nil {
		if err := render.WritePNG(out+".agreement.png", agreementChart(res, trainedM, agree).Draw(720, 320)); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "geca analyze-m: classifier agreement by M: %s\n", agreementText(res.Ms, agree))
	}
	fmt.Fprintf(os.Stderr, "geca analyze-m: wrote %s.csv, %s.heat.png and %s.lines.png\n", out, out, out)
	return nil
}

func f64(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func heatChart(res *msweep.Result, trainedM int) *chart.Heat {
	h := &chart.Heat{Title: "eps-MSE by timestep and M (same noise, seed, masks)", XLabel: "M (cell updates per denoiser call)",
		YLabel: "timestep t", Log: true, MarkCol: slices.Index(res.Ms, trainedM), MarkLabel: "trained"}
	for _, m := range res.Ms {
		h.Cols = append(h.Cols, strconv.Itoa(m))
	}
	for ti, t := range res.Timesteps {
		h.Rows = append(h.Rows, strconv.Itoa(t))
		row := make([]float64, len(res.Ms))
		for mi := range res.Ms {
			row[mi], _, _ = res.At(mi, ti).Means()
		}
		h.Values = append(h.Values, row)
	}
	return h
}

func lineChart(res *msweep.Result, trainedM int) *chart.Line {
	l := &chart.Line{Title: "denoising error vs M", XLabel: "M (log scale)", YLabel: "eps-MSE", LogX: true, LogY: true,
		Marks: []chart.Mark{{X: float64(trainedM), Label: "trained M=" + strconv.Itoa(trainedM)}}}
	x := make([]float64, len(res.Ms))
	for i, m := range res.Ms {
		x[i] = float64(m)
	}
	mean := make([]float64, len(res.Ms))
	for ti, t := range res.Timesteps {
		y := make([]float64, len(res.Ms))
		for mi := range res.Ms {
			y[mi], _, _ = res.At(mi, ti).Means()
			mean[mi] += y[mi] / float64(len(res.Timesteps))
		}
		l.Series = append(l.Series, chart.Series{Name: "t=" + strconv.Itoa(t), X: x, Y: y})
	}
	l.Series = append(l.Series, chart.Series{Name: "mean", X: x, Y: mean, Color: chart.Palette[7]})
	return l
}

// agreementChart plots how often the independent classifier recognises the
// requested class in samples made with each M.
func agreementChart(res *msweep.Result, trainedM int, agree []float64) *chart.Line {
	x, y := make([]float64, len(res.Ms)), make([]float64, len(res.Ms))
	for i, m := range res.Ms {
		x[i], y[i] = float64(m), 100*agree[i]
	}
	return &chart.Line{Title: "samples recognised as the requested class", XLabel: "M (log scale)", YLabel: "agreement %", LogX: true,
		Series: []chart.Series{{Name: "agreement", X: x, Y: y}},
		Marks:  []chart.Mark{{X: float64(trainedM), Label: "trained M=" + strconv.Itoa(trainedM)}}}
}

func agreementText(ms []int, agree []float64) string {
	var parts []string
	for i, m := range ms {
		parts = append(parts, fmt.Sprintf("M=%d %.0f%%", m, 100*agree[i]))
	}
	return strings.Join(parts, ", ")
}

// mergeAnalyses adds up the CSVs of shards over the same grid.
func mergeAnalyses(files []string, out string) error {
	var total *msweep.Result
	var agree []float64
	trained := -1
	for _, f := range files {
		r, tm, ag, err := readAnalysis(strings.TrimSpace(f))
		if err != nil {
			return err
		}
		if trained >= 0 && tm != trained {
			return fmt.Errorf("%s: trained M %d, the other files %d: not shards of one analysis", f, tm, trained)
		}
		trained = tm
		if total == nil {
			total, agree = r, ag // agreement is measured unsharded: one file
		} else if err := total.Add(r); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		} else {
			agree = nil
		}
	}
	return writeAnalysis(total, trained, agree, out)
}

// readAnalysis reads a CSV of writeAnalysis: the sums, the trained M, and
// the agreement by M when it was measured.
func readAnalysis(path string) (*msweep.Result, int, []float64, error) {
	b, err := safefile.ReadFile(path, 64<<20)
	if err != nil {
		return nil, 0, nil, err
	}
	rows, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
	if err != nil {
		return nil, 0, nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(rows) < 3 || !strings.HasPrefix(rows[0][0], "# trained_M=") || !slices.Equal(rows[1], analysisHeader) {
		return nil, 0, nil, fmt.Errorf("%s: not a CSV written by geca analyze-m", path)
	}
	trained, err := strconv.Atoi(strings.TrimPrefix(rows[0][0], "# trained_M="))
	if err != nil {
		return nil, 0, nil, fmt.Errorf("%s: bad trained M %q", path, rows[0][0])
	}
	var ms, ts []int
	type key struct{ m, t int }
	pts := map[key]msweep.Point{}
	agreeByM := map[int]float64{}
	for i, r := range rows[2:] {
		bad := func(what string) error { return fmt.Errorf("%s: line %d: bad %s", path, i+3, what) }
		m, err1 := strconv.Atoi(r[0])
		t, err2 := strconv.Atoi(r[1])
		n, err3 := strconv.Atoi(r[2])
		nb, err4 := strconv.Atoi(r[6])
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil || n < 0 || nb < 0 {
			return nil, 0, nil, bad("M, t or counts")
		}
		var sums [3]float64
		for k := range sums {
			v, err := strconv.ParseFloat(r[3+k], 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, 0, nil, bad(analysisHeader[3+k])
			}
			sums[k] = v
		}
		if a := r[len(analysisHeader)-1]; a != "" {
			v, err := strconv.ParseFloat(a, 64)
			if err != nil || v < 0 || v > 1 {
				return nil, 0, nil, bad("agreement")
			}
			agreeByM[m] = v
		}
		if !slices.Contains(ms, m) {
			ms = append(ms, m)
		}
		if !slices.Contains(ts, t) {
			ts = append(ts, t)
		}
		if _, dup := pts[key{m, t}]; dup {
			return nil, 0, nil, bad("repeated (M, t)")
		}
		pts[key{m, t}] = msweep.Point{M: m, T: t, N: n, EpsMSE: sums[0], VBBits: sums[1], Reach: sums[2], Bad: nb}
	}
	res := msweep.NewResult(ms, ts)
	if len(pts) != len(ms)*len(ts) {
		return nil, 0, nil, fmt.Errorf("%s: %d rows for %d values of M and %d timesteps", path, len(pts), len(ms), len(ts))
	}
	for mi, m := range ms {
		for ti, t := range ts {
			*res.At(mi, ti) = pts[key{m, t}]
		}
	}
	var agree []float64
	if len(agreeByM) == len(ms) {
		for _, m := range ms {
			agree = append(agree, agreeByM[m])
		}
	}
	return res, trained, agree, nil
}

// parseIntList reads "1,2,4".
func parseIntList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%q is not a list of integers", s)
		}
		out = append(out, v)
	}
	return out, nil
}
