package assets

import (
	"errors"
	"fmt"
	"image/color"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"geca/engine"
	"geca/engine/diffusion"

	"geca/engine/data"
	"geca/engine/train"
	"geca/engine/train/eval"
)

// TestMeasureEmoji measures the emoji model against its targets, the table
// in README.md ("Emoji model"): for each class, the mean per-pixel error of
// a sample against its emoji (at the best shift within the training
// augmentation's ±2 pixels), how much two samples of the class differ, and
// how often the closest emoji is the requested one. GECA_MEASURE_EMOJI lists
// the settings (measureSettings), for example
//
//	GECA_MEASURE_EMOJI="ddim50/3 ddim50/1.5" GECA_MEASURE_PER_CLASS=20 GECA_MEASURE_GRIDS=/tmp \
//	    go test -tags openblas ./assets -run MeasureEmoji -v -timeout 2h
//
// Samples use GHG on, the model's M and update rate, seed 1.
func TestMeasureEmoji(t *testing.T) {
	settings := measureSettings(t, "GECA_MEASURE_EMOJI")
	per := measurePerClass(20)
	m := measureModel(t, Emoji)
	c := m.Cfg
	targets := emojiTargets(t, c.GridW)
	for _, s := range settings {
		start := time.Now()
		opt := s.options(c.M)
		res, err := eval.MatchTargets(m, targets, per, 20, 2, opt)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s, CFG %g, M %d, %d per class: nearest emoji is the requested one for %.1f %%, mean error %.3f, mean variety %.3f (%s)",
			s.label(), s.cfg, opt.M, per, 100*res.Nearest, mean(res.Error), mean(res.Variety), time.Since(start).Round(time.Second))
		t.Logf("| class | error | variety | nearest is requested |")
		for k, name := range Emoji.Classes {
			t.Logf("| %d %s %s | %.3f | %.3f | %d of %d |", k, data.EmojiSets["garden"].Emoji[k], name, res.Error[k], res.Variety[k],
				res.Confusion[k][k], per)
		}
		// the target, then the first 8 samples, one row per class
		cols := min(per, 8)
		n := c.Cells() * c.InChannels
		var sel []float32
		for k := 0; k < c.NumClasses; k++ {
			sel = append(sel, targets.Image(k)...)
			sel = append(sel, train.CellMajor(res.Images[k*per*n:(k*per+cols)*n], cols, c.InChannels, c.Cells())...)
		}
		writeMeasureGrid(t, "emoji-", s, sel, c.NumClasses, cols+1, c.GridH, c.GridW, c.InChannels)
	}
}

