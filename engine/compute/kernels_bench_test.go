package compute

import (
	"math/rand/v2"
	"testing"
)

// GeCA-S shapes at update rate 0.5: 512 active rows of a 32x32 grid.
const (
	bRows = 512
	bD    = 768
	bMLP  = 3072
	bN    = 1024
)

func randVec(n int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func benchIdx() []int32 {
	idx := make([]int32, bRows)
	for i := range idx {
		idx[i] = int32(2 * i)
	}
	return idx
}

func BenchmarkKernelGELU(b *testing.B) {
	k := &BiasGELUKernel{X: randVec(bRows*bMLP, 1), Bias: make([]float32, bMLP), W: bMLP}
	for i := 0; i < b.N; i++ {
		Parallel(bRows, 8, k)
	}
}

func BenchmarkKernelAttention(b *testing.B) {
	k := &LocalAttentionKernel{Q: randVec(bRows*bD, 1), KV: randVec(bN*2*bD, 2), Out: make([]float32, bRows*bD), Idx: benchIdx(), H: 32, W: 32, D: bD, Heads: 12, ObsRow: -1}
	for i := 0; i < b.N; i++ {
		Parallel(bRows, 8, k)
	}
}

func BenchmarkKernelResidualNorm(b *testing.B) {
	mod := Mod{Vec: randVec(6*bD, 3), Stride: 6 * bD, Dim: bD}
	k := &ResidualNormKernel{Base: randVec(bN*bD, 1), BaseIdx: true, T: randVec(bRows*bD, 2), Bias: make([]float32, bD), H: make([]float32, bRows*bD), F: make([]float32, bRows*bD),
		Idx: benchIdx(), N: bN, D: bD, Gate: mod, GateC: 2, Gamma: randVec(bD, 4), Beta: randVec(bD, 5), Eps: 1e-5, NormMod: mod, ShiftC: 3, ScaleC: 4}
	for i := 0; i < b.N; i++ {
		Parallel(bRows, 8, k)
	}
}

func BenchmarkKernelEmbed(b *testing.B) {
	mod := Mod{Vec: randVec(6*bD, 3), Stride: 6 * bD, Dim: bD}
	k := &EmbedKernel{G: randVec(bRows*bD, 1), Bias: make([]float32, bD), PE: randVec(bN*bD, 2), Idx: benchIdx(), N: bN, D: bD,
		E: make([]float32, bN*bD), A: make([]float32, bN*bD), AG: make([]float32, bRows*bD), Gamma: randVec(bD, 4), Beta: randVec(bD, 5), Eps: 1e-5, Mod: mod, ShiftC: 0, ScaleC: 1}
	for i := 0; i < b.N; i++ {
		Parallel(bRows, 8, k)
	}
}

func BenchmarkKernelScatterKV(b *testing.B) {
	k := &ScatterKernel{Src: randVec(bRows*2*bD, 1), Dst: make([]float32, bN*2*bD), Idx: benchIdx(), Width: 2 * bD}
	for i := 0; i < b.N; i++ {
		Parallel(bRows, 64, k)
	}
}
