package assets

import (
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
	targets, err := data.LoadEmoji("", data.EmojiSets["garden"].Emoji, data.EmojiOptions{Size: c.GridW, Variants: 1,
		Background: color.NRGBA{255, 255, 255, 255}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		start := time.Now()
		opt := s.options(c.M)
		res, err := eval.MatchTargets(m, targets, per, 20, 2, opt)
		if err != nil {
			t.Fatal(err)
		}
		mean := func(v []float64) float64 {
			var s float64
			for _, x := range v {
				s += x
			}
			return s / float64(len(v))
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
//	GECA_MEASURE_DENOISER=8,16 go test -tags openblas ./assets -run MeasureEmojiDenoiser -v
//
// (the list is the numbers of updates M to try; GECA_MEASURE_MODEL as above).
func TestMeasureEmojiDenoiser(t *testing.T) {
	spec := os.Getenv("GECA_MEASURE_DENOISER")
	if spec == "" {
		t.Skip("set GECA_MEASURE_DENOISER to a comma-separated list of M")
	}
	m := measureModel(t, Emoji)
	c := m.Cfg
	targets, err := data.LoadEmoji("", data.EmojiSets["garden"].Emoji, data.EmojiOptions{Size: c.GridW, Variants: 1,
		Background: color.NRGBA{255, 255, 255, 255}})
	if err != nil {
		t.Fatal(err)
	}
	sched, err := diffusion.New(diffusion.DefaultSteps, "")
	if err != nil {
		t.Fatal(err)
	}
	B, N, Cin := c.NumClasses, c.Cells(), c.InChannels
	steps := []int{900, 700, 600, 500, 400, 300, 200, 100, 20}
	head := "| x̂0 mean squared error at t = |"
	for _, tt := range steps {
		head += fmt.Sprintf(" %d |", tt)
	}
	t.Log(head)
	// for scale: a blank white x̂0, the same at every t
	var white float64
	for b := 0; b < B; b++ {
		for _, v := range targets.Image(b) {
			white += float64((1 - v) * (1 - v))
		}
	}
	t.Logf("| blank white image | %.3f at every t |", white/float64(B*N*Cin))
	for _, ms := range strings.Split(spec, ",") {
		M, err := strconv.Atoi(ms)
		if err != nil || M < 1 {
			t.Fatalf("GECA_MEASURE_DENOISER: M %q", ms)
		}
		row := fmt.Sprintf("| M %d |", M)
		for _, tt := range steps {
			r := rand.New(rand.NewPCG(uint64(tt), 1))
			eps := make([]float32, B*N*Cin)
			for i := range eps {
				eps[i] = float32(r.NormFloat64())
			}
			st := engine.NewState(B, c.GridH, c.GridW, c.CellDim())
			ts, ys := make([]int, B), make([][]float32, B)
			sa, sb := float32(sched.SqrtAlphasCumprod[tt]), float32(sched.SqrtOneMinusAlphasCumprod[tt])
			for b := 0; b < B; b++ {
				ts[b], ys[b] = tt, make([]float32, c.NumClasses)
				ys[b][b] = 1
				img := targets.Image(b)
				for n := 0; n < N; n++ {
					for k := 0; k < Cin; k++ {
						st.Data[(b*N+n)*st.C+k] = sa*img[n*Cin+k] + sb*eps[(b*N+n)*Cin+k]
					}
				}
			}
			if err := engine.Seed(c, st, engine.NewStream(1, engine.StreamSeed)); err != nil {
				t.Fatal(err)
			}
			cond, err := m.Condition(ts, ys)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.NewUpdater(B).Call(st, cond, M, c.UpdateRate, engine.NewStream(1, engine.StreamMask), nil); err != nil {
				t.Fatal(err)
			}
			ra, rm := sched.SqrtRecipAlphasCumprod[tt], sched.SqrtRecipm1AlphasCumprod[tt]
			var se float64
			for b := 0; b < B; b++ {
				img := targets.Image(b)
				for n := 0; n < N; n++ {
					for k := 0; k < Cin; k++ {
						cell := st.Data[(b*N+n)*st.C:]
						x0 := ra*float64(cell[k]) - rm*float64(cell[Cin+k])
						d := x0 - float64(img[n*Cin+k])
						se += d * d
					}
				}
			}
			row += fmt.Sprintf(" %.3f |", se/float64(B*N*Cin))
		}
		t.Log(row)
	}
}
