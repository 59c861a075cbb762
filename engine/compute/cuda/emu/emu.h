// CPU emulation of the CUDA C that kernels.cu uses, so that the kernels run,
// unchanged, in tests on machines without a GPU. Each thread of a block is a
// fiber (ucontext) on one OS thread; __syncthreads and the warp shuffles are
// barriers the scheduler (emu.cc) releases once every live thread of the
// block, or of the warp, has reached them. Blocks run one after another.
// __shared__ variables are function statics: one instance, seen by all the
// threads of the running block. Tensor-core fragments hold the whole tile in
// every thread (their layout is opaque in CUDA too), with operands rounded to
// TF32 as the hardware does.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

struct dim3 {
	unsigned x, y, z;
};

struct alignas(16) float4 {
	float x, y, z, w;
};

inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }

namespace emu {
// The running thread's coordinates, switched with the fiber.
extern dim3 threadIdx_, blockIdx_, blockDim_, gridDim_;
void sync_block();
void sync_warp();
// Per-warp exchange slots (one 8-byte value per lane), for shuffles.
uint64_t* warp_slots();
} // namespace emu

#define threadIdx (emu::threadIdx_)
#define blockIdx (emu::blockIdx_)
#define blockDim (emu::blockDim_)
#define gridDim (emu::gridDim_)

inline void __syncthreads() { emu::sync_block(); }

template <typename T>
inline T __shfl_xor_sync(unsigned, T v, int laneMask) {
	static_assert(sizeof(T) <= 8, "shuffle of more than 8 bytes");
	uint64_t* slot = emu::warp_slots();
	const int lane = threadIdx.x & 31;
	uint64_t bits = 0;
	std::memcpy(&bits, &v, sizeof(T));
	slot[lane] = bits;
	emu::sync_warp();
	bits = slot[lane ^ laneMask];
	emu::sync_warp(); // nobody overwrites a slot before every lane has read
	T out;
	std::memcpy(&out, &bits, sizeof(T));
	return out;
}

namespace nvcuda {
namespace wmma {
struct row_major {};
struct col_major {};
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
namespace precision {
struct tf32 {};
} // namespace precision
enum layout_t { mem_row_major, mem_col_major };

// Rounds to the nearest TF32 value (10-bit mantissa), ties away from zero,
// as cvt.rna.tf32.f32 does.
inline float __float_to_tf32(float f) {
	if (!std::isfinite(f)) return f;
	uint32_t u;
	std::memcpy(&u, &f, 4);
	u = (u + 0x1000u) & 0xffffe000u;
	std::memcpy(&f, &u, 4);
	return f;
}

template <typename Use, int m, int n, int k>
struct shape {};
template <int m, int n, int k>
struct shape<matrix_a, m, n, k> {
	static constexpr int rows = m, cols = k;
};
template <int m, int n, int k>
struct shape<matrix_b, m, n, k> {
	static constexpr int rows = k, cols = n;
};
template <int m, int n, int k>
struct shape<accumulator, m, n, k> {
	static constexpr int rows = m, cols = n;
};

template <typename Use, int m, int n, int k, typename T, typename Layout = void>
struct fragment {
	static constexpr int rows = shape<Use, m, n, k>::rows, cols = shape<Use, m, n, k>::cols;
	static constexpr int num_elements = rows * cols;
	float x[rows * cols]; // row-major, the whole tile
};

template <typename Use, int m, int n, int k, typename T, typename L>
inline void fill_fragment(fragment<Use, m, n, k, T, L>& f, float v) {
	for (int i = 0; i < f.num_elements; i++) f.x[i] = v;
}

template <typename Use, int m, int n, int k, typename T>
inline void load_matrix_sync(fragment<Use, m, n, k, T, row_major>& f, const float* p, unsigned ldm) {
	for (int r = 0; r < f.rows; r++)
		for (int c = 0; c < f.cols; c++) f.x[r * f.cols + c] = __float_to_tf32(p[r * ldm + c]);
}

template <typename Use, int m, int n, int k, typename T>
inline void load_matrix_sync(fragment<Use, m, n, k, T, col_major>& f, const float* p, unsigned ldm) {
	for (int r = 0; r < f.rows; r++)
		for (int c = 0; c < f.cols; c++) f.x[r * f.cols + c] = __float_to_tf32(p[c * ldm + r]);
}

template <int m, int n, int k, typename TA, typename LA, typename TB, typename LB>
inline void mma_sync(fragment<accumulator, m, n, k, float>& d, const fragment<matrix_a, m, n, k, TA, LA>& a,
                     const fragment<matrix_b, m, n, k, TB, LB>& b, const fragment<accumulator, m, n, k, float>& c) {
	float out[m * n];
	for (int i = 0; i < m; i++)
		for (int j = 0; j < n; j++) {
			float s = c.x[i * n + j];
			for (int q = 0; q < k; q++) s += a.x[i * k + q] * b.x[q * n + j];
			out[i * n + j] = s;
		}
	std::memcpy(d.x, out, sizeof(out));
}

template <int m, int n, int k>
inline void store_matrix_sync(float* p, const fragment<accumulator, m, n, k, float>& f, unsigned ldm, layout_t l) {
	for (int r = 0; r < m; r++)
		for (int c = 0; c < n; c++) {
			if (l == mem_row_major)
				p[r * ldm + c] = f.x[r * n + c];
			else
				p[c * ldm + r] = f.x[r * n + c];
		}
}
} // namespace wmma
} // namespace nvcuda
