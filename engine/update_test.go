package engine

import (
	"testing"

	"geca/internal/numcheck"
)

func tinyConfig() Config {
	return Config{Name: "tiny", GridH: 5, GridW: 7, InChannels: 3, HiddenChannels: 5, EmbedDim: 16, Heads: 2, MLPDim: 24, NumClasses: 3, M: 12, UpdateRate: 0.5}
}

func randomState(cfg Config, b int, seed uint64) *State {
	st := NewState(b, cfg.GridH, cfg.GridW, cfg.CellDim())
	s := NewStream(seed, "test-state")
	s.Normal(st.Data)
	return st
}

// Sparse work (active rows only, cached embeddings/keys/values) must equal
// computing every cell and masking.
func TestSparseEqualsDense(t *testing.T) {
	for _, cfg := range []Config{tinyConfig(), func() Config { c, _ := Preset("GeCA-XS", 5); c.GridH, c.GridW = 6, 9; return c }()} {
		t.Run(cfg.Name, func(t *testing.T) {
			m, err := NewRandomModel(cfg, 7, 0.5)
			if err != nil {
				t.Fatal(err)
			}
			const B = 2
			c, err := m.Condition([]int{10, 900}, [][]float32{make([]float32, cfg.NumClasses), ones(cfg.NumClasses)})
			if err != nil {
				t.Fatal(err)
			}
			st0 := randomState(cfg, B, 1)
			sparse, dense := st0.Clone(), st0.Clone()
			us, ud := m.NewUpdater(B), m.NewUpdater(B)
			ud.Dense = true
			if err := us.Call(sparse, c, 12, 0.5, NewStream(3, StreamMask), nil); err != nil {
				t.Fatal(err)
			}
			if err := ud.Call(dense, c, 12, 0.5, NewStream(3, StreamMask), nil); err != nil {
				t.Fatal(err)
			}
			if e := numcheck.RelErr(sparse.Data, dense.Data); e > 1e-6 {
				t.Errorf("%s: sparse vs dense relative error %g", cfg.Name, e)
			}
			if e := numcheck.RelErr(sparse.Data, st0.Data); e < 1e-3 {
				t.Errorf("%s: state barely changed (%g)", cfg.Name, e)
			}
		})
	}
}

func ones(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = 1
	}
	return v
}
