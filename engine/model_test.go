package engine

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"geca/internal/npy"
	"geca/internal/numcheck"
)

func TestParamCount(t *testing.T) {
	for _, tc := range []struct {
		name string
		k    int
		want int
	}{{"GeCA-S", 11, 13312584}, {"GeCA-S", 5, 13307976}, {"GeCA-XS", 11, 2255720}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Preset(tc.name, tc.k)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, name := range ParamNames(cfg) {
				sh, _ := ParamShape(cfg, name)
				p := 1
				for _, v := range sh {
					p *= v
				}
				n += p
			}
			if n != tc.want {
				t.Errorf("%s K=%d: %d parameters, want %d", tc.name, tc.k, n, tc.want)
			}
			if len(ParamNames(cfg)) != 27 {
				t.Errorf("%s: %d tensors, want 27", tc.name, len(ParamNames(cfg)))
			}
		})
	}
	m, err := NewRandomModel(tinyConfig(), 1, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range m.Tensors() {
		n += v.Shape().TotalSize()
	}
	if m.ParamCount() != n || n == 0 {
		t.Errorf("ParamCount %d, tensors hold %d", m.ParamCount(), n)
	}
	if got := m.Names(); got[0] != "t_embedder.mlp.0.weight" || got[26] != "final_layer.adaLN_modulation.1.bias" {
		t.Errorf("names out of official order: %v", got)
	}
}

func TestPositionalEncodingQuirk(t *testing.T) {
	pe := PositionalEncoding(40, 8)
	// Odd channels use their own index: channel 3 of position 5 is cos(5·10000^(−3/8)).
	want := math.Cos(5 * math.Pow(10000, -3.0/8))
	if got := float64(pe[5*8+3]); math.Abs(got-want) > 1e-6 {
		t.Errorf("pe[5][3] = %v, want %v", got, want)
	}
	if got, want := float64(pe[33*8+2]), math.Sin(33*math.Pow(10000, -2.0/8)); math.Abs(got-want) > 1e-5 {
		t.Errorf("pe[33][2] = %v, want %v", got, want)
	}
}

// TestPositionalEncoding2D checks the 2-D code against engine/testdata/pe2d.py,
// an independent numpy version of DiT's code, on a non-square grid too, and
// that a model whose config names it uses it.
func TestPositionalEncoding2D(t *testing.T) {
	a, err := npy.ReadNPZ("testdata/pe2d.npz")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ h, w, d int }{{3, 5, 8}, {9, 6, 64}, {32, 32, 64}} {
		want := a[fmt.Sprintf("pe_%dx%dx%d", c.h, c.w, c.d)]
		if want == nil || len(want.Data) != c.h*c.w*c.d {
			t.Fatalf("pe2d.npz: no %dx%dx%d code", c.h, c.w, c.d)
		}
		got := PositionalEncoding2D(c.h, c.w, c.d)
		for i, v := range want.Data {
			// Both round one float64 sine to float32; libm and numpy may
			// differ in the last bit of the float64.
			if math.Abs(float64(got[i]-v)) > 1e-7 {
				t.Fatalf("%dx%dx%d: [cell %d, channel %d] = %v, numpy %v", c.h, c.w, c.d, i/c.d, i%c.d, got[i], v)
			}
		}
	}
	cfg := tinyConfig()
	cfg.PosCode = PosCode2D
	g := NewGeCA[float32](cfg, func(s ParamSpec) []float32 { return make([]float32, s.Size()) })
	if want := PositionalEncoding2D(cfg.GridH, cfg.GridW, cfg.EmbedDim); !slices.Equal(g.PE, want) {
		t.Error("a model configured with the 2-D code does not add it")
	}
	if g := NewGeCA[float32](tinyConfig(), func(s ParamSpec) []float32 { return make([]float32, s.Size()) }); !slices.Equal(g.PE, PositionalEncoding(tinyConfig().Cells(), tinyConfig().EmbedDim)) {
		t.Error("a config that names no code does not get the official one")
	}
}

func TestPosCodeValidate(t *testing.T) {
	cfg := tinyConfig()
	cfg.PosCode = "3d"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `pos_code "3d" unknown`) {
		t.Errorf("unknown code: %v", err)
	}
	cfg.PosCode, cfg.Prediction = "", "x0"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `prediction "x0" unknown`) {
		t.Errorf("unknown prediction: %v", err)
	}
	cfg.Prediction = PredictV
	if err := cfg.Validate(); err != nil {
		t.Errorf("v-prediction: %v", err)
	}
	cfg.PosCode, cfg.EmbedDim, cfg.Heads = PosCode2D, 6, 1
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "not divisible by 4") {
		t.Errorf("2-D code with D 6: %v", err)
	}
}

