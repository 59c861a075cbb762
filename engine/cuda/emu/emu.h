// CPU emulation of the CUDA C that kernels.cu uses, so that the kernels run,
// unchanged, in tests on machines without a GPU. Each thread of a block is a
// fiber (ucontext) on one OS thread; __syncthreads and the warp shuffles are
// barriers the scheduler (emu.cc) releases once every live thread of the
// block, or of the warp, has reached them. Blocks run one after another.
// __shared__ variables are function statics: one instance, seen by all the
// threads of the running block. Tensor-core fragments hold the whole tile in
// every thread (their layout is opaque in CUDA too) as FP32 values: TF32
// operands rounded as the hardware does, bfloat16 operands converted exactly;
// every product of two such operands is exact in FP32, and the accumulation
// is in FP32.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>

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

// bfloat16 (cuda_bf16.h): the upper 16 bits of an IEEE binary32 value, i.e.
// 8 exponent bits and a 7-bit mantissa. Only what kernels.cu uses: storage,
// conversion from float with rounding to nearest even, and back (exact).
struct __nv_bfloat16 {
	uint16_t x;
};

// __float2bfloat16_rn rounds f to the nearest bfloat16, ties to even, as
// cvt.rn.bf16.f32 does: overflow goes to infinity, subnormals round like
// any other value (no flush), and a NaN stays a NaN (the canonical 0x7fff,
// as CUDA's own host implementation returns).
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
	uint32_t u;
	std::memcpy(&u, &f, 4);
	if ((u & 0x7fffffffu) > 0x7f800000u) return __nv_bfloat16{0x7fff};
	u += 0x7fffu + ((u >> 16) & 1u); // half an ulp, plus one when the kept part is odd (ties to even)
	return __nv_bfloat16{static_cast<uint16_t>(u >> 16)};
}

inline float __bfloat162float(__nv_bfloat16 b) {
	const uint32_t u = static_cast<uint32_t>(b.x) << 16;
	float f;
	std::memcpy(&f, &u, 4);
	return f;
}

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

// operand<T> is what a matrix_a or matrix_b fragment of precision T loads
// from memory (mem) and the FP32 value it holds for one element.
template <typename T>
struct operand;
template <>
struct operand<precision::tf32> {
	using mem = float;
	static float value(float v) { return __float_to_tf32(v); }
};
template <>
struct operand<__nv_bfloat16> {
	using mem = __nv_bfloat16;
	static float value(__nv_bfloat16 v) { return __bfloat162float(v); }
};

// check_ldst stops the program on what CUDA leaves undefined for wmma loads
// and stores: a pointer that is not 256-bit aligned, or a stride ldm that is
// not a multiple of 16 bytes. A kernel that breaks them may seem to work
// here and fail on a GPU.
template <typename E>
inline void check_ldst(const E* p, unsigned ldm, const char* what) {
	if (reinterpret_cast<uintptr_t>(p) % 32 != 0 || (ldm * sizeof(E)) % 16 != 0) {
		std::fprintf(stderr, "emu: wmma::%s at %p with ldm %u (%zu-byte elements): wmma needs a 32-byte aligned "
		                     "pointer and a stride of a multiple of 16 bytes\n",
		             what, (const void*)p, ldm, sizeof(E));
		std::abort();
	}
}

template <typename Use, int m, int n, int k, typename T>
inline void load_matrix_sync(fragment<Use, m, n, k, T, row_major>& f, const typename operand<T>::mem* p, unsigned ldm) {
	check_ldst(p, ldm, "load_matrix_sync");
	for (int r = 0; r < f.rows; r++)
		for (int c = 0; c < f.cols; c++) f.x[r * f.cols + c] = operand<T>::value(p[r * ldm + c]);
}

template <typename Use, int m, int n, int k, typename T>
inline void load_matrix_sync(fragment<Use, m, n, k, T, col_major>& f, const typename operand<T>::mem* p, unsigned ldm) {
	check_ldst(p, ldm, "load_matrix_sync");
	for (int r = 0; r < f.rows; r++)
		for (int c = 0; c < f.cols; c++) f.x[r * f.cols + c] = operand<T>::value(p[c * ldm + r]);
}

// mma_sync: D = A·B + C. The shapes CUDA has for these precisions are the
// only ones allowed (TF32: 16 x 16 x 8; bfloat16: 16 x 16 x 16, 32 x 8 x 16,
// 8 x 32 x 16), and A and B must share a precision.
template <int m, int n, int k, typename TA, typename LA, typename TB, typename LB>
inline void mma_sync(fragment<accumulator, m, n, k, float>& d, const fragment<matrix_a, m, n, k, TA, LA>& a,
                     const fragment<matrix_b, m, n, k, TB, LB>& b, const fragment<accumulator, m, n, k, float>& c) {
	static_assert(std::is_same_v<TA, TB>, "matrix_a and matrix_b of different precisions");
	static_assert(!std::is_same_v<TA, precision::tf32> || (m == 16 && n == 16 && k == 8), "TF32 wmma is 16x16x8");
	static_assert(!std::is_same_v<TA, __nv_bfloat16> ||
	                  (k == 16 && ((m == 16 && n == 16) || (m == 32 && n == 8) || (m == 8 && n == 32))),
	              "bfloat16 wmma is 16x16x16, 32x8x16 or 8x32x16");
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
	check_ldst(p, ldm, "store_matrix_sync");
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
