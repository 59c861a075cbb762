package sample

import (
	"context"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"geca/engine"
	"geca/internal/npy"
	"geca/internal/numcheck"
)

// Golden runs from testdata/golden.py: an independent PyTorch GeCA driven by
// the official sampling loop, every random draw recorded per purpose and
// replayed here through engine.ReplayStream.

type golden struct {
	a     map[string]*npy.Array
	model *engine.Model
	n, m  int
}

func loadGolden(t *testing.T) *golden {
	t.Helper()
	a, err := npy.ReadNPZ("testdata/golden.npz")
	if err != nil {
		t.Fatal(err)
	}
	c := a["config"].Data
	cfg := engine.Config{Name: "golden-tiny", GridH: int(c[0]), GridW: int(c[1]), InChannels: int(c[2]), HiddenChannels: int(c[3]),
		EmbedDim: int(c[4]), Heads: int(c[5]), MLPDim: int(c[6]), NumClasses: int(c[7]), M: 12, UpdateRate: 0.5, Latent: true}
	ts := map[string]*tensor.Dense{}
	for k, v := range a {
		if name, ok := strings.CutPrefix(k, "w/"); ok {
			ts[name] = tensor.New(tensor.WithShape(v.Shape...), tensor.WithBacking(append([]float32(nil), v.Data...)))
		}
	}
	m, err := engine.NewModel(cfg, ts)
	if err != nil {
		t.Fatal(err)
	}
	return &golden{a: a, model: m, n: int(c[8]), m: int(c[9])}
}

func (g *golden) labels() [][]float32 {
	l := g.a["labels"]
	k := l.Shape[1]
	out := make([][]float32, l.Shape[0])
	for i := range out {
		out[i] = l.Data[i*k : (i+1)*k]
	}
	return out
}

func (g *golden) streams(run string) *engine.Streams {
	r := func(name string) *engine.ReplayStream {
		return &engine.ReplayStream{Name: name, Values: g.a[run+"/"+name].Data}
	}
	return &engine.Streams{Noise: r("noise"), Seed: r("seed"), Mask: r("mask"), DDPM: r("ddpm")}
}

// carryNCHW returns the [C_out | C_h] channels of st as (B, UD, H, W).
func carryNCHW(st *engine.State, cfg engine.Config) []float32 {
	all := st.ToNCHW()
	n, ud, cin := st.H*st.W, cfg.UpdateDim(), cfg.InChannels
	out := make([]float32, 0, st.B*ud*n)
	for b := 0; b < st.B; b++ {
		out = append(out, all[(b*st.C+cin)*n:(b+1)*st.C*n]...)
	}
	return out
}

func TestGoldenRuns(t *testing.T) {
	g := loadGolden(t)
	cfg := g.model.Cfg
	for _, c := range []struct {
		run    string
		cfg    float32
		ghg    bool
		method string
	}{
		{"cfg", 1.5, true, "ddpm"},
		{"nocfg", 1, true, "ddpm"},
		{"ddimcfg", 1.5, false, "ddim"},
		{"noghg", 1, false, "ddpm"},
	} {
		t.Run(c.run, func(t *testing.T) {
			streams := g.streams(c.run)
			s, err := New(g.model, Options{Steps: "10", Method: c.method, M: g.m, GHG: c.ghg, CFG: c.cfg,
				Labels: g.labels(), Streams: streams})
			if err != nil {
				t.Fatal(err)
			}
			var frames []*Frame
			s.SetObserver(func(f *Frame) { frames = append(frames, f) }, false)
			if err := s.RunToEnd(context.Background()); err != nil {
				t.Fatal(err)
			}
			if len(frames) != 10 || !frames[9].Done {
				t.Fatalf("%d timestep frames", len(frames))
			}
			x, carry := g.a[c.run+"/x"], g.a[c.run+"/carry"]
			nb := x.Shape[1]
			per := len(x.Data) / 2
			cper := len(carry.Data) / 2
			for step := 0; step < 2; step++ {
				f := frames[step]
				if f.State.B != nb {
					t.Fatalf("step %d: %d grids, want %d", step, f.State.B, nb)
				}
				// The conditional half of x after the step.
				if e := numcheck.MaxRelErr(f.XPrev, x.Data[step*per:step*per+len(f.XPrev)]); e > 1e-5 {
					t.Errorf("step %d: x after the step differs, max rel err %g", step, e)
				}
				// The GHG carry: the grid's [C_out | C_h] after the M updates.
				if e := numcheck.MaxRelErr(carryNCHW(f.State, cfg), carry.Data[step*cper:(step+1)*cper]); e > 1e-5 {
					t.Errorf("step %d: carry differs, max rel err %g", step, e)
				}
			}
			res, err := s.Result()
			if err != nil {
				t.Fatal(err)
			}
			e := numcheck.MaxRelErr(res, g.a[c.run+"/final"].Data)
			t.Logf("final samples: max |Δ| / max |x| = %.2g", e)
			if e > 1e-5 {
				t.Errorf("final samples differ: max rel err %g", e)
			}
			// Every recorded draw was used, no more and no fewer.
			one := make([]float32, 1)
			for name, st := range map[string]engine.Stream{"noise": streams.Noise, "seed": streams.Seed, "mask": streams.Mask, "ddpm": streams.DDPM} {
				rs := st.(*engine.ReplayStream)
				if err := rs.Normal(one); err == nil {
					t.Errorf("stream %s: recording not used up (the sampler drew fewer values than PyTorch)", name)
				}
			}
		})
	}
}