func TestNewModelErrors(t *testing.T) {
	cfg := tinyConfig()
	base, err := NewRandomModel(cfg, 1, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	fresh := func() map[string]*tensor.Dense {
		out := map[string]*tensor.Dense{}
		for k, v := range base.Tensors() {
			out[k] = tensor.New(tensor.WithShape(v.Shape()...), tensor.WithBacking(append([]float32(nil), v.Data().([]float32)...)))
		}
		return out
	}
	cases := []struct {
		name  string
		edit  func(map[string]*tensor.Dense)
		wants []string
	}{
		{"missing", func(m map[string]*tensor.Dense) { delete(m, "final_layer.linear.bias") },
			[]string{"missing tensor final_layer.linear.bias", "[11]"}},
		{"unexpected", func(m map[string]*tensor.Dense) {
			m["module.pos_embed"] = tensor.New(tensor.WithShape(2), tensor.WithBacking([]float32{1, 2}))
		}, []string{"unexpected", "module.pos_embed"}},
		{"shape", func(m map[string]*tensor.Dense) {
			m["cell_to_embedding.weight"] = tensor.New(tensor.WithShape(16, 10), tensor.WithBacking(make([]float32, 160)))
		}, []string{"cell_to_embedding.weight", "[16 10]", "want [16 14]"}},
		{"nan", func(m map[string]*tensor.Dense) {
			m["transformer.layers.0.1.norm.bias"].Data().([]float32)[3] = float32(math.NaN())
		}, []string{"transformer.layers.0.1.norm.bias", "non-finite", "index 3"}},
		{"inf", func(m map[string]*tensor.Dense) {
			m["t_embedder.mlp.0.weight"].Data().([]float32)[0] = float32(math.Inf(1))
		}, []string{"t_embedder.mlp.0.weight", "non-finite"}},
		{"dtype", func(m map[string]*tensor.Dense) {
			m["y_embedder.embedding_table.0.bias"] = tensor.New(tensor.WithShape(16), tensor.WithBacking(make([]float64, 16)))
		}, []string{"y_embedder.embedding_table.0.bias", "float64", "[16]"}},
		{"nil", func(m map[string]*tensor.Dense) { m["final_layer.linear.weight"] = nil },
			[]string{"final_layer.linear.weight"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := fresh()
			tc.edit(ts)
			_, err := NewModel(cfg, ts)
			if err == nil {
				t.Errorf("%s: no error", tc.name)
				return
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: error %q does not mention %q", tc.name, err, w)
				}
			}
		})
	}
	if _, err := NewModel(cfg, fresh()); err != nil {
		t.Errorf("clean tensors: %v", err)
	}
	bad := cfg
	bad.Heads = 3
	if _, err := NewModel(bad, fresh()); err == nil {
		t.Error("invalid config accepted")
	}
	if _, err := NewRandomModel(bad, 1, 0.5); err == nil {
		t.Error("invalid config accepted by NewRandomModel")
	}
}

func TestBadInputs(t *testing.T) {
	cfg := tinyConfig()
	m, _ := NewRandomModel(cfg, 1, 0.5)
	zero := make([]float32, cfg.NumClasses)
	if _, err := m.Condition([]int{-1}, [][]float32{zero}); err == nil {
		t.Error("negative t accepted")
	}
	if _, err := m.Condition([]int{1}, [][]float32{{1}}); err == nil || !strings.Contains(err.Error(), "want 3") {
		t.Errorf("short label: %v", err)
	}
	if _, err := m.Condition([]int{1, 2}, [][]float32{zero}); err == nil {
		t.Error("mismatched batch accepted")
	}
	if _, err := m.Condition([]int{1}, [][]float32{{0, float32(math.NaN()), 0}}); err == nil {
		t.Error("NaN label accepted")
	}
	if _, err := m.Condition(nil, nil); err == nil {
		t.Error("empty batch accepted")
	}
	c, err := m.Condition([]int{3, 4}, [][]float32{zero, zero})
	if err != nil {
		t.Fatal(err)
	}
	st := randomState(cfg, 2, 1)
	u := m.NewUpdater(2)
	n := 2 * cfg.Cells()
	expectErr := func(what string, err error, sub string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), sub) {
			t.Errorf("%s: error %v, want one mentioning %q", what, err, sub)
		}
	}
	expectErr("short mask", u.Update(st, c, make([]float32, n-1), nil), "mask has")
	half := make([]float32, n)
	half[3] = 0.5
	expectErr("non-binary mask", u.Update(st, c, half, nil), "not 0 or 1")
	expectErr("nil cond", u.Update(st, nil, nil, nil), "nil")
	c1, _ := m.Condition([]int{3}, [][]float32{zero})
	expectErr("cond batch", u.Update(st, c1, nil, nil), "conditioning has shape")
	wrong := NewState(2, cfg.GridH+1, cfg.GridW, cfg.CellDim())
	expectErr("grid", u.Update(wrong, c, nil, nil), "want (B>=1, C=14, H=5, W=7)")
	expectErr("batch", m.NewUpdater(3).Update(st, c, nil, nil), "batch")
	bad := st.Clone()
	bad.Data[(1*cfg.Cells()+8)*cfg.CellDim()+4] = float32(math.Inf(-1))
	expectErr("inf state", u.Update(bad, c, nil, nil), "sample 1, cell (1, 1), channel 4")
	badC := &Cond{B: 2, D: cfg.EmbedDim, C: append([]float32(nil), c.C...)}
	badC.C[5] = float32(math.NaN())
	expectErr("nan cond", u.Update(st, badC, nil, nil), "not finite")
	expectErr("short magnitude", u.Update(st, c, nil, &Observe{Magnitude: make([]float32, 3)}), "magnitude")
	expectErr("attn cell", u.Update(st, c, nil, &Observe{Attn: make([]float32, 18), AttnI: 9}), "outside")
	expectErr("attn len", u.Update(st, c, nil, &Observe{Attn: make([]float32, 17)}), "heads·9 = 18")
	expectErr("replay exhausted", u.Call(st, c, 3, 0.5, &ReplayStream{Name: "m", Values: make([]float32, n)}, nil), "exhausted")
	expectErr("bad rate", u.Call(st, c, 1, float32(math.NaN()), NewStream(1, "m"), nil), "rate")
	expectErr("negative M", u.Call(st, c, -1, 0.5, NewStream(1, "m"), nil), "negative")
	expectErr("nil stream", u.Call(st, c, 1, 0.5, nil, nil), "nil")
	expectErr("seed shape", Seed(cfg, wrong, NewStream(1, "s")), "want")
	expectErr("seed nil stream", Seed(cfg, st, nil), "nil")
	expectErr("drawmask rate", DrawMask(make([]float32, 4), 0, NewStream(1, "m")), "rate")
	expectErr("cfg odd", CFGCombine(make([]float32, 1), randomState(cfg, 3, 1), cfg, 1.5), "odd")
	expectErr("cfg out", CFGCombine(make([]float32, 1), st, cfg, 1.5), "out has")
	expectErr("set input", SetInput(st, cfg, make([]float32, 5)), "x has")
	// The state and caches stay usable after errors.
	if err := u.Update(st, c, nil, nil); err != nil {
		t.Errorf("valid update after errors: %v", err)
	}
}

