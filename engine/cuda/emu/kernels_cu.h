// Kernels of one GeCA cell update (docs/model.md §3) on NVIDIA GPUs: the matrix
// products (a tiled SGEMM, and TF32 and BF16 tensor-core variants), the fused
// LayerNorm + adaLN modulation passes, the 9-slot 3x3 local attention and the
// masked residual update. `go generate` compiles this file to PTX
// (kernels.ptx, committed and embedded); the driver JIT-compiles the PTX for
// the GPU it finds.
//
// Rows are gathered cells: idx[r] is the flat cell index b*N + n of row r, as
// in the CPU kernels (engine/compute/kernels.go); the arithmetic follows them
// (double-precision sums in LayerNorm, the same operation order) so that both
// engines agree to rounding.
//
// The same source also builds on the CPU under the emulator in emu/ (GECA_EMU
// defined), which is how its tests run without a GPU. The code therefore keeps
// to what the emulator models: static shared memory only, warp-uniform
// control flow around shuffles and tensor-core calls, block-uniform control
// flow around __syncthreads.

#ifdef GECA_EMU
#include "emu.h"
#else
#include <cuda_bf16.h>
#include <mma.h>
#endif

#include "geca_arch.h" // the modulation chunks, generated from engine/params.go

// ---- reductions --------------------------------------------------------------------

__device__ __forceinline__ double warp_sum(double v) {
	for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
	return v;
}

__device__ __forceinline__ float warp_max(float v) {
	for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
	return v;
}

// block_sum returns the sum of v over the block to every thread. sh holds
// 32 doubles of shared scratch; every thread of the block must call it.
__device__ double block_sum(double v, double* sh) {
	const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
	const int nw = (blockDim.x + 31) >> 5;
	v = warp_sum(v);
	if (lane == 0) sh[w] = v;
	__syncthreads();
	if (w == 0) {
		double s = lane < nw ? sh[lane] : 0.0;
		s = warp_sum(s);
		if (lane == 0) sh[0] = s;
	}
	__syncthreads();
	const double out = sh[0];
	__syncthreads();
	return out;
}

// ---- matrix products ---------------------------------------------------------------
//
// C[r, c] = epi( sum_k A[ra, k] * B[c, k] + bias[c] ) for r < M, c < N, where
// ra = aIdx ? aIdx[r] : r (a gathered row of A) and the result goes to row
// cIdx ? cIdx[r] : r of C. A and B are row-major with K contiguous (B is a
// PyTorch weight, out x in), so this is X·Wᵀ. epi 1 applies the exact GELU.

#define GEMM_BK 16
#define GEMM_THREADS 256

__device__ __forceinline__ float gelu_exact(float v) {
	return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
}

__device__ __forceinline__ void gemm_store(int M, int N, int r, int c, float v, float* C, int ldc, const int* cIdx,
                                           const float* bias, int epi) {
	if (r >= M || c >= N) return;
	if (bias) v += bias[c];
	if (epi == 1) v = gelu_exact(v);
	const long row = cIdx ? cIdx[r] : r;
	C[row * ldc + c] = v;
}

