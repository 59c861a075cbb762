package assets

import (
	"image/color"
	"testing"
	"time"

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