func TestDrawMask(t *testing.T) {
	u := []float32{0, 0.25, 0.5 - 1.0/(1<<24), 0.5, 0.75, 1 - 1.0/(1<<24)}
	dst := make([]float32, len(u))
	if err := DrawMask(dst, 0.5, &ReplayStream{Values: u}); err != nil {
		t.Fatal(err)
	}
	want := []float32{0, 0, 0, 1, 1, 1}
	for i := range want {
		if dst[i] != want[i] {
			t.Errorf("u=%v: mask %v, want %v", u[i], dst[i], want[i])
		}
	}
	if err := DrawMask(dst, 1, nil); err != nil || dst[0] != 1 {
		t.Errorf("rate 1: %v %v", dst, err)
	}
	// Rate ≈ probability.
	big := make([]float32, 100000)
	if err := DrawMask(big, 0.3, NewStream(9, StreamMask)); err != nil {
		t.Fatal(err)
	}
	var s float32
	for _, v := range big {
		s += v
	}
	if p := s / float32(len(big)); math.Abs(float64(p)-0.3) > 0.01 {
		t.Errorf("rate 0.3 gave %v", p)
	}
}

// Editing the state between updates (new x_t, re-seed) must invalidate the
// cached keys and values of exactly the edited cells.
func TestCacheSeesEdits(t *testing.T) {
	cfg := tinyConfig()
	m, _ := NewRandomModel(cfg, 4, 0.5)
	zero := make([]float32, cfg.NumClasses)
	c, _ := m.Condition([]int{3}, [][]float32{zero})
	c2, _ := m.Condition([]int{700}, [][]float32{ones(cfg.NumClasses)})
	a, b := randomState(cfg, 1, 2), randomState(cfg, 1, 2)
	us, ud := m.NewUpdater(1), m.NewUpdater(1)
	ud.Dense = true
	ms, md := NewStream(1, StreamMask), NewStream(1, StreamMask)
	step := func(cc *Cond) {
		if err := us.Call(a, cc, 2, 0.5, ms, nil); err != nil {
			t.Fatal(err)
		}
		if err := ud.Call(b, cc, 2, 0.5, md, nil); err != nil {
			t.Fatal(err)
		}
	}
	step(c)
	a.Cell(0, 2, 3)[0] += 1
	b.Cell(0, 2, 3)[0] += 1
	step(c)
	if err := ReseedOut(cfg, a, NewStream(3, "s")); err != nil {
		t.Fatal(err)
	}
	if err := ReseedOut(cfg, b, NewStream(3, "s")); err != nil {
		t.Fatal(err)
	}
	step(c2)
	step(c)
	if e := numcheck.RelErr(a.Data, b.Data); e > 1e-6 {
		t.Errorf("cached update differs from dense after edits: %g", e)
	}
}
