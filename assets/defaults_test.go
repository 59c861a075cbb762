package assets

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"geca/engine/data"
	"geca/engine/train"
	"geca/engine/train/eval"
)

// TestMeasureDefaults measures the class agreement of the built-in model
// under candidate sampler settings, the table in README.md ("Sampler
// defaults"). GECA_MEASURE_DEFAULTS lists the settings (measureSettings),
// for example
//
//	GECA_MEASURE_DEFAULTS="ddim50/3 50/3 250/1.5" GECA_MEASURE_PER_CLASS=100 GECA_MEASURE_GRIDS=/tmp \
//	    go test -tags openblas ./assets -run MeasureDefaults -v -timeout 6h
//
// The judge is the project's independent classifier (engine/train/eval), an
// MLP trained on the real training images; samples use GHG on, the model's M
// and update rate, seed 1, as the viewer does.
func TestMeasureDefaults(t *testing.T) {
	settings := measureSettings(t, "GECA_MEASURE_DEFAULTS")
	per := measurePerClass(100)
	m := measureModel(t, FashionMNIST)
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
	// the variety of real images, on the first per of each class: what a
	// sampler's variety compares with
	n := testSet.H * testSet.W * testSet.C
	var byClass []float32
	K := m.Cfg.NumClasses
	for k := 0; k < K; k++ {
		got := 0
		for i := 0; i < testSet.N && got < per; i++ {
			if testSet.Labels[i] == k {
				byClass = append(byClass, testSet.Pixels[i*n:(i+1)*n]...)
				got++
			}
		}
	}
	t.Logf("| real test images | | | %d per class | %.1f %% | %s | %.3f | |", int(count[0]), 100*judge.Accuracy(testSet), strings.Join(real, " "),
		mean(eval.Variety(byClass, K, per, n)))
	for _, s := range settings {
		start := time.Now()
		opt := s.options(m.Cfg.M)
		res, err := eval.Agreement(judge, m, per, 50, opt)
		if err != nil {
			t.Fatal(err)
		}
		var by []string
		for _, a := range res.ByClass {
			by = append(by, fmt.Sprintf("%.2f", a))
		}
		t.Logf("| %s | CFG %g | M %d | %d per class | %.1f %% | %s | %.3f | %s |", s.label(), s.cfg, opt.M, per, 100*res.Agreement,
			strings.Join(by, " "), mean(res.Variety), time.Since(start).Round(time.Second))
		// the first 10 samples of each class, one row per class
		c := m.Cfg
		cols, n := min(per, 10), c.Cells()*c.InChannels
		var sel []float32
		for k := 0; k < c.NumClasses; k++ {
			sel = append(sel, train.CellMajor(res.Images[k*per*n:(k*per+cols)*n], cols, c.InChannels, c.Cells())...)
		}
		writeMeasureGrid(t, "", s, sel, c.NumClasses, cols, c.GridH, c.GridW, c.InChannels)
	}
}