// Tiles of BM x BN outputs, BK deep, each thread TM x TN of them. VEC loads
// A and B four values at a time (K, lda, ldb multiples of 4, aligned rows).
template <int BM, int BN, int TM, int TN, bool VEC>
__device__ void gemm_tile(int M, int N, int K, const float* __restrict__ A, int lda, const int* __restrict__ aIdx,
                          const float* __restrict__ B, int ldb, float* __restrict__ C, int ldc,
                          const int* __restrict__ cIdx, const float* __restrict__ bias, int epi) {
	__shared__ __align__(16) float As[GEMM_BK][BM + 4];
	__shared__ __align__(16) float Bs[GEMM_BK][BN + 4];
	const int tid = threadIdx.x;
	const int tx = tid % (BN / TN), ty = tid / (BN / TN);
	const int bm = blockIdx.y * BM, bn = blockIdx.x * BN;
	float acc[TM][TN];
#pragma unroll
	for (int i = 0; i < TM; i++)
#pragma unroll
		for (int j = 0; j < TN; j++) acc[i][j] = 0.0f;

	for (int k0 = 0; k0 < K; k0 += GEMM_BK) {
		if (VEC) {
			for (int i = tid; i < BM * GEMM_BK / 4; i += GEMM_THREADS) {
				const int row = i / (GEMM_BK / 4), kq = (i % (GEMM_BK / 4)) * 4;
				const int gr = bm + row, k = k0 + kq;
				float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
				if (gr < M && k < K) {
					const long ra = aIdx ? aIdx[gr] : gr;
					v = *reinterpret_cast<const float4*>(A + ra * lda + k);
				}
				As[kq + 0][row] = v.x;
				As[kq + 1][row] = v.y;
				As[kq + 2][row] = v.z;
				As[kq + 3][row] = v.w;
			}
			for (int i = tid; i < BN * GEMM_BK / 4; i += GEMM_THREADS) {
				const int row = i / (GEMM_BK / 4), kq = (i % (GEMM_BK / 4)) * 4;
				const int gc = bn + row, k = k0 + kq;
				float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
				if (gc < N && k < K) v = *reinterpret_cast<const float4*>(B + (long)gc * ldb + k);
				Bs[kq + 0][row] = v.x;
				Bs[kq + 1][row] = v.y;
				Bs[kq + 2][row] = v.z;
				Bs[kq + 3][row] = v.w;
			}
		} else {
			for (int i = tid; i < BM * GEMM_BK; i += GEMM_THREADS) {
				const int row = i / GEMM_BK, kk = i % GEMM_BK;
				const int gr = bm + row, k = k0 + kk;
				float v = 0.0f;
				if (gr < M && k < K) {
					const long ra = aIdx ? aIdx[gr] : gr;
					v = A[ra * lda + k];
				}
				As[kk][row] = v;
			}
			for (int i = tid; i < BN * GEMM_BK; i += GEMM_THREADS) {
				const int row = i / GEMM_BK, kk = i % GEMM_BK;
				const int gc = bn + row, k = k0 + kk;
				Bs[kk][row] = (gc < N && k < K) ? B[(long)gc * ldb + k] : 0.0f;
			}
		}
		__syncthreads();
#pragma unroll
		for (int kk = 0; kk < GEMM_BK; kk++) {
			float a[TM], b[TN];
#pragma unroll
			for (int i = 0; i < TM; i += 4) {
				const float4 v = *reinterpret_cast<const float4*>(&As[kk][ty * TM + i]);
				a[i] = v.x;
				a[i + 1] = v.y;
				a[i + 2] = v.z;
				a[i + 3] = v.w;
			}
#pragma unroll
			for (int j = 0; j < TN; j += 4) {
				const float4 v = *reinterpret_cast<const float4*>(&Bs[kk][tx * TN + j]);
				b[j] = v.x;
				b[j + 1] = v.y;
				b[j + 2] = v.z;
				b[j + 3] = v.w;
			}
#pragma unroll
			for (int i = 0; i < TM; i++)
#pragma unroll
				for (int j = 0; j < TN; j++) acc[i][j] += a[i] * b[j];
		}
		__syncthreads();
	}
#pragma unroll
	for (int i = 0; i < TM; i++)
#pragma unroll
		for (int j = 0; j < TN; j++)
			gemm_store(M, N, bm + ty * TM + i, bn + tx * TN + j, acc[i][j], C, ldc, cIdx, bias, epi);
}

#define GEMM_PARAMS                                                                                              \
	int M, int N, int K, const float *__restrict__ A, int lda, const int *__restrict__ aIdx,                    \
	    const float *__restrict__ B, int ldb, float *__restrict__ C, int ldc, const int *__restrict__ cIdx, \
	    const float *__restrict__ bias, int epi
#define GEMM_ARGS M, N, K, A, lda, aIdx, B, ldb, C, ldc, cIdx, bias, epi

