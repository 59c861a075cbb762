// The emulator's C interface for cgo.
#pragma once
#include <stdint.h>
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif
int emu_kernel(const char* name);
int emu_launch(int kernel, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
               const uint64_t* args, int nargs, char* err, int errlen);
void* emu_alloc(size_t bytes);
void emu_free(void* p, size_t bytes);
// out[i] = in[i] rounded to bfloat16 by the emulator's __float2bfloat16_rn
// (for its tests).
void emu_float2bfloat16_rn(const float* in, float* out, size_t n);
#ifdef __cplusplus
}
#endif
