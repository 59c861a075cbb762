package train

import (
	"math/rand/v2"
	"testing"

	"geca/engine"
	"geca/engine/data"
)

// toyData is a small two-class dataset: class 0 bright left half, class 1
// bright top half, with a little noise.
func toyData(n, h, w int) *data.Dataset {
	r := rand.New(rand.NewPCG(3, 4))
	d := &data.Dataset{N: n, H: h, W: w, C: 1, Classes: []string{"left", "top"}}
	for k := 0; k < n; k++ {
		l := k % 2
		d.Labels = append(d.Labels, l)
		for i := 0; i < h; i++ {
			for j := 0; j < w; j++ {
				v := float32(-1)
				if (l == 0 && j < w/2) || (l == 1 && i < h/2) {
					v = 1
				}
				d.Pixels = append(d.Pixels, v+0.05*float32(r.NormFloat64()))
			}
		}
	}
	return d
}

func smallConfig() engine.Config {
	return engine.Config{Name: "test", GridH: 8, GridW: 8, InChannels: 1, HiddenChannels: 4, EmbedDim: 16,
		Heads: 2, MLPDim: 32, NumClasses: 2, M: 4, UpdateRate: 0.5}
}

// TestTrainingLossFalls trains a tiny model for a few dozen steps and checks
// that the mean loss of the last steps is clearly below that of the first.
func TestTrainingLossFalls(t *testing.T) {
	opt := DefaultOptions()
	opt.Batch, opt.LR = 8, 3e-3
	tr, err := NewTrainer(smallConfig(), opt, toyData(64, 8, 8))
	if err != nil {
		t.Fatal(err)
	}
	var first, last float64
	const steps, k = 60, 15
	for s := 0; s < steps; s++ {
		st, err := tr.TrainStep()
		if err != nil {
			t.Fatal(err)
		}
		if s < k {
			first += st.MSE / k
		}
		if s >= steps-k {
			last += st.MSE / k
		}
	}
	t.Logf("noise MSE: first %d steps %.4f, last %d steps %.4f", k, first, k, last)
	if !(last < 0.8*first) {
		t.Fatalf("loss did not fall: %.4f -> %.4f", first, last)
	}
}
