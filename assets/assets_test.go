package assets

import (
	"math"
	"strings"
	"testing"

	"geca/engine"
)

// TestDefaultModel: the embedded model loads through the app's loader, is the
// documented size, and one update of the whole grid changes the state sanely.
func TestDefaultModel(t *testing.T) {
	m, c, err := FashionMNIST.Load()
	if err != nil {
		t.Fatal(err)
	}
	cfg := m.Cfg
	if cfg.GridH != 28 || cfg.GridW != 28 || cfg.InChannels != 1 || cfg.NumClasses != len(FashionMNIST.Classes) || cfg.Latent {
		t.Fatalf("default model config %+v: want a 28x28 pixel-space model with %d classes", cfg, len(FashionMNIST.Classes))
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

// BenchmarkUpdate times one cell update of the whole grid of each built-in
// model (one sample, every cell updating), the unit of the app's growth
// animation: go test -tags openblas ./assets -bench Update
func BenchmarkUpdate(b *testing.B) {
	for _, bi := range Builtins {
		b.Run(bi.Name, func(b *testing.B) {
			m, _, err := bi.Load()
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
		})
	}
}

// TestBuiltins: every built-in model loads, names each of its classes, and
// is found by its name whatever the case; an unknown name lists the others.
func TestBuiltins(t *testing.T) {
	for _, b := range Builtins {
		t.Run(b.Name, func(t *testing.T) {
			m, c, err := b.Load()
			if err != nil {
				t.Fatal(err)
			}
			if m.Cfg.NumClasses != len(b.Classes) {
				t.Fatalf("%d classes in the model, %d names", m.Cfg.NumClasses, len(b.Classes))
			}
			if c.Weights != "ema" {
				t.Fatalf("holds %q weights, want ema", c.Weights)
			}
			if got, err := Lookup(strings.ToUpper(b.Name)); err != nil || got != b {
				t.Fatalf("Lookup(%q) = %v, %v", strings.ToUpper(b.Name), got, err)
			}
			if len(b.Hash()) != 64 {
				t.Fatalf("hash %q", b.Hash())
			}
		})
	}
	if _, err := Lookup("mnist"); err == nil || !strings.Contains(err.Error(), "fmnist, emoji") {
		t.Fatalf("Lookup(mnist): %v, want an error listing fmnist, emoji", err)
	}
}

// TestEmojiModel: the teaching model is a 32x32 RGB pixel-space model of the
// garden set, the lizard first.
func TestEmojiModel(t *testing.T) {
	m, _, err := Emoji.Load()
	if err != nil {
		t.Fatal(err)
	}
	if c := m.Cfg; c.GridH != 32 || c.GridW != 32 || c.InChannels != 3 || c.Latent || c.NumClasses != 10 {
		t.Fatalf("emoji model config %+v: want 32x32 RGB pixels, 10 classes", c)
	}
	if Emoji.Classes[0] != "lizard" {
		t.Fatalf("class 0 is %q, want the lizard", Emoji.Classes[0])
	}
}