// TestMeasureEmojiDenoiser measures how well one denoiser call recovers each
// emoji at a range of noise levels: x_t made from the centred emoji and
// fresh noise, a fresh seed, one call of M updates with the emoji's label
// (no guidance), and the mean squared error of x̂0 (from the predicted ε)
// against the emoji, over every value of the ten. For a model that knows
// its ten pictures, x̂0 is the picture long before the noise is gone; a
// model that only cleans up what it sees has large errors at the noisy
// steps, where a sample's shape is decided. Run with
//
//	GECA_MEASURE_DENOISER=8,16,8/1 go test -tags openblas ./assets -run MeasureEmojiDenoiser -v
//
// (the list is the numbers of updates M to try, each at the model's update
// rate or, after a slash, another; GECA_MEASURE_MODEL as above). With
// GECA_MEASURE_GRIDS it also writes, for each entry, the picture behind the
// numbers: one row per emoji, the emoji and then x̂0 at each t.
func TestMeasureEmojiDenoiser(t *testing.T) {
	spec := os.Getenv("GECA_MEASURE_DENOISER")
	if spec == "" {
		t.Skip("set GECA_MEASURE_DENOISER to a comma-separated list of M[/update rate]")
	}
	m := measureModel(t, Emoji)
	c := m.Cfg
	targets := emojiTargets(t, c.GridW)
	sched, err := diffusion.New(diffusion.DefaultSteps, "")
	if err != nil {
		t.Fatal(err)
	}
	B, n, Cin, Cout := c.NumClasses, c.Cells(), c.InChannels, c.OutChannels()
	x0 := train.Planes(targets.Pixels, B, Cin, n) // image b is the target of class b
	labels := make([][]float32, B)
	for b := range labels {
		labels[b] = make([]float32, B)
		labels[b][b] = 1
	}
	steps := []int{900, 700, 600, 500, 400, 300, 200, 100, 20}
	head := "| x̂0 mean squared error at t = |"
	for _, tt := range steps {
		head += fmt.Sprintf(" %d |", tt)
	}
	t.Log(head)
	white := make([]float32, len(x0)) // for scale: a blank white x̂0, the same at every t
	for i := range white {
		white[i] = 1
	}
	t.Logf("| blank white image | %.3f at every t |", meanSquaredError(white, x0))

	xt, eps, out, x0hat := make([]float32, len(x0)), make([]float32, len(x0)), make([]float32, B*Cout*n), make([]float32, len(x0))
	for _, ms := range strings.Split(spec, ",") {
		byStep := make([][]float32, len(steps)) // each t's x̂0 of every class, cell-major, for the grid
		mText, rateText, withRate := strings.Cut(ms, "/")
		M, err := strconv.Atoi(mText)
		if err != nil || M < 1 {
			t.Fatalf("GECA_MEASURE_DENOISER: M %q", mText)
		}
		rate, row := c.UpdateRate, fmt.Sprintf("| M %d |", M)
		if withRate {
			r, err := strconv.ParseFloat(rateText, 32)
			if err != nil || !(r > 0 && r <= 1) {
				t.Fatalf("GECA_MEASURE_DENOISER: update rate %q: want 0 < rate ≤ 1", rateText)
			}
			rate, row = float32(r), fmt.Sprintf("| M %d, update rate %g |", M, r)
		}
		for si, tt := range steps {
			r := rand.New(rand.NewPCG(uint64(tt), 1))
			for i := range eps {
				eps[i] = float32(r.NormFloat64())
			}
			st := engine.NewState(B, c.GridH, c.GridW, c.CellDim())
			ts := make([]int, B)
			for b := range ts {
				ts[b] = tt
			}
			cond, err := m.Condition(ts, labels)
			if err != nil {
				t.Fatal(err)
			}
			if err := errors.Join(sched.QSample(xt, x0, eps, tt), engine.SetInput(st, c, xt),
				engine.Seed(c, st, engine.NewStream(1, engine.StreamSeed)),
				m.NewUpdater(B).Call(st, cond, M, rate, engine.NewStream(1, engine.StreamMask), nil),
				engine.ModelOut(out, st, c)); err != nil {
				t.Fatal(err)
			}
			// ε̂ (or v̂) is each sample's first C_in output planes
			for b := 0; b < B; b++ {
				img, pred := b*Cin*n, out[b*Cout*n:b*Cout*n+Cin*n]
				if c.Prediction == engine.PredictV {
					if err := sched.EpsFromV(pred, xt[img:img+Cin*n], pred, tt); err != nil {
						t.Fatal(err)
					}
				}
				if err := sched.PredictX0(x0hat[img:img+Cin*n], xt[img:img+Cin*n], pred, tt); err != nil {
					t.Fatal(err)
				}
			}
			row += fmt.Sprintf(" %.3f |", meanSquaredError(x0hat, x0))
			byStep[si] = train.CellMajor(x0hat, B, Cin, n)
		}
		t.Log(row)
		// one row per class: the emoji, then x̂0 at each t, noisiest first
		var grid []float32
		for k := 0; k < B; k++ {
			grid = append(grid, targets.Image(k)...)
			for _, img := range byStep {
				grid = append(grid, img[k*n*Cin:(k+1)*n*Cin]...)
			}
		}
		writeMeasureGrid(t, "emoji-x0-", measureSetting{name: "M" + ms}, grid, B, len(steps)+1, c.GridH, c.GridW, Cin)
	}
}

// emojiTargets are the built-in emoji rendered centred on white at size
// pixels, one image per class: what the emoji model is measured against.
func emojiTargets(t *testing.T, size int) *data.Dataset {
	t.Helper()
	ds, err := data.LoadEmoji("", data.EmojiSets["garden"].Emoji, data.EmojiOptions{Size: size, Variants: 1,
		Background: color.NRGBA{255, 255, 255, 255}})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// meanSquaredError is the mean of (a − b)² over all values.
func meanSquaredError(a, b []float32) float64 {
	var se float64
	for i := range a {
		d := float64(a[i] - b[i])
		se += d * d
	}
	return se / float64(len(a))
}
