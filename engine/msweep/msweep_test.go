package msweep

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"geca/engine"
	"geca/engine/diffusion"
)

func tinyModel(t *testing.T) *engine.Model {
	cfg := engine.Config{Name: "tiny", GridH: 9, GridW: 7, InChannels: 2, HiddenChannels: 3, EmbedDim: 16, Heads: 2, MLPDim: 24,
		NumClasses: 3, M: 4, UpdateRate: 0.5}
	m, err := engine.NewRandomModel(cfg, 5, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func images(m *engine.Model, n int) []Image {
	r := rand.New(rand.NewPCG(1, 1))
	var out []Image
	for i := 0; i < n; i++ {
		x := make([]float32, m.Cfg.GridH*m.Cfg.GridW*m.Cfg.InChannels)
		for k := range x {
			x[k] = float32(2*r.Float64() - 1)
		}
		y := make([]float32, m.Cfg.NumClasses)
		y[i%len(y)] = 1
		out = append(out, Image{Index: 100 + i, X0: x, Label: y})
	}
	return out
}

func TestDefaultMs(t *testing.T) {
	for trained, want := range map[int][]int{8: {1, 2, 3, 4, 6, 8, 11, 16}, 12: {1, 2, 3, 4, 6, 8, 11, 12, 16, 23, 24}, 1: {1, 2}} {
		t.Run(fmt.Sprint(trained), func(t *testing.T) {
			if got := DefaultMs(trained); !slices.Equal(got, want) {
				t.Errorf("DefaultMs(%d) = %v, want %v", trained, got, want)
			}
		})
	}
}

// Any split of the images into batches or shards gives the same sums, bit
// for bit, and the sums are finite and plausible.
func TestShardsAddUp(t *testing.T) {
	m := tinyModel(t)
	ims := images(m, 5)
	opt := Options{Ms: []int{1, 2, 4, 8}, Timesteps: []int{0, 300, 999}, Seed: 7}
	whole, err := Run(context.Background(), m, ims, Options{Ms: opt.Ms, Timesteps: opt.Timesteps, Seed: 7, Batch: 5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Run(context.Background(), m, ims[:2], Options{Ms: opt.Ms, Timesteps: opt.Timesteps, Seed: 7, Batch: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(context.Background(), m, ims[2:], Options{Ms: opt.Ms, Timesteps: opt.Timesteps, Seed: 7, Batch: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Add(b); err != nil {
		t.Fatal(err)
	}
	for i, p := range whole.Points {
		q := a.Points[i]
		// Sums over images in another order may round differently: compare
		// per image via the totals of 5 with a tight tolerance, and N exactly.
		if p.N != 5 || q.N != 5 || p.Bad != 0 {
			t.Fatalf("point %d: N %d and %d, bad %d", i, p.N, q.N, p.Bad)
		}
		for _, d := range [][2]float64{{p.EpsMSE, q.EpsMSE}, {p.VBBits, q.VBBits}, {p.Reach, q.Reach}} {
			if !(math.Abs(d[0]-d[1]) <= 1e-12*math.Abs(d[0])) {
				t.Fatalf("point %+v: sums %v and %v differ", p, d[0], d[1])
			}
		}
		mse, vb, reach := p.Means()
		if !(mse > 0 && mse < 100 && vb >= 0 && reach > 0 && reach <= 1) {
			t.Fatalf("point %+v: means %v %v %v", p, mse, vb, reach)
		}
	}
	// The seed's reach grows with M and starts at most at the 3x3 block.
	for ti := range opt.Timesteps {
		for mi := 1; mi < len(opt.Ms); mi++ {
			if whole.At(mi, ti).Reach < whole.At(mi-1, ti).Reach {
				t.Errorf("reach shrinks from M=%d to M=%d", opt.Ms[mi-1], opt.Ms[mi])
			}
		}
		if _, _, r := whole.At(0, ti).Means(); r > 9.0/63 {
			t.Errorf("reach after one update %v, more than a 3x3 block", r)
		}
	}
	if err := a.Add(NewResult([]int{1}, opt.Timesteps)); err == nil {
		t.Error("adding results over different grids succeeded")
	}
}

// The sweep's ε-MSE at M equals a separate denoiser call of M updates with
// the same draws (the first M updates of a longer call are a call of M).
func TestMatchesSeparateCalls(t *testing.T) {
	for _, pred := range []engine.Prediction{engine.PredictEps, engine.PredictV} {
		t.Run(pred.String(), func(t *testing.T) { matchesSeparateCalls(t, pred) })
	}
}

// matchesSeparateCalls: the sweep's ε-MSE at each M is that of a separate
// call of M updates; for a v model, of the ε̂ = √(1−ᾱ)·x_t + √ᾱ·v̂ its
// output means (formed here in float64).
func matchesSeparateCalls(t *testing.T, pred engine.Prediction) {
	m := tinyModel(t)
	m.Cfg.Prediction = pred
	im := images(m, 1)[0]
	const tt = 500
	res, err := Run(context.Background(), m, []Image{im}, Options{Ms: []int{2, 5}, Timesteps: []int{tt}, Seed: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sched, _ := diffusion.New(1000, "")
	cfg := m.Cfg
	ab := sched.AlphasCumprod[tt]
	for mi, M := range []int{2, 5} {
		t.Run(fmt.Sprint(M), func(t *testing.T) {
			n := len(im.X0)
			eps, xt := make([]float32, n), make([]float32, n)
			stream(3, "eps", im.Index, tt).Normal(eps)
			sched.QSample(xt, im.X0, eps, tt)
			st := engine.NewState(1, cfg.GridH, cfg.GridW, cfg.CellDim())
			engine.Seed(cfg, st, stream(3, "seed", im.Index, tt))
			for p := 0; p < cfg.GridH*cfg.GridW; p++ {
				copy(st.Data[p*st.C:p*st.C+cfg.InChannels], xt[p*cfg.InChannels:])
			}
			c, _ := m.Condition([]int{tt}, [][]float32{im.Label})
			if err := m.NewUpdater(1).Call(st, c, M, cfg.UpdateRate, stream(3, "mask", im.Index, tt), nil); err != nil {
				t.Fatal(err)
			}
			var mse float64
			for p := 0; p < cfg.GridH*cfg.GridW; p++ {
				for ch := 0; ch < cfg.InChannels; ch++ {
					k := p*cfg.InChannels + ch
					epsHat := float64(st.Data[p*st.C+cfg.InChannels+ch])
					if pred == engine.PredictV {
						epsHat = math.Sqrt(1-ab)*float64(xt[k]) + math.Sqrt(ab)*epsHat
					}
					d := float64(eps[k]) - epsHat
					mse += d * d
				}
			}
			mse /= float64(n)
			if got := res.At(mi, 0).EpsMSE; math.Abs(got-mse) > 1e-6*mse {
				t.Errorf("M=%d: sweep ε-MSE %v, separate call %v", M, got, mse)
			}
		})
	}
}

func TestBadOptions(t *testing.T) {
	m := tinyModel(t)
	ims := images(m, 1)
	for ci, o := range []Options{{Ms: []int{2, 1}, Timesteps: []int{1}}, {Ms: []int{0}, Timesteps: []int{1}}, {Ms: []int{1}, Timesteps: []int{1000}},
		{Ms: []int{1}}, {Ms: []int{1}, Timesteps: []int{1}, Rate: 2}} {
		t.Run(fmt.Sprint(ci), func(t *testing.T) {
			if _, err := Run(context.Background(), m, ims, o, nil); err == nil {
				t.Errorf("%+v accepted", o)
			}
		})
	}
	bad := ims[0]
	bad.X0 = bad.X0[:3]
	if _, err := Run(context.Background(), m, []Image{bad}, Options{Ms: []int{1}, Timesteps: []int{1}}, nil); err == nil {
		t.Error("short image accepted")
	}
}
