package engine

import (
	"fmt"
	"strings"
	"testing"

	"geca/internal/npy"
	"geca/internal/numcheck"

	"gorgonia.org/tensor"
)

// Golden tests against engine/testdata/golden.py, an independent PyTorch
// implementation of the official module tree (run it to regenerate the
// fixtures).

type golden struct {
	name string
	cfg  Config
	a    map[string]*npy.Array
}

func loadGolden(t *testing.T, name string) *golden {
	t.Helper()
	a, err := npy.ReadNPZ("testdata/golden_" + name + ".npz")
	if err != nil {
		t.Fatal(err)
	}
	c := a["config"].Data
	cfg := Config{Name: "golden-" + name, GridH: int(c[0]), GridW: int(c[1]), InChannels: int(c[2]), HiddenChannels: int(c[3]),
		EmbedDim: int(c[4]), Heads: int(c[5]), MLPDim: int(c[6]), NumClasses: int(c[7]), M: 12, UpdateRate: 0.5}
	return &golden{name, cfg, a}
}

func (g *golden) tensors() map[string]*tensor.Dense {
	out := map[string]*tensor.Dense{}
	for k, v := range g.a {
		if name, ok := strings.CutPrefix(k, "w/"); ok {
			out[name] = tensor.New(tensor.WithShape(v.Shape...), tensor.WithBacking(append([]float32(nil), v.Data...)))
		}
	}
	return out
}

