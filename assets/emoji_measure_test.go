package assets

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"geca/engine/data"
	"geca/engine/sample"
	"geca/engine/train"
	"geca/engine/train/eval"
)

// TestMeasureEmoji measures the emoji model against its targets, the table
// in README.md ("Emoji model"): for each class, the mean per-pixel error of
// a sample against its emoji (at the best shift within the training
// augmentation's ±2 pixels), how much two samples of the class differ, and
// how often the closest emoji is the requested one. Each entry of
// GECA_MEASURE_EMOJI is steps/CFG or steps/CFG/M, for example
//
//	GECA_MEASURE_EMOJI="ddim50/3 ddim50/1.5" GECA_MEASURE_PER_CLASS=20 GECA_MEASURE_GRIDS=/tmp \
//	    go test -tags openblas ./assets -run MeasureEmoji -v -timeout 2h
//
// Samples use GHG on, the model's M and update rate, seed 1.
func TestMeasureEmoji(t *testing.T) {
	spec := os.Getenv("GECA_MEASURE_EMOJI")
	if spec == "" {
		t.Skip("set GECA_MEASURE_EMOJI to a list of steps/CFG settings to measure")
	}
	per := 20
	if v, err := strconv.Atoi(os.Getenv("GECA_MEASURE_PER_CLASS")); err == nil && v > 1 {
		per = v
	}
	m, _, err := Emoji.Load()
	if err != nil {
		t.Fatal(err)
	}
	c := m.Cfg
	targets, err := data.LoadEmoji("", data.EmojiSets["garden"].Emoji, data.EmojiOptions{Size: c.GridW, Variants: 1,
		Background: color.NRGBA{255, 255, 255, 255}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range strings.Fields(spec) {
		parts := strings.Split(s, "/")
		if len(parts) < 2 || len(parts) > 3 {
			t.Fatalf("setting %q: want steps/CFG[/M] such as ddim50/3", s)
		}
		steps := parts[0]
		cfgScale, err := strconv.ParseFloat(parts[1], 32)
		if err != nil {
			t.Fatalf("setting %q: %v", s, err)
		}
		M := c.M
		if len(parts) == 3 {
			if M, err = strconv.Atoi(parts[2]); err != nil {
				t.Fatalf("setting %q: %v", s, err)
			}
		}
		start := time.Now()
		res, err := eval.MatchTargets(m, targets, per, 20, 2, sample.Options{Steps: steps, GHG: true, CFG: float32(cfgScale), M: M, Seed: 1})
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
		t.Logf("%s CFG %g M %d, %d per class: nearest emoji is the requested one for %.1f %%, mean error %.3f, mean variety %.3f (%s)",
			steps, cfgScale, M, per, 100*res.Nearest, mean(res.Error), mean(res.Variety), time.Since(start).Round(time.Second))
		t.Logf("| class | error | variety | nearest is requested |")
		for k, name := range Emoji.Classes {
			t.Logf("| %d %s %s | %.3f | %.3f | %d of %d |", k, data.EmojiSets["garden"].Emoji[k], name, res.Error[k], res.Variety[k],
				res.Confusion[k][k], per)
		}
		if dir := os.Getenv("GECA_MEASURE_GRIDS"); dir != "" {
			// the target, then the first 8 samples, one row per class
			cols := min(per, 8)
			n := c.Cells() * c.InChannels
			var sel []float32 // cell-major (H, W, C), as SampleGrid draws
			for k := 0; k < c.NumClasses; k++ {
				sel = append(sel, targets.Image(k)...)
				for i := 0; i < cols; i++ {
					x := res.Images[(k*per+i)*n : (k*per+i+1)*n] // (C, H, W)
					for p := 0; p < c.Cells(); p++ {
						for ch := 0; ch < c.InChannels; ch++ {
							sel = append(sel, x[ch*c.Cells()+p])
						}
					}
				}
			}
			name := filepath.Join(dir, "emoji-"+strings.ReplaceAll(s, "/", "-")+".png")
			if err := train.WritePNG(name, train.SampleGrid(sel, c.NumClasses, cols+1, c.GridH, c.GridW, c.InChannels, 2)); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(os.Stderr, "wrote", name)
		}
	}
}
