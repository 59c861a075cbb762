package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"geca/engine"
)

func tinyConfig() engine.Config {
	return engine.Config{Name: "tiny", GridH: 4, GridW: 5, InChannels: 1, HiddenChannels: 3, EmbedDim: 8,
		Heads: 2, MLPDim: 12, NumClasses: 3, M: 3, UpdateRate: 0.5}
}

// relErr is ‖a − b‖ / max(‖a‖, ‖b‖).
func relErr(a, b []float64) float64 {
	var d, na, nb float64
	for i := range a {
		d += (a[i] - b[i]) * (a[i] - b[i])
		na += a[i] * a[i]
		nb += b[i] * b[i]
	}
	den := math.Sqrt(max(na, nb))
	if den == 0 {
		return 0
	}
	if e := math.Sqrt(d) / den; !math.IsNaN(e) {
		return e
	}
	return math.Inf(1) // a NaN fails every bound
}

type gcSetup struct {
	net   *Net[float64]
	s0    []float64
	t     []int
	y     []float64
	masks [][]float64
	w     []float64
}

func newGC(t *testing.T, cfg engine.Config, b int, seed uint64) *gcSetup {
	p, err := NewParams[float64](cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.InitRandom(seed, 0.3)
	n := NewNet(p, b)
	r := rand.New(rand.NewPCG(seed, 7))
	g := &gcSetup{net: n, s0: make([]float64, n.R*n.Cd), y: make([]float64, b*n.K), w: make([]float64, n.R*n.Cd)}
	for i := range g.s0 {
		g.s0[i] = r.NormFloat64()
		g.w[i] = r.NormFloat64()
	}
	for i := range g.y {
		g.y[i] = float64(r.IntN(2))
	}
	for i := 0; i < b; i++ {
		g.t = append(g.t, r.IntN(1000))
	}
	for m := 0; m < cfg.M; m++ {
		mk := make([]float64, n.R)
		for i := range mk {
			mk[i] = float64(r.IntN(2))
		}
		g.masks = append(g.masks, mk)
	}
	return g
}

func (g *gcSetup) loss(t *testing.T) float64 {
	out, err := g.net.Forward(g.s0, g.t, g.y, g.masks)
	if err != nil {
		t.Fatal(err)
	}
	var l float64
	for i, v := range out {
		l += g.w[i] * v
	}
	return l
}

// TestGradWholeCall checks the gradients of a whole 3-update call w.r.t. every
// parameter and the input state against central finite differences.
func TestGradWholeCall(t *testing.T) {
	g := newGC(t, tinyConfig(), 2, 1)
	g.net.P.ZeroGrad()
	g.loss(t)
	dS0 := append([]float64(nil), g.net.Backward(g.w)...)
	num := func(x []float64, i int) float64 { return fourPoint(x, i, func() float64 { return g.loss(t) }) }
	for _, q := range g.net.P.List {
		nd := make([]float64, len(q.W))
		for i := range q.W {
			nd[i] = num(q.W, i)
		}
		if e := relErr(q.G, nd); e > 1e-6 || math.IsNaN(e) {
			t.Errorf("%s: relative error %.3g (grad norm %.3g)", q.Key, e, math.Sqrt(dot(q.G, q.G)))
		} else {
			t.Logf("%-45s rel err %.2g", q.Key, e)
		}
	}
	nd := make([]float64, len(g.s0))
	for i := range g.s0 {
		nd[i] = num(g.s0, i)
	}
	if e := relErr(dS0, nd); e > 1e-6 {
		t.Errorf("input state: relative error %.3g", e)
	}
}

// fourPoint is the fourth-order central difference of f w.r.t. x[i]
// (truncation error O(h⁴), so 1e-6 relative accuracy is reachable).
func fourPoint(x []float64, i int, f func() float64) float64 { return fourPointH(x, i, f, 5e-5) }

func fourPointH(x []float64, i int, f func() float64, h float64) float64 {
	old := x[i]
	at := func(d float64) float64 { x[i] = old + d; return f() }
	v := (8*(at(h)-at(-h)) - (at(2*h) - at(-2*h))) / (12 * h)
	x[i] = old
	return v
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}