extern "C" __global__ void __launch_bounds__(GEMM_THREADS) gemm128v(GEMM_PARAMS) {
	gemm_tile<128, 128, 8, 8, true>(GEMM_ARGS);
}
extern "C" __global__ void __launch_bounds__(GEMM_THREADS) gemm128s(GEMM_PARAMS) {
	gemm_tile<128, 128, 8, 8, false>(GEMM_ARGS);
}
extern "C" __global__ void __launch_bounds__(GEMM_THREADS) gemm64v(GEMM_PARAMS) {
	gemm_tile<64, 64, 4, 4, true>(GEMM_ARGS);
}
extern "C" __global__ void __launch_bounds__(GEMM_THREADS) gemm64s(GEMM_PARAMS) {
	gemm_tile<64, 64, 4, 4, false>(GEMM_ARGS);
}

// Products computed by a library (cuBLAS, opt-in) take plain row-major
// operands and give a plain result: gather_rows gathers the rows of A
// first, and bias_act adds the bias, applies the epilogue and scatters the
// rows of the result T (M x N, row stride ldt) into C as gemm_store does.
extern "C" __global__ void gather_rows(int M, int K, const float* __restrict__ A, int lda, const int* __restrict__ idx,
                                       float* __restrict__ out) {
	const long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= (long)M * K) return;
	const int r = (int)(i / K), k = (int)(i % K);
	out[i] = A[(long)idx[r] * lda + k];
}

extern "C" __global__ void bias_act(int M, int N, const float* __restrict__ T, int ldt, const float* __restrict__ bias,
                                    int epi, float* __restrict__ C, int ldc, const int* __restrict__ cIdx) {
	const long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= (long)M * N) return;
	const int r = (int)(i / N), c = (int)(i % N);
	gemm_store(M, N, r, c, T[(long)r * ldt + c], C, ldc, cIdx, bias, epi);
}

// Tensor-core GEMMs (opt-in): 64 x 64 tiles, 4 warps of 32 x 32 (2 x 2
// fragments of 16 x 16 x TC::K), operands rounded to the tensor-core type as
// they enter shared memory, products accumulated in FP32. The precision is a
// parameter (TC below); the tiling is one.
#define TC_BM 64
#define TC_BN 64
#define TC_BK 32
#define TC_THREADS 128

// TF32: operands rounded to TF32 (10-bit mantissa), fragments 16 x 16 x 8.
// Shared rows are BK + 4 floats.
struct TF32Op {
	typedef float T;
	typedef nvcuda::wmma::precision::tf32 Frag;
	static const int K = 8, PAD = 4;
	static __device__ T round(float v) { return nvcuda::wmma::__float_to_tf32(v); }
};

// BF16: operands rounded to bfloat16 (7-bit mantissa, round to nearest even:
// at most 2^-8 relative error each, 8x TF32's); the products of two bfloat16
// values are exact in FP32 and are accumulated in FP32, so the operand
// rounding is the error. Fragments are 16 x 16 x 16. Shared rows are BK + 8
// values (16 bytes of padding), which keeps every fragment's address 32-byte
// aligned and its stride a multiple of 8, as wmma requires for 16-bit types.
struct BF16Op {
	typedef __nv_bfloat16 T;
	typedef __nv_bfloat16 Frag;
	static const int K = 16, PAD = 8;
	static __device__ T round(float v) { return __float2bfloat16_rn(v); }
};