func (g *golden) model(t *testing.T) *Model {
	t.Helper()
	m, err := NewModel(g.cfg, g.tensors())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (g *golden) get(t *testing.T, k string) *npy.Array {
	t.Helper()
	v, ok := g.a[k]
	if !ok {
		t.Fatalf("%s: fixture has no %s", g.name, k)
	}
	return v
}

// state builds a State from a (B, C, H, W) fixture array.
func (g *golden) state(t *testing.T, k string) *State {
	t.Helper()
	v := g.get(t, k)
	st, err := FromNCHW(v.Shape[0], v.Shape[1], v.Shape[2], v.Shape[3], v.Data)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (g *golden) labels(t *testing.T, tk, yk string) ([]int, [][]float32) {
	tt, yy := g.get(t, tk), g.get(t, yk)
	ts := make([]int, len(tt.Data))
	ys := make([][]float32, len(tt.Data))
	k := yy.Shape[1]
	for i, v := range tt.Data {
		ts[i] = int(v)
		ys[i] = yy.Data[i*k : (i+1)*k]
	}
	return ts, ys
}

// uniforms turns a (M, B, 1, H, W) fixture of torch.rand draws into a stream
// that hands them out in order (our masks are cell-major: the same order).
func (g *golden) uniforms(t *testing.T, k string) *ReplayStream {
	return &ReplayStream{Name: k, Values: g.get(t, k).Data}
}

func checkClose(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	e := numcheck.RelErr(got, want)
	maxAbs, _ := numcheck.MaxAbsErr(got, want)
	if !(e <= tol) {
		t.Errorf("%s: relative error %.3g > %.0g (max abs diff %.3g)", what, e, tol, maxAbs)
	} else {
		t.Logf("%s: relative error %.3g (max abs diff %.3g)", what, e, maxAbs)
	}
}

var goldenNames = []string{"tiny", "nohidden", "xs"}

func TestGoldenCondition(t *testing.T) {
	for _, name := range goldenNames {
		t.Run(name, func(t *testing.T) {
			g := loadGolden(t, name)
			m := g.model(t)
			ts, ys := g.labels(t, "cond_t", "cond_y")
			c, err := m.Condition(ts, ys)
			if err != nil {
				t.Fatal(err)
			}
			checkClose(t, name+" condition", c.C, g.get(t, "cond_c").Data, 1e-5)
		})
	}
}

func TestGoldenUpdates(t *testing.T) {
	for _, name := range goldenNames {
		t.Run(name, func(t *testing.T) {
			for _, dense := range []bool{false, true} {
				g := loadGolden(t, name)
				m := g.model(t)
				tag := fmt.Sprintf("%s dense=%v", name, dense)
				ts, ys := g.labels(t, "upd_t", "upd_y")
				c, err := m.Condition(ts, ys)
				if err != nil {
					t.Fatal(err)
				}
				st := g.state(t, "upd_s0")
				u := m.NewUpdater(st.B)
				u.Dense = dense
				mask := make([]float32, st.B*st.H*st.W)
				us := g.uniforms(t, "upd_u")
				cells := g.get(t, "upd_attn_cells")
				heads := m.Cfg.Heads
				var attn []float32
				mag := make([]float32, len(mask))
				for i := 0; i < 12; i++ {
					if err := DrawMask(mask, 0.5, us); err != nil {
						t.Fatal(err)
					}
					obs := &Observe{}
					if i == 0 {
						obs.Magnitude = mag
					}
					if i == 0 {
						// Observe each fixture cell in its own copy of the update.
						for ci := 0; ci < cells.Shape[0]; ci++ {
							cp := st.Clone()
							o := &Observe{AttnB: int(cells.Data[3*ci]), AttnI: int(cells.Data[3*ci+1]), AttnJ: int(cells.Data[3*ci+2]), Attn: make([]float32, heads*9)}
							if err := m.NewUpdater(st.B).Update(cp, c, mask, o); err != nil {
								t.Fatal(err)
							}
							attn = append(attn, o.Attn...)
						}
					}
					if err := u.Update(st, c, mask, obs); err != nil {
						t.Fatal(err)
					}
					if i == 0 {
						checkClose(t, tag+" state after update 1", st.ToNCHW(), g.get(t, "upd_s1").Data, 1e-5)
						checkClose(t, tag+" |update| of update 1", mag, g.get(t, "upd_mag1").Data, 1e-5)
						checkClose(t, tag+" attention of update 1", attn, g.get(t, "upd_attn1").Data, 1e-5)
					}
				}
				checkClose(t, tag+" state after 12 updates", st.ToNCHW(), g.get(t, "upd_s12").Data, 1e-4)

				st = g.state(t, "upd_s0")
				if err := u.Update(st, c, nil, nil); err != nil {
					t.Fatal(err)
				}
				checkClose(t, tag+" state after 1 unmasked update", st.ToNCHW(), g.get(t, "upd_full1").Data, 1e-5)
			}
		})
	}
}

func TestGoldenSeedCall(t *testing.T) {
	for _, name := range goldenNames {
		t.Run(name, func(t *testing.T) {
			g := loadGolden(t, name)
			m := g.model(t)
			ts, ys := g.labels(t, "upd_t", "upd_y")
			c, err := m.Condition(ts, ys)
			if err != nil {
				t.Fatal(err)
			}
			x := g.get(t, "seed_x")
			st := NewState(x.Shape[0], m.Cfg.GridH, m.Cfg.GridW, m.Cfg.CellDim())
			// Garbage in C_out/C_h must be cleared by Seed.
			NewStream(5, "junk").Normal(st.Data)
			if err := SetInput(st, m.Cfg, x.Data); err != nil {
				t.Fatal(err)
			}
			if err := Seed(m.Cfg, st, &ReplayStream{Values: g.get(t, "seed_n").Data}); err != nil {
				t.Fatal(err)
			}
			checkClose(t, name+" seeded state", st.ToNCHW(), g.get(t, "seed_s0").Data, 0)
			if err := m.NewUpdater(st.B).Call(st, c, 12, 0.5, g.uniforms(t, "seed_u"), nil); err != nil {
				t.Fatal(err)
			}
			out := make([]float32, st.B*m.Cfg.OutChannels()*st.H*st.W)
			if err := ModelOut(out, st, m.Cfg); err != nil {
				t.Fatal(err)
			}
			checkClose(t, name+" call output", out, g.get(t, "seed_out").Data, 1e-4)
			full := st.ToNCHW()
			n := st.H * st.W
			var carry []float32
			for b := 0; b < st.B; b++ {
				carry = append(carry, full[(b*st.C+m.Cfg.InChannels)*n:(b+1)*st.C*n]...)
			}
			checkClose(t, name+" call carry", carry, g.get(t, "seed_carry").Data, 1e-4)
		})
	}
}

func TestGoldenCFG(t *testing.T) {
	for _, name := range goldenNames {
		t.Run(name, func(t *testing.T) {
			g := loadGolden(t, name)
			m := g.model(t)
			cfg := m.Cfg
			ts, ys := g.labels(t, "cfg_t", "cfg_y")
			c, err := m.Condition(ts, ys)
			if err != nil {
				t.Fatal(err)
			}
			x, h := g.get(t, "cfg_x"), g.get(t, "cfg_h")
			b := x.Shape[0]
			full := make([]float32, 0, b*cfg.CellDim()*cfg.Cells())
			n := cfg.Cells()
			for i := 0; i < b; i++ {
				full = append(full, x.Data[i*cfg.InChannels*n:(i+1)*cfg.InChannels*n]...)
				full = append(full, h.Data[i*cfg.UpdateDim()*n:(i+1)*cfg.UpdateDim()*n]...)
			}
			st, err := FromNCHW(b, cfg.CellDim(), cfg.GridH, cfg.GridW, full)
			if err != nil {
				t.Fatal(err)
			}
			if err := ReseedOut(cfg, st, &ReplayStream{Values: g.get(t, "cfg_n").Data}); err != nil {
				t.Fatal(err)
			}
			if err := m.NewUpdater(b).Call(st, c, 12, 0.5, g.uniforms(t, "cfg_u"), nil); err != nil {
				t.Fatal(err)
			}
			out := make([]float32, b*cfg.OutChannels()*n)
			if err := CFGCombine(out, st, cfg, g.get(t, "cfg_scale").Data[0]); err != nil {
				t.Fatal(err)
			}
			checkClose(t, name+" CFG output", out, g.get(t, "cfg_out").Data, 1e-4)
			all := st.ToNCHW()
			var carry []float32
			for i := 0; i < b; i++ {
				carry = append(carry, all[(i*st.C+cfg.InChannels)*n:(i+1)*st.C*n]...)
			}
			checkClose(t, name+" CFG carry", carry, g.get(t, "cfg_carry").Data, 1e-4)
		})
	}
}
