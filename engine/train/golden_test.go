package train

import (
	"math"
	"testing"

	"geca/engine"
	"geca/internal/npy"
)

// TestGradientsMatchPyTorch compares the loss and every weight gradient of one
// training step (3 updates, t = 0, 5 and 700 so both L_vb branches run) with
// an independent float64 PyTorch implementation's autograd
// (testdata/golden.py).
func TestGradientsMatchPyTorch(t *testing.T) {
	g, err := npy.ReadNPZ("testdata/golden.npz")
	if err != nil {
		t.Fatal(err)
	}
	cfg := tinyConfig()
	p, err := NewParams[float64](cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range p.List {
		a, ok := g["w/"+q.Key]
		if !ok || len(a.Data) != len(q.W) {
			t.Fatalf("golden.npz: weight %q missing or mis-sized", q.Key)
		}
		copy(q.W, toF64(a.Data))
	}
	B := 3
	n := NewNet(p, B)
	// Our own fp32 codes agree with PyTorch's to float32 rounding, except that
	// torch's vectorised fp32 exp may be 1 ulp off the correctly rounded φ_k,
	// which t·φ_k (up to ~10³ rad) turns into a phase error of up to ~1e-4.
	for i, v := range g["pe"].Data {
		if !(math.Abs(n.P.PE[i]-float64(v)) <= 1e-6) {
			t.Fatalf("positional code [%d]: %g, PyTorch %g", i, n.P.PE[i], v)
		}
	}
	tf := make([]float32, engine.TimestepFeatures)
	for b := 0; b < B; b++ {
		engine.TimestepCode(tf, int(g["t"].Data[b]))
		for k, v := range g["tfeat"].Data[b*engine.TimestepFeatures : (b+1)*engine.TimestepFeatures] {
			if !(math.Abs(float64(tf[k])-float64(v)) <= 2e-4) {
				t.Fatalf("timestep features t=%g [%d]: %g, PyTorch %g", g["t"].Data[b], k, tf[k], v)
			}
		}
	}
	// The fp32 sin/cos of the positional code and timestep features are
	// PyTorch's own, so only the float64 arithmetic is compared.
	copy(n.P.PE, toF64(g["pe"].Data))
	n.timeFeatures = toF64(g["tfeat"].Data)
	ts := g["t"].Data
	tt := []int{int(ts[0]), int(ts[1]), int(ts[2])}
	m := g["masks"]
	var masks [][]float64
	for k := 0; k < cfg.M; k++ {
		masks = append(masks, toF64(m.Data[k*n.R:(k+1)*n.R]))
	}
	out, err := n.Forward(toF64(g["s0"].Data), tt, toF64(g["y"].Data), masks)
	if err != nil {
		t.Fatal(err)
	}
	if e := relErr(out, toF64(g["final"].Data)); e > 1e-6 {
		t.Fatalf("final state differs from PyTorch: relative error %.3g", e)
	}
	dOut := make([]float64, len(out))
	mse, vb, err := n.Loss(trainingSchedule(t), out, tt, toF64(g["x0"].Data), toF64(g["xt"].Data), toF64(g["eps"].Data), dOut, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !(math.Abs(mse-float64(g["mse"].Data[0])) <= 1e-6*mse) || !(math.Abs(vb-float64(g["vb"].Data[0])) <= 1e-6*vb) {
		t.Fatalf("loss (mse %.8g, vb %.8g), PyTorch (%.8g, %.8g)", mse, vb, g["mse"].Data[0], g["vb"].Data[0])
	}
	// Min-SNR weighting scales each sample's ε̂ gradient by its weight and
	// leaves the v gradient and the reported terms as they were.
	dW := make([]float64, len(out))
	mseW, vbW, err := n.Loss(trainingSchedule(t), out, tt, toF64(g["x0"].Data), toF64(g["xt"].Data), toF64(g["eps"].Data), dW, 5)
	if err != nil {
		t.Fatal(err)
	}
	if mseW != mse || vbW != vb {
		t.Fatalf("weighted loss reports (%g, %g), unweighted (%g, %g)", mseW, vbW, mse, vb)
	}
	for r := 0; r < n.R; r++ {
		w := MinSNRWeight(trainingSchedule(t), tt[r/n.N], 5)
		for k := 0; k < n.Cin; k++ {
			e, v := r*n.Cd+n.Cin+k, r*n.Cd+2*n.Cin+k
			if !(math.Abs(dW[e]-w*dOut[e]) <= 1e-12*math.Abs(dOut[e])) || dW[v] != dOut[v] {
				t.Fatalf("row %d channel %d: weighted gradients (%g, %g), want (%g·%g, %g)", r, k, dW[e], dW[v], w, dOut[e], dOut[v])
			}
		}
	}
	p.ZeroGrad()
	n.Backward(dOut)
	for _, q := range p.List {
		e := relErr(q.G, toF64(g["grad/"+q.Key].Data))
		if e > 1e-6 {
			t.Errorf("%s: gradient differs from PyTorch autograd: relative error %.3g", q.Key, e)
		} else {
			t.Logf("%-45s rel err %.2g", q.Key, e)
		}
	}
}

// TestAdamWMatchesPyTorch: two AdamW steps with fixed gradients give what
// torch.optim.AdamW gives (lr 1e-3, weight decay 0.01).
func TestAdamWMatchesPyTorch(t *testing.T) {
	g, err := npy.ReadNPZ("testdata/golden.npz")
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewParams[float32](tinyConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range p.List {
		copy(q.W, g["w/"+q.Key].Data)
		copy(q.G, g["grad/"+q.Key].Data)
	}
	a := NewAdamW(p, 1e-3)
	a.WeightDecay = 0.01
	a.Update(p)
	a.Update(p)
	for _, q := range p.List {
		want := g["adamw2/"+q.Key].Data
		for i, v := range q.W {
			if !(math.Abs(float64(v-want[i])) <= 1e-6*(1+math.Abs(float64(want[i])))) {
				t.Fatalf("%s[%d] after two AdamW steps: %.9g, PyTorch %.9g", q.Key, i, v, want[i])
			}
		}
	}
}