template <typename TC>
__device__ void gemm_tc(GEMM_PARAMS) {
	using namespace nvcuda;
	typedef typename TC::T T;
	__shared__ __align__(32) T As[TC_BM][TC_BK + TC::PAD];
	__shared__ __align__(32) T Bs[TC_BN][TC_BK + TC::PAD];
	__shared__ __align__(32) float Cs[TC_BM][TC_BN + 4];
	const int tid = threadIdx.x, warp = tid / 32;
	const int wm = warp / 2, wn = warp % 2;
	const int bm = blockIdx.y * TC_BM, bn = blockIdx.x * TC_BN;
	wmma::fragment<wmma::accumulator, 16, 16, TC::K, float> acc[2][2];
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.0f);

	for (int k0 = 0; k0 < K; k0 += TC_BK) {
		for (int i = tid; i < TC_BM * TC_BK; i += TC_THREADS) {
			const int row = i / TC_BK, kk = i % TC_BK;
			const int gr = bm + row, k = k0 + kk;
			float v = 0.0f;
			if (gr < M && k < K) {
				const long ra = aIdx ? aIdx[gr] : gr;
				v = A[ra * lda + k];
			}
			As[row][kk] = TC::round(v);
		}
		for (int i = tid; i < TC_BN * TC_BK; i += TC_THREADS) {
			const int row = i / TC_BK, kk = i % TC_BK;
			const int gc = bn + row, k = k0 + kk;
			Bs[row][kk] = TC::round((gc < N && k < K) ? B[(long)gc * ldb + k] : 0.0f);
		}
		__syncthreads();
		for (int kk = 0; kk < TC_BK; kk += TC::K) {
			wmma::fragment<wmma::matrix_a, 16, 16, TC::K, typename TC::Frag, wmma::row_major> a[2];
			wmma::fragment<wmma::matrix_b, 16, 16, TC::K, typename TC::Frag, wmma::col_major> b[2];
			for (int i = 0; i < 2; i++) wmma::load_matrix_sync(a[i], &As[wm * 32 + i * 16][kk], TC_BK + TC::PAD);
			for (int j = 0; j < 2; j++) wmma::load_matrix_sync(b[j], &Bs[wn * 32 + j * 16][kk], TC_BK + TC::PAD);
			for (int i = 0; i < 2; i++)
				for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
		}
		__syncthreads();
	}
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 2; j++)
			wmma::store_matrix_sync(&Cs[wm * 32 + i * 16][wn * 32 + j * 16], acc[i][j], TC_BN + 4, wmma::mem_row_major);
	__syncthreads();
	for (int i = tid; i < TC_BM * TC_BN; i += TC_THREADS) {
		const int r = i / TC_BN, c = i % TC_BN;
		gemm_store(M, N, bm + r, bn + c, Cs[r][c], C, ldc, cIdx, bias, epi);
	}
}

extern "C" __global__ void __launch_bounds__(TC_THREADS) gemm_tf32(GEMM_PARAMS) { gemm_tc<TF32Op>(GEMM_ARGS); }
extern "C" __global__ void __launch_bounds__(TC_THREADS) gemm_bf16(GEMM_PARAMS) { gemm_tc<BF16Op>(GEMM_ARGS); }

// ---- LayerNorm with adaLN modulation -------------------------------------------------
//
// The row statistics as torch.nn.LayerNorm and the CPU kernel compute them:
// mean = Σx / D, var = Σ(x − mean)² / D (both sums in double, rounded to
// float), rstd = 1 / sqrt(var + eps) in double; then
// y = ((x − mean)·rstd·γ + β)·(1 + scale) + shift (γ, β optional).

#define LN_THREADS 256

__device__ void layernorm_mod(const float* x, float* y1, float* y2, int D, const float* gamma, const float* beta,
                              float eps, const float* shift, const float* scale, double* sh) {
	double s = 0.0;
	for (int i = threadIdx.x; i < D; i += blockDim.x) s += (double)x[i];
	const float mean = (float)block_sum(s, sh) / (float)D;
	double q = 0.0;
	for (int i = threadIdx.x; i < D; i += blockDim.x) {
		const double d = (double)(x[i] - mean);
		q += d * d;
	}
	const float var = (float)block_sum(q, sh) / (float)D;
	const float rstd = (float)(1.0 / sqrt((double)var + (double)eps));
	for (int i = threadIdx.x; i < D; i += blockDim.x) {
		float v = (x[i] - mean) * rstd;
		if (gamma) v = v * gamma[i] + beta[i];
		v = v * (1.0f + scale[i]) + shift[i];
		y1[i] = v;
		if (y2) y2[i] = v;
	}
}

