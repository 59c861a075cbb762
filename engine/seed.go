package engine

import (
	"fmt"
	"math"
)

// checkState verifies that st is a grid of this config.
func checkState(cfg Config, st *State) error {
	if st == nil {
		return fmt.Errorf("state is nil")
	}
	if st.B < 1 || st.H != cfg.GridH || st.W != cfg.GridW || st.C != cfg.CellDim() {
		return fmt.Errorf("state has shape (B=%d, C=%d, H=%d, W=%d), want (B>=1, C=%d, H=%d, W=%d) for %s",
			st.B, st.C, st.H, st.W, cfg.CellDim(), cfg.GridH, cfg.GridW, cfgName(cfg))
	}
	if len(st.Data) != st.B*st.H*st.W*st.C {
		return fmt.Errorf("state holds %d values, want %d for shape (%d, %d, %d, %d)", len(st.Data), st.B*st.H*st.W*st.C, st.B, st.C, st.H, st.W)
	}
	return nil
}

// Seed prepares the [C_out | C_h] channels of a fresh grid (docs/model.md §4.3,
// cell_init = 'random'): everything zero except the C_out channels of the
// centre cell (H/2, W/2), which get N(0, 1) draws from s, B·C_out of them in
// sample-major order (one randn(B, C_out)). C_in is left untouched.
func Seed(cfg Config, st *State, s Stream) error {
	if err := checkState(cfg, st); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	co := cfg.OutChannels()
	draw := make([]float32, st.B*co)
	if err := normal(s, draw); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	for i := 0; i < st.B*st.H*st.W; i++ {
		clear(st.Data[i*st.C+cfg.InChannels : (i+1)*st.C])
	}
	setCentre(cfg, st, draw)
	return nil
}

// ReseedOut is the CFG re-seed of forward_with_cfg (docs/model.md §4.5): C_out is
// zeroed everywhere and the centre cell gets fresh N(0, 1) values (one
// randn(B, C_out)); C_h and C_in are kept.
func ReseedOut(cfg Config, st *State, s Stream) error {
	if err := checkState(cfg, st); err != nil {
		return fmt.Errorf("reseed: %w", err)
	}
	co := cfg.OutChannels()
	draw := make([]float32, st.B*co)
	if err := normal(s, draw); err != nil {
		return fmt.Errorf("reseed: %w", err)
	}
	for i := 0; i < st.B*st.H*st.W; i++ {
		o := i*st.C + cfg.InChannels
		clear(st.Data[o : o+co])
	}
	setCentre(cfg, st, draw)
	return nil
}

func setCentre(cfg Config, st *State, draw []float32) {
	co := cfg.OutChannels()
	for b := 0; b < st.B; b++ {
		copy(st.Cell(b, st.H/2, st.W/2)[cfg.InChannels:], draw[b*co:(b+1)*co])
	}
}

func normal(s Stream, dst []float32) error {
	if s == nil {
		return fmt.Errorf("random stream is nil")
	}
	if err := s.Normal(dst); err != nil {
		return err
	}
	for i, v := range dst {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("random stream gave non-finite value %v at draw %d", v, i)
		}
	}
	return nil
}

// DrawMask fills dst with one update-mask value per cell (docs/model.md §3 step 10):
// dst[i] = floor(u_i + rate) with u_i ~ U[0, 1) from s, computed in float32 as
// the official code does (1 with probability rate). With rate >= 1 the mask is
// all ones and s is not used (the official code then skips the draw).
func DrawMask(dst []float32, rate float32, s Stream) error {
	if !(rate > 0) || math.IsInf(float64(rate), 0) {
		return fmt.Errorf("update rate %v out of range (0, 1]", rate)
	}
	if rate >= 1 {
		for i := range dst {
			dst[i] = 1
		}
		return nil
	}
	if s == nil {
		return fmt.Errorf("mask stream is nil")
	}
	if err := s.Uniform(dst); err != nil {
		return fmt.Errorf("update mask: %w", err)
	}
	for i, u := range dst {
		if !(u >= 0 && u < 1) {
			return fmt.Errorf("update mask: uniform draw %d = %v is outside [0, 1)", i, u)
		}
		dst[i] = float32(math.Floor(float64(u + rate)))
	}
	return nil
}
