package train

import (
	"testing"

	"geca/engine"
	"geca/engine/data"
)

// BenchmarkTrainStep measures one optimisation step of the default
// Fashion-MNIST model (28x28 grid, D 64, MLP 128, C_h 16, M 8) at batch 8 and
// reports training samples per second.
func BenchmarkTrainStep(b *testing.B) {
	cfg := DefaultFashionConfig()
	const batch = 8
	ds := &data.Dataset{N: 16, H: cfg.GridH, W: cfg.GridW, C: 1, Classes: make([]string, cfg.NumClasses),
		Pixels: make([]float32, 16*cfg.Cells()), Labels: make([]int, 16)}
	opt := DefaultOptions()
	opt.Batch = batch
	tr, err := NewTrainer(cfg, opt, ds)
	if err != nil {
		b.Fatal(err)
	}
	tr.P.InitRandom(1, 0.05) // non-zero everywhere, so every op does its real work
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tr.TrainStep(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "samples/s")
}

var _ = engine.Config{}
