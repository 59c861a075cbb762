// Package train trains GeCA models: the backward pass of every op of the cell
// update (docs/model.md §3) through all M updates, the diffusion loss (noise MSE plus the
// variational term of the learned variance, docs/model.md §8), AdamW and EMA.
//
// The network code is generic over float32 and float64: float64 is what the
// finite-difference gradient checks run on, float32 is what real training runs
// on (its matrix products go through engine/compute.Gemm).
//
// What training shares with inference is not repeated here: the diffusion
// process (its float64 tables and the decoder likelihood) is engine/diffusion's,
// and Sample, which draws the training previews, runs engine/sample, the app's
// sampler.
package train

import (
	"math"

	"geca/engine"
	"geca/engine/compute"
)

// Float is the element type of a network.
type Float = engine.Float

// linearBwd accumulates the gradients of Y = X·Wᵀ + bias: dW += dYᵀ·X,
// dBias += Σ_rows dY (when dBias != nil), and dX = dY·W (or dX += when
// accumulate; skipped when dX is nil).
func linearBwd[T Float](dx, dw, db, dy, x, w []T, rows, in, out int, accumulate bool) {
	// dW: one partial sum per fixed block of rows, added in block order, so
	// the result does not depend on the number of threads.
	nb := (rows + engine.LinearRowBlock*4 - 1) / (engine.LinearRowBlock * 4)
	if nb <= 1 {
		compute.GemmT(true, false, out, in, rows, 1, dy, out, x, in, 1, dw, in)
	} else {
		per := (rows + nb - 1) / nb
		parts := make([][]T, nb)
		compute.ParallelFor(nb, 1, func(lo, hi int) {
			for c := lo; c < hi; c++ {
				r0, r1 := c*per, min((c+1)*per, rows)
				parts[c] = make([]T, out*in)
				compute.GemmT(true, false, out, in, r1-r0, 1, dy[r0*out:], out, x[r0*in:], in, 0, parts[c], in)
			}
		})
		for _, pt := range parts {
			for i, v := range pt {
				dw[i] += v
			}
		}
	}
	if db != nil {
		colSum(db, dy, rows, out)
	}
	if dx != nil {
		beta := T(0)
		if accumulate {
			beta = 1
		}
		compute.ParallelFor(rows, engine.LinearRowBlock, func(lo, hi int) {
			compute.GemmT(false, false, hi-lo, in, out, 1, dy[lo*out:], out, w, in, beta, dx[lo*in:], in)
		})
	}
}

// colSum adds the column sums of the rows×cols matrix a to dst, in a fixed
// order so the result does not depend on the thread count.
func colSum[T Float](dst, a []T, rows, cols int) {
	const chunk = 1024
	nch := (rows + chunk - 1) / chunk
	part := make([]T, nch*cols)
	compute.ParallelFor(nch, 1, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			p := part[c*cols : (c+1)*cols]
			for r := c * chunk; r < min((c+1)*chunk, rows); r++ {
				row := a[r*cols : (r+1)*cols]
				for j, v := range row {
					p[j] += v
				}
			}
		}
	})
	for c := 0; c < nch; c++ {
		for j, v := range part[c*cols : (c+1)*cols] {
			dst[j] += v
		}
	}
}

func silu(x float64) float64 { return compute.SiLU64(x) }

// siluGrad is d silu(x)/dx = σ(x)(1 + x(1 − σ(x))).
func siluGrad(x float64) float64 {
	s := 1 / (1 + math.Exp(-x))
	return s * (1 + x*(1-s))
}

// gelu is the exact (erf) GELU of torch.nn.GELU() (docs/model.md §3 step 8).
func gelu(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }

const invSqrt2Pi = 0.3989422804014327

func geluGrad(x float64) float64 {
	return 0.5*(1+math.Erf(x/math.Sqrt2)) + x*invSqrt2Pi*math.Exp(-0.5*x*x)
}

func zero[T Float](s []T) {
	for i := range s {
		s[i] = 0
	}
}
