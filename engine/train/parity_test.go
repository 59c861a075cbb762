package train

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"geca/engine"
	"geca/engine/ckpt"
)

// TestForwardMatchesEngine: the training forward pass and the engine's
// inference Updater give the same states for the same weights and masks, so
// what training optimises is what the app runs.
func TestForwardMatchesEngine(t *testing.T) {
	cfg := engine.Config{Name: "parity", GridH: 6, GridW: 7, InChannels: 2, HiddenChannels: 5, EmbedDim: 16,
		Heads: 4, MLPDim: 24, NumClasses: 3, M: 4, UpdateRate: 0.5}
	const B = 2
	p, err := NewParams[float32](cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.InitRandom(5, 0.2)
	ts, _ := p.Tensors()
	model, err := engine.NewModel(cfg, ts)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(2, 3))
	st := engine.NewState(B, cfg.GridH, cfg.GridW, cfg.CellDim())
	for i := range st.Data {
		st.Data[i] = float32(r.NormFloat64())
	}
	tt := []int{17, 803}
	y := [][]float32{{1, 0, 1}, {0, 0, 0}}
	flatY := []float32{1, 0, 1, 0, 0, 0}
	var masks [][]float32
	for m := 0; m < cfg.M; m++ {
		mk := make([]float32, B*cfg.Cells())
		for i := range mk {
			mk[i] = float32(r.IntN(2))
		}
		masks = append(masks, mk)
	}
	net := NewNet(p, B)
	out, err := net.Forward(st.Data, tt, flatY, masks)
	if err != nil {
		t.Fatal(err)
	}
	cond, err := model.Condition(tt, y)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range cond.C {
		if !(math.Abs(float64(v-net.Cond()[i])) <= 1e-5*(1+math.Abs(float64(v)))) {
			t.Fatalf("conditioning c[%d]: engine %g, train %g", i, v, net.Cond()[i])
		}
	}
	up := model.NewUpdater(B)
	for m := 0; m < cfg.M; m++ {
		if err := up.Update(st, cond, masks[m], nil); err != nil {
			t.Fatal(err)
		}
	}
	var worst float64
	for i, v := range st.Data {
		worst = max(worst, math.Abs(float64(v-out[i]))/(1+math.Abs(float64(v))))
	}
	t.Logf("max relative difference after %d updates: %.2g", cfg.M, worst)
	if worst > 2e-5 {
		t.Fatalf("training forward differs from the engine by %.3g", worst)
	}
}

// TestModelFileLoadsInApp: the model file a training run writes loads through
// engine/ckpt (the app's loader) with its config, as the EMA weights.
func TestModelFileLoadsInApp(t *testing.T) {
	opt := DefaultOptions()
	opt.Batch = 4
	tr, err := NewTrainer(smallConfig(), opt, toyData(8, 8, 8))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := tr.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := tr.Save(path, "toy", 1); err != nil {
		t.Fatal(err)
	}
	m, c, err := ckpt.LoadModel(path, ckpt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Cfg != tr.Cfg {
		t.Fatalf("config from the file %+v, trained %+v", m.Cfg, tr.Cfg)
	}
	if c.Weights != "ema" {
		t.Fatalf("file reports %q weights, want ema", c.Weights)
	}
	got := m.Tensors()[tr.P.FinalLayer.Linear.Weight.Key].Data().([]float32)
	for i, v := range tr.EMA.W[23] {
		if got[i] != v {
			t.Fatalf("%s[%d] = %g in the file, EMA has %g", tr.P.FinalLayer.Linear.Weight.Key, i, got[i], v)
		}
	}
	// The state file resumes to the same step and weights.
	tr2, _, err := Resume(path, toyData(8, 8, 8), Changes{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tr2.Step != 2 || tr2.Adam.Step != 2 || tr2.P.FinalLayer.Linear.W()[3] != tr.P.FinalLayer.Linear.W()[3] {
		t.Fatalf("resumed at step %d (adam %d), want 2", tr2.Step, tr2.Adam.Step)
	}
}
