package assets

import (
	"math"
	"testing"

	"geca/engine"
)

// TestDefaultModel: the embedded model loads through the app's loader, is the
// documented size, and one update of the whole grid changes the state sanely.
func TestDefaultModel(t *testing.T) {
	m, c, err := DefaultModel()
	if err != nil {
		t.Fatal(err)
	}
	cfg := m.Cfg
	if cfg.GridH != 28 || cfg.GridW != 28 || cfg.InChannels != 1 || cfg.NumClasses != len(DefaultClasses) || cfg.Latent {
		t.Fatalf("default model config %+v: want a 28x28 pixel-space model with %d classes", cfg, len(DefaultClasses))
	}
	if c.Weights != "ema" {
		t.Fatalf("default model holds %q weights, want ema", c.Weights)
	}
	st := engine.NewState(1, cfg.GridH, cfg.GridW, cfg.CellDim())
	if err := engine.Seed(cfg, st, engine.NewStream(1, engine.StreamSeed)); err != nil {
		t.Fatal(err)
	}
	y := make([]float32, cfg.NumClasses)
	y[3] = 1
	cond, err := m.Condition([]int{500}, [][]float32{y})
	if err != nil {
		t.Fatal(err)
	}
	before := append([]float32(nil), st.Data...)
	up := m.NewUpdater(1)
	if err := up.Update(st, cond, nil, nil); err != nil {
		t.Fatal(err)
	}
	changed := 0
	for i, v := range st.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("state value %d is %v after one update", i, v)
		}
		if v != before[i] {
			changed++
		}
	}
	if changed == 0 {
		t.Fatal("one update of the default model changed nothing")
	}
}

// BenchmarkDefaultUpdate times one cell update of the whole 28x28 grid of the
// default model (one sample, every cell updating), the unit of the app's
// growth animation.
func BenchmarkDefaultUpdate(b *testing.B) {
	m, _, err := DefaultModel()
	if err != nil {
		b.Fatal(err)
	}
	cfg := m.Cfg
	st := engine.NewState(1, cfg.GridH, cfg.GridW, cfg.CellDim())
	if err := engine.Seed(cfg, st, engine.NewStream(1, engine.StreamSeed)); err != nil {
		b.Fatal(err)
	}
	y := make([]float32, cfg.NumClasses)
	y[0] = 1
	cond, err := m.Condition([]int{500}, [][]float32{y})
	if err != nil {
		b.Fatal(err)
	}
	up := m.NewUpdater(1)
	up.Dense = true // recompute every cell, as when the whole grid has changed
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := up.Update(st, cond, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
}
