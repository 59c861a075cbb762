package eval

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"geca/engine"
	"geca/engine/sample"
	"geca/engine/train"
)

// TestAgreementDrawsWithAppSampler: Agreement scores exactly the images that
// train.Sample (engine/sample) draws batch by batch, batch k seeded with
// seed + k·batch, and its counts are the classifier's predictions on them.
func TestAgreementDrawsWithAppSampler(t *testing.T) {
	cfg := engine.Config{Name: "agree", GridH: 4, GridW: 5, InChannels: 1, HiddenChannels: 3, EmbedDim: 8,
		Heads: 2, MLPDim: 12, NumClasses: 3, M: 3, UpdateRate: 0.5}
	p, err := train.NewParams[float32](cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.InitRandom(21, 0.1)
	ts, _ := p.Tensors()
	m, err := engine.NewModel(cfg, ts)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	c := &Classifier{In: cfg.Cells(), Hidden: 6, Classes: cfg.NumClasses,
		W1: make([]float32, 6*cfg.Cells()), B1: make([]float32, 6), W2: make([]float32, cfg.NumClasses*6), B2: make([]float32, cfg.NumClasses)}
	for _, w := range [][]float32{c.W1, c.B1, c.W2, c.B2} {
		for i := range w {
			w[i] = float32(r.NormFloat64())
		}
	}
	const per, batch, seed = 3, 4, 9
	res, err := Agreement(c, m, per, batch, sample.Options{Steps: "3", GHG: true, CFG: 1.5, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	labels := []int{0, 0, 0, 1, 1, 1, 2, 2, 2}
	var want []float32
	for s := 0; s < len(labels); s += batch {
		imgs, err := train.Sample(p, labels[s:min(s+batch, len(labels))], train.SampleOptions{Steps: 3, CFG: 1.5, Seed: seed + uint64(s)})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, imgs...)
	}
	if !slices.Equal(res.Images, want) {
		t.Fatal("Agreement's images differ from train.Sample's")
	}
	pred := c.Predict(want, len(labels))
	ok := 0
	for i, l := range labels {
		t.Run(fmt.Sprint(l), func(t *testing.T) {
			if pred[i] == l {
				ok++
			}
			if res.Confusion[l][pred[i]] == 0 {
				t.Fatalf("sample %d (class %d, predicted %d) missing from the confusion matrix %v", i, l, pred[i], res.Confusion)
			}
		})
	}
	if res.Agreement != float64(ok)/float64(len(labels)) || res.PerClass != per {
		t.Fatalf("agreement %g for %d of %d right (per class %d)", res.Agreement, ok, len(labels), res.PerClass)
	}
	// A model whose images the classifier cannot read is refused.
	small := *c
	small.In = cfg.Cells() - 1
	if _, err := Agreement(&small, m, per, batch, sample.Options{Steps: "3", GHG: true, Seed: seed}); err == nil {
		t.Fatal("classifier input size mismatch accepted")
	}
}
