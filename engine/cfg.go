package engine

import (
	"fmt"
	"math"
)

// ModelOut writes what GeCA.forward returns as its first value in eval mode:
// the C_out channels of every cell, channel-first (B, C_out, H, W), i.e.
// ε̂ = channels [0, C_in) and v = channels [C_in, 2·C_in) of each sample.
func ModelOut(out []float32, st *State, cfg Config) error {
	if err := checkState(cfg, st); err != nil {
		return fmt.Errorf("model output: %w", err)
	}
	co, n := cfg.OutChannels(), st.H*st.W
	if len(out) != st.B*co*n {
		return fmt.Errorf("model output: out has %d values, want (B, C_out, H, W) = (%d, %d, %d, %d) = %d", len(out), st.B, co, st.H, st.W, st.B*co*n)
	}
	for b := 0; b < st.B; b++ {
		for p := 0; p < n; p++ {
			cell := st.Data[(b*n+p)*st.C+cfg.InChannels:]
			for ch := 0; ch < co; ch++ {
				out[(b*co+ch)*n+p] = cell[ch]
			}
		}
	}
	return nil
}

// CFGCombine writes the guided output of forward_with_cfg (docs/model.md §4.5) for a
// 2B′ batch whose first half is conditional and second half unconditional:
// out is (2B′, C_out, H, W) channel-first; for both halves the ε channels are
// ε_u + scale·(ε_c − ε_u), and the v channels are each half's own.
func CFGCombine(out []float32, st *State, cfg Config, scale float32) error {
	if math.IsNaN(float64(scale)) || math.IsInf(float64(scale), 0) {
		return fmt.Errorf("cfg: guidance scale %v is not finite", scale)
	}
	if st != nil && st.B%2 != 0 {
		return fmt.Errorf("cfg: batch %d is odd; the guided batch is [conditional; unconditional]", st.B)
	}
	if err := ModelOut(out, st, cfg); err != nil {
		return fmt.Errorf("cfg: %w", err)
	}
	half, co, ci, n := st.B/2, cfg.OutChannels(), cfg.InChannels, st.H*st.W
	for b := 0; b < half; b++ {
		for ch := 0; ch < ci; ch++ {
			c := out[(b*co+ch)*n : (b*co+ch+1)*n]
			u := out[((b+half)*co+ch)*n : ((b+half)*co+ch+1)*n]
			for p := range c {
				g := u[p] + scale*(c[p]-u[p])
				c[p], u[p] = g, g
			}
		}
	}
	return nil
}

// SetInput copies x_t, channel-first (B, C_in, H, W), into the C_in channels of
// every cell (docs/model.md §4.4).
func SetInput(st *State, cfg Config, x []float32) error {
	if err := checkState(cfg, st); err != nil {
		return fmt.Errorf("set input: %w", err)
	}
	ci, n := cfg.InChannels, st.H*st.W
	if len(x) != st.B*ci*n {
		return fmt.Errorf("set input: x has %d values, want (B, C_in, H, W) = (%d, %d, %d, %d) = %d", len(x), st.B, ci, st.H, st.W, st.B*ci*n)
	}
	for b := 0; b < st.B; b++ {
		for p := 0; p < n; p++ {
			cell := st.Data[(b*n+p)*st.C:]
			for ch := 0; ch < ci; ch++ {
				cell[ch] = x[(b*ci+ch)*n+p]
			}
		}
	}
	return nil
}