// embed_ln finishes the cell embedding of the gathered rows and normalises
// it for attention (docs/model.md §3 steps 1–2 and 4):
//   e = G[r] + bias + PE[n];  E[cell] = e
//   a = LN₁(e)·(1 + scale_msa) + shift_msa;  Anorm[cell] = a;  AG[r] = a
// mod is the block's modulation of sample 0 (shift and scale at the chunks
// GECA_SHIFT_ATTN and GECA_SCALE_ATTN, each D wide), sample b at
// b·modStride. One block per row.
extern "C" __global__ void __launch_bounds__(LN_THREADS)
    embed_ln(int rows, const int* __restrict__ idx, int N, int D, const float* __restrict__ G,
             const float* __restrict__ bias, const float* __restrict__ PE, float* __restrict__ E,
             float* __restrict__ Anorm, float* __restrict__ AG, const float* __restrict__ gamma,
             const float* __restrict__ beta, float eps, const float* __restrict__ mod, int modStride) {
	__shared__ double sh[32];
	const int r = blockIdx.x;
	if (r >= rows) return; // block-uniform
	const int cell = idx[r], b = cell / N, n = cell % N;
	float* e = E + (long)cell * D;
	for (int i = threadIdx.x; i < D; i += blockDim.x) e[i] = G[(long)r * D + i] + bias[i] + PE[(long)n * D + i];
	__syncthreads();
	const float* m = mod + (long)b * modStride;
	layernorm_mod(e, Anorm + (long)cell * D, AG + (long)r * D, D, gamma, beta, eps, m + GECA_SHIFT_ATTN * D,
	              m + GECA_SCALE_ATTN * D, sh);
}

// resid_ln is a gated residual followed by the next modulated LayerNorm
// (docs/model.md §3 steps 7–8 and 8–9):
//   h = base + gate ⊙ (T[r] + bias);  H[r] = h;  F[r] = LN(h)·(1 + scale) + shift
// base is row idx[r] of Base when baseIdx is set (a cache over all cells),
// else row r (Base may be H: the update is in place). gate points at sample
// 0's gate chunk (sample b at b·gateStride), shift and scale at sample 0's
// chunks of the norm's modulation (sample b at b·normStride). One block per
// row.
extern "C" __global__ void __launch_bounds__(LN_THREADS)
    resid_ln(int rows, const int* __restrict__ idx, int N, int D, const float* Base, int baseIdx,
             const float* __restrict__ T, const float* __restrict__ bias, float* H, float* __restrict__ F,
             const float* __restrict__ gate, int gateStride, const float* __restrict__ gamma,
             const float* __restrict__ beta, float eps, const float* __restrict__ shift,
             const float* __restrict__ scale, int normStride) {
	__shared__ double sh[32];
	const int r = blockIdx.x;
	if (r >= rows) return;
	const int cell = idx[r], b = cell / N;
	const float* base = Base + (long)(baseIdx ? cell : r) * D;
	const float* g = gate + (long)b * gateStride;
	float* h = H + (long)r * D;
	for (int i = threadIdx.x; i < D; i += blockDim.x) h[i] = base[i] + g[i] * (T[(long)r * D + i] + bias[i]);
	__syncthreads();
	layernorm_mod(h, F + (long)r * D, 0, D, gamma, beta, eps, shift + (long)b * normStride,
	              scale + (long)b * normStride, sh);
}

// ---- local attention ------------------------------------------------------------------

#define ATTN_WARPS 4

