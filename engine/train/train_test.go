package train

import (
	"math/rand/v2"
	"strings"
	"testing"

	"geca/engine"
	"geca/engine/data"
	"geca/internal/numcheck"
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
	lossFalls(t, tr)
}

// lossFalls trains 60 steps and checks that the mean noise MSE of the last
// 15 is clearly below that of the first 15.
func lossFalls(t *testing.T, tr *Trainer) {
	t.Helper()
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

// TestDeterministicAndResumable: two runs with one seed give identical
// weights, and stopping, saving and resuming half-way changes nothing.
func TestDeterministicAndResumable(t *testing.T) {
	for _, carry := range []float64{0, 0.5} {
		testDeterministic(t, carry)
	}
}

func testDeterministic(t *testing.T, carry float64) {
	opt := DefaultOptions()
	opt.Batch, opt.LR, opt.EMADecay, opt.EMAWarmup, opt.CarryProb = 4, 1e-3, 0.99, true, carry
	ds := toyData(16, 8, 8)
	run := func(steps int) *Trainer {
		tr, err := NewTrainer(smallConfig(), opt, ds)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < steps; i++ {
			if _, err := tr.TrainStep(); err != nil {
				t.Fatal(err)
			}
		}
		return tr
	}
	a, b := run(6), run(3)
	path := t.TempDir() + "/m.safetensors"
	if err := b.Save(path, "toy", 0); err != nil {
		t.Fatal(err)
	}
	c, _, err := Resume(path, ds, Changes{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := c.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	a2 := run(6)
	for qi, q := range a.P.List {
		for i, v := range q.W {
			if a2.P.List[qi].W[i] != v {
				t.Fatalf("%s[%d]: two runs with one seed differ", q.Key, i)
			}
			if c.P.List[qi].W[i] != v || c.EMA.W[qi][i] != a.EMA.W[qi][i] {
				t.Fatalf("%s[%d]: resumed run differs from the uninterrupted one", q.Key, i)
			}
		}
	}
}

// savedSmallRun trains smallConfig on toy data for the given steps (batch
// 4, lr 1e-3) and saves it: the trainer, its data and the model file, for
// the tests that resume it.
func savedSmallRun(t *testing.T, steps int) (*Trainer, *data.Dataset, string) {
	t.Helper()
	opt := DefaultOptions()
	opt.Batch, opt.LR = 4, 1e-3
	ds := toyData(16, 8, 8)
	tr, err := NewTrainer(smallConfig(), opt, ds)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < steps; i++ {
		if _, err := tr.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	path := t.TempDir() + "/m.safetensors"
	if err := tr.Save(path, "toy", 0); err != nil {
		t.Fatal(err)
	}
	return tr, ds, path
}

// TestResumeAtAnotherM: a run resumed with another M and update rate trains
// with them (the network unrolls that many updates, every cell updating
// each time at rate 1) and the model file it writes says so; the weights
// carry over unchanged, since none depends on M or the rate.
func TestResumeAtAnotherM(t *testing.T) {
	a, ds, path := savedSmallRun(t, 1)
	const m = 7
	b, _, err := Resume(path, ds, Changes{M: m, UpdateRate: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Cfg.UpdateRate != 0.5 || b.Cfg.M != m || len(b.masks) != m || b.Cfg.UpdateRate != 1 {
		t.Fatalf("resumed at M %d, rate 1 from rate %g: config M %d, rate %g, %d update masks", m, a.Cfg.UpdateRate, b.Cfg.M, b.Cfg.UpdateRate, len(b.masks))
	}
	for qi, q := range a.P.List {
		for i, v := range q.W {
			if b.P.List[qi].W[i] != v {
				t.Fatalf("%s[%d]: weight changed by resuming at another M", q.Key, i)
			}
		}
	}
	if _, err := b.TrainStep(); err != nil {
		t.Fatal(err)
	}
	if err := b.Save(path, "toy", 0); err != nil {
		t.Fatal(err)
	}
	p, _, err := LoadModelFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if p.Cfg.M != m || p.Cfg.UpdateRate != 1 {
		t.Fatalf("model file written after resuming at M %d, rate 1 says M %d, rate %g", m, p.Cfg.M, p.Cfg.UpdateRate)
	}
	for _, mk := range b.masks {
		for i, v := range mk {
			if v != 1 {
				t.Fatalf("at update rate 1, cell %d of a step's mask is %g", i, v)
			}
		}
	}
}

// TestResumeWiderMLP: a run resumed with a wider MLP computes what the
// file's model computes (the new units start with no effect), keeps every
// stored weight, EMA value and optimiser moment, starts the new units' first
// moments at zero and second moments at their tensor's mean, trains them,
// and refuses to narrow.
func TestResumeWiderMLP(t *testing.T) {
	a, ds, path := savedSmallRun(t, 3)
	const wide = 48 // smallConfig has 32
	b, _, err := Resume(path, ds, Changes{MLP: wide}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b.Cfg.MLPDim != wide || b.Step != a.Step || b.Cfg.Name != "test-MLP48" {
		t.Fatalf("resumed with MLP %d at step %d; want %d at %d", b.Cfg.MLPDim, b.Step, wide, a.Step)
	}
	// the same inputs through both networks
	if err := a.prepare(a.Step); err != nil {
		t.Fatal(err)
	}
	if err := b.prepare(b.Step); err != nil {
		t.Fatal(err)
	}
	outA, err := a.Net.Forward(a.s0, a.t, a.y, a.masks)
	if err != nil {
		t.Fatal(err)
	}
	outA = append([]float32(nil), outA...)
	outB, err := b.Net.Forward(b.s0, b.t, b.y, b.masks)
	if err != nil {
		t.Fatal(err)
	}
	if e := numcheck.MaxRelErr(outB, outA); !(e <= 1e-6) {
		t.Fatalf("the widened model computes another final state: max relative error %.3g", e)
	}
	for i, q := range b.P.List {
		old := a.P.List[i]
		stored := old.Shape
		for j := range q.W {
			r, c := j, 0
			if len(q.Shape) == 2 {
				r, c = j/q.Shape[1], j%q.Shape[1]
			}
			in := len(q.Shape) == 1 && r < stored[0] || len(q.Shape) == 2 && r < stored[0] && c < stored[1]
			if !in {
				var sum float64
				for _, v := range a.Adam.V[i] {
					sum += float64(v)
				}
				meanV := float32(sum / float64(len(a.Adam.V[i])))
				if b.Adam.M[i][j] != 0 || b.Adam.V[i][j] != meanV || !(meanV > 0) || b.EMA.W[i][j] != q.W[j] {
					t.Fatalf("%s[%d] (new): Adam moments %g %g, EMA %g for weight %g; want 0, the stored mean %g and the weight", q.Key, j, b.Adam.M[i][j], b.Adam.V[i][j], b.EMA.W[i][j], q.W[j], meanV)
				}
				continue
			}
			k := r
			if len(q.Shape) == 2 {
				k = r*stored[1] + c
			}
			if q.W[j] != old.W[k] || b.EMA.W[i][j] != a.EMA.W[i][k] || b.Adam.M[i][j] != a.Adam.M[i][k] || b.Adam.V[i][j] != a.Adam.V[i][k] {
				t.Fatalf("%s[%d]: stored values not carried over", q.Key, j)
			}
		}
	}
	fc2 := b.P.Linear(engine.TransformerFFNet3).Weight
	if _, err := b.TrainStep(); err != nil {
		t.Fatal(err)
	}
	moved := 0
	for i := 0; i < fc2.Shape[0]; i++ {
		for _, v := range fc2.W[i*wide+32 : (i+1)*wide] {
			if v != 0 {
				moved++
			}
		}
	}
	if moved == 0 {
		t.Fatal("a training step left the new units' output weights at zero")
	}
	if _, _, err := Resume(path, ds, Changes{MLP: 16}, nil); err == nil || !strings.Contains(err.Error(), "can grow, not shrink") {
		t.Fatalf("narrowing the MLP: err = %v", err)
	}
}

func TestResizedName(t *testing.T) {
	for _, c := range []struct {
		name, label string
		v           int
		want        string
	}{
		{"GeCA-Emoji", "MLP", 512, "GeCA-Emoji-MLP512"},
		{"GeCA-Emoji-MLP256", "MLP", 512, "GeCA-Emoji-MLP512"},
		{"GeCA-Emoji-D128-MLP256", "D", 96, "GeCA-Emoji-D96-MLP256"},
		{"GeCA-Emoji-MLP256", "H", 8, "GeCA-Emoji-MLP256-H8"},
	} {
		if got := ResizedName(c.name, c.label, c.v); got != c.want {
			t.Errorf("ResizedName(%q, %q, %d) = %q, want %q", c.name, c.label, c.v, got, c.want)
		}
	}
}

// TestLabelDropoutPerEntry: labels are dropped entry by entry with the given
// probability (docs/model.md §4.2), for one-hot and multi-hot datasets.
func TestLabelDropoutPerEntry(t *testing.T) {
	ds := toyData(64, 8, 8)
	ds.Multi = make([]float32, 64*2)
	for i := range ds.Multi {
		ds.Multi[i] = 1 // both entries on
	}
	opt := DefaultOptions()
	opt.Batch, opt.LabelDropout = 32, 0.25
	tr, err := NewTrainer(smallConfig(), opt, ds)
	if err != nil {
		t.Fatal(err)
	}
	kept, total, both := 0, 0, 0
	for s := 0; s < 50; s++ {
		tr.prepare(s)
		for b := 0; b < opt.Batch; b++ {
			on := 0
			for k := 0; k < 2; k++ {
				total++
				if tr.y[b*2+k] == 1 {
					kept++
					on++
				}
			}
			if on == 2 {
				both++
			}
		}
	}
	frac := float64(kept) / float64(total)
	t.Logf("kept %.3f of label entries, both entries in %.3f of samples", frac, float64(both)/float64(total/2))
	if frac < 0.72 || frac > 0.78 {
		t.Fatalf("kept %.3f of label entries, want 0.75", frac)
	}
	if b := float64(both) / float64(total/2); b < 0.52 || b > 0.60 {
		t.Fatalf("both entries kept in %.3f of samples, want 0.5625 (independent drops)", b)
	}
}

// TestCarriedStates: with CarryProb 1 every step starts from the state of an
// earlier call: hidden channels carried everywhere, C_out for some samples.
func TestCarriedStates(t *testing.T) {
	opt := DefaultOptions()
	opt.Batch, opt.CarryProb, opt.LR = 8, 1, 3e-3
	tr, err := NewTrainer(smallConfig(), opt, toyData(64, 8, 8))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ { // make the update non-zero
		if _, err := tr.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.prepare(5); err != nil {
		t.Fatal(err)
	}
	cfg := tr.Cfg
	hidden, outs := 0, 0
	for r := 0; r < tr.Net.R; r++ {
		cell := tr.s0[r*tr.Net.Cd : (r+1)*tr.Net.Cd]
		for k, v := range cell[cfg.InChannels:] {
			if v != 0 && k >= cfg.OutChannels() {
				hidden++
			}
			if v != 0 && k < cfg.OutChannels() {
				outs++
			}
		}
	}
	if hidden < tr.Net.R || outs < tr.Net.R/4 {
		t.Fatalf("carried grids have %d non-zero hidden and %d non-zero C_out values", hidden, outs)
	}
}

// TestCarryCalls: carried states come through 1 … CarryCalls earlier calls,
// each length drawn; 0 keeps the chains of 1 or 2 calls that state files
// saved before the option meant.
func TestCarryCalls(t *testing.T) {
	for _, c := range []struct{ calls, want int }{{0, 2}, {5, 5}} {
		opt := DefaultOptions()
		opt.Batch, opt.CarryProb, opt.CarryCalls = 2, 1, c.calls
		tr, err := NewTrainer(smallConfig(), opt, toyData(16, 8, 8))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int]int{}
		for s := 0; s < 100; s++ {
			if err := tr.prepare(s); err != nil {
				t.Fatal(err)
			}
			seen[tr.CarriedCalls]++
		}
		for k := 1; k <= c.want; k++ {
			if seen[k] < 5 {
				t.Errorf("CarryCalls %d: chains of %d calls drawn %d times in 100 steps (all: %v)", c.calls, k, seen[k], seen)
			}
		}
		if len(seen) != c.want {
			t.Errorf("CarryCalls %d: chain lengths %v, want 1 … %d", c.calls, seen, c.want)
		}
	}
}
