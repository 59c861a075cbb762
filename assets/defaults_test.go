package assets

import (
	"errors"
	"fmt"
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

// TestMeasureDefaults measures the class agreement of the built-in model
// under candidate sampler settings, the table in README.md ("Sampler
// defaults"). Each entry of GECA_MEASURE_DEFAULTS is steps/CFG, or
// steps/CFG/M to sample with M updates per timestep, for example
//
//	GECA_MEASURE_DEFAULTS="ddim50/3 50/3 250/1.5" GECA_MEASURE_PER_CLASS=100 GECA_MEASURE_GRIDS=/tmp \
//	    go test -tags openblas ./assets -run MeasureDefaults -v -timeout 6h
//
// The judge is the project's independent classifier (engine/train/eval), an
// MLP trained on the real training images; samples use GHG on, the model's M
// and update rate, seed 1, as the viewer does.
func TestMeasureDefaults(t *testing.T) {
	spec := os.Getenv("GECA_MEASURE_DEFAULTS")
	if spec == "" {
		t.Skip("set GECA_MEASURE_DEFAULTS to a list of steps/CFG settings to measure")
	}
	per := 100
	if v, err := strconv.Atoi(os.Getenv("GECA_MEASURE_PER_CLASS")); err == nil && v > 0 {
		per = v
	}
	m, _, err := DefaultModel()
	if err != nil {
		t.Fatal(err)
	}
	trainSet, err := data.LoadFashionMNIST("", "train")
	if errors.Is(err, data.ErrNoFashionMNIST) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	testSet, err := data.LoadFashionMNIST("", "t10k")
	if err != nil {
		t.Fatal(err)
	}
	judge := eval.TrainClassifier(trainSet, 256, 5, 1)
	t.Logf("judge: MLP 784-256-10, real test accuracy %.4f", judge.Accuracy(testSet))
	// how well the judge knows each class on real images: the ceiling a
	// sampler can hope for
	pred := judge.Predict(testSet.Pixels, testSet.N)
	hit, count := make([]float64, 10), make([]float64, 10)
	for i, p := range pred {
		l := testSet.Labels[i]
		count[l]++
		if p == l {
			hit[l]++
		}
	}
	var real []string
	for k := range hit {
		real = append(real, fmt.Sprintf("%.2f", hit[k]/max(count[k], 1)))
	}
	t.Logf("| real test images | | | %d per class | %.1f %% | %s | |", int(count[0]), 100*judge.Accuracy(testSet), strings.Join(real, " "))
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
		M := m.Cfg.M
		if len(parts) == 3 {
			if M, err = strconv.Atoi(parts[2]); err != nil {
				t.Fatalf("setting %q: %v", s, err)
			}
		}
		start := time.Now()
		res, err := eval.Agreement(judge, m, per, 50, sample.Options{Steps: steps, GHG: true, CFG: float32(cfgScale), M: M, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		var by []string
		for _, a := range res.ByClass {
			by = append(by, fmt.Sprintf("%.2f", a))
		}
		t.Logf("| %s | CFG %g | M %d | %d per class | %.1f %% | %s | %s |", steps, cfgScale, M, per, 100*res.Agreement,
			strings.Join(by, " "), time.Since(start).Round(time.Second))
		if dir := os.Getenv("GECA_MEASURE_GRIDS"); dir != "" {
			// the first 10 samples of each class, one row per class
			c := m.Cfg
			cols := min(per, 10)
			var sel []float32
			for k := 0; k < c.NumClasses; k++ {
				for i := 0; i < cols; i++ {
					n := (k*per + i) * c.Cells() * c.InChannels
					sel = append(sel, res.Images[n:n+c.Cells()*c.InChannels]...)
				}
			}
			name := filepath.Join(dir, strings.ReplaceAll(s, "/", "-")+".png")
			if err := train.WritePNG(name, train.SampleGrid(sel, c.NumClasses, cols, c.GridH, c.GridW, c.InChannels, 2)); err != nil {
				t.Fatal(err)
			}
		}
	}
}