// attn is the 9-slot 3x3 local attention (docs/model.md §3 step 6) of the gathered
// query rows Q: one warp per (row, head). KV holds every cell's keys then
// values (2·D wide). Out-of-grid slots have a zero key (logit 0: they take
// softmax weight) and a zero value. The weights of row obsRow (if ≥ 0) go to
// obsP[h·9 + s].
extern "C" __global__ void __launch_bounds__(ATTN_WARPS * 32)
    attn(int rows, const int* __restrict__ idx, int H, int W, int D, int heads, float scale,
         const float* __restrict__ Q, const float* __restrict__ KV, float* __restrict__ O, int obsRow,
         float* __restrict__ obsP) {
	const int lane = threadIdx.x & 31;
	const int pair0 = blockIdx.x * ATTN_WARPS + (threadIdx.x >> 5);
	const bool valid = pair0 < rows * heads;
	const int pair = valid ? pair0 : 0; // idle warps compute a copy of pair 0 and write nothing
	const int r = pair / heads, h = pair % heads;
	const int hd = D / heads;
	const int n = H * W;
	const int cell = idx[r], b = cell / n, p = cell % n, i = p / W, j = p % W;
	const float* q = Q + (long)r * D + h * hd;
	float logit[9];
	int src[9];
	for (int s = 0; s < 9; s++) {
		const int ii = i + s / 3 - 1, jj = j + s % 3 - 1;
		const bool in = ii >= 0 && ii < H && jj >= 0 && jj < W;
		src[s] = in ? b * n + ii * W + jj : -1;
		const float* k = KV + (long)(in ? src[s] : cell) * 2 * D + h * hd;
		double dot = 0.0;
		for (int d = lane; d < hd; d += 32) dot += (double)(q[d] * k[d]);
		dot = warp_sum(dot);
		logit[s] = in ? (float)dot * scale : 0.0f;
	}
	float mx = logit[0];
	for (int s = 1; s < 9; s++) mx = fmaxf(mx, logit[s]);
	float sum = 0.0f;
	for (int s = 0; s < 9; s++) {
		logit[s] = expf(logit[s] - mx);
		sum += logit[s];
	}
	const float inv = 1.0f / sum;
	for (int s = 0; s < 9; s++) logit[s] *= inv;
	if (!valid) return; // warp-uniform, after the last shuffle
	float* o = O + (long)r * D + h * hd;
	for (int d = lane; d < hd; d += 32) {
		float acc = 0.0f;
		for (int s = 0; s < 9; s++)
			if (src[s] >= 0) acc += logit[s] * KV[(long)src[s] * 2 * D + D + h * hd + d];
		o[d] = acc;
	}
	if (r == obsRow && obsP && lane < 9) obsP[h * 9 + lane] = logit[lane];
}

// ---- update --------------------------------------------------------------------------

#define APPLY_WARPS 4

// apply adds the update of gathered row r to the C_out|C_h channels of its
// cell (docs/model.md §3 step 11): S[cell, off + i] += m·(U[r, i] + bias[i]), with m
// the cell's mask value (mask null: 1). The new channel values also go to
// Out[r] (for the host), and the L2 norm of the applied update to mag[r]
// (when not null). One warp per row.
extern "C" __global__ void __launch_bounds__(APPLY_WARPS * 32)
    apply_update(int rows, const int* __restrict__ idx, float* __restrict__ S, int C, int off, int UW,
                 const float* __restrict__ U, const float* __restrict__ bias, const float* __restrict__ mask,
                 float* __restrict__ Out, float* __restrict__ mag) {
	const int lane = threadIdx.x & 31;
	const int r0 = blockIdx.x * APPLY_WARPS + (threadIdx.x >> 5);
	const bool valid = r0 < rows;
	const int r = valid ? r0 : 0;
	const int cell = idx[r];
	const float m = mask ? mask[cell] : 1.0f;
	float* s = S + (long)cell * C + off;
	double q = 0.0;
	for (int i = lane; i < UW; i += 32) {
		const float v = m * (U[(long)r * UW + i] + bias[i]);
		q += (double)v * (double)v;
		if (valid) {
			const float nv = s[i] + v;
			s[i] = nv;
			if (Out) Out[(long)r * UW + i] = nv;
		}
	}
	q = warp_sum(q);
	if (valid && mag && lane == 0) mag[r] = (float)sqrt(q);
}

// silu: y = x·sigmoid(x) = x / (1 + exp(−x)), exp in double as on the CPU.
extern "C" __global__ void silu(int n, const float* __restrict__ x, float* __restrict__ y) {
	const int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n) y[i] = x[i] / (1.0f + (float)exp(-(double)x[i]));
}
