// Package emu runs the CUDA kernels of package cuda (kernels.cu, unchanged)
// on the CPU, so the GPU engine is tested on machines without a GPU: each
// thread of a block is a fiber, barriers and warp shuffles are scheduling
// points (emu.h, emu.cc). It is slow (a few million thread-steps per
// second) and meant for small models.
//
// Device memory is host memory ending at an inaccessible page, filled with
// NaNs when allocated, so kernels that overrun a buffer fault and kernels that
// read what nobody wrote produce NaNs.
package emu

/*
#cgo CXXFLAGS: -std=c++17 -O2 -Wno-unknown-pragmas
#include <stdlib.h>
#include <string.h>
#include "emu_api.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"geca/engine/cuda"
)

// Driver is a cuda.Driver that emulates a GPU with SMs multiprocessors.
// It is a cuda.LibraryDriver too, with a stand-in for cuBLAS.
type Driver struct {
	mu           sync.Mutex
	allocs       map[cuda.Ptr]alloc
	sms          int
	Launches     int // kernel launches so far
	Copies       int // host↔device copies so far
	LibraryCalls int // matrix products by the stand-in library so far
}

// New returns an emulated device with sms multiprocessors (which only
// steers how the accelerator tiles its matrix products).
func New(sms int) *Driver { return &Driver{allocs: map[cuda.Ptr]alloc{}, sms: sms} }

// alloc is one allocation: C memory, its size.
type alloc struct {
	p unsafe.Pointer
	n int
}

func (d *Driver) Name() string { return "CUDA emulator (CPU)" }
func (d *Driver) SMs() int     { return d.sms }

func (d *Driver) Do(f func() error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return f()
}

func (d *Driver) Alloc(bytes int) (cuda.Ptr, error) {
	if bytes <= 0 {
		return 0, fmt.Errorf("emu: allocation of %d bytes", bytes)
	}
	p := C.emu_alloc(C.size_t(bytes))
	if p == nil {
		return 0, errors.New("emu: out of memory")
	}
	ptr := cuda.Ptr(uintptr(p))
	d.allocs[ptr] = alloc{p, bytes}
	return ptr, nil
}

func (d *Driver) Free(p cuda.Ptr) error {
	a, ok := d.allocs[p]
	if !ok {
		return fmt.Errorf("emu: free of %#x, which is not allocated", uint64(p))
	}
	delete(d.allocs, p)
	C.emu_free(a.p, C.size_t(a.n))
	return nil
}

// host returns the host address of [p, p+n), which must lie in one
// allocation.
func (d *Driver) host(p cuda.Ptr, n int) (unsafe.Pointer, error) {
	for base, a := range d.allocs {
		if p >= base && uint64(p)+uint64(n) <= uint64(base)+uint64(a.n) {
			return unsafe.Add(a.p, int(p-base)), nil
		}
	}
	return nil, fmt.Errorf("emu: copy of %d bytes at %#x is outside every allocation", n, uint64(p))
}

func (d *Driver) HtoD(dst cuda.Ptr, src unsafe.Pointer, n int) error {
	h, err := d.host(dst, n)
	if err != nil {
		return err
	}
	d.Copies++
	C.memcpy(h, src, C.size_t(n))
	return nil
}

func (d *Driver) DtoH(dst unsafe.Pointer, src cuda.Ptr, n int) error {
	h, err := d.host(src, n)
	if err != nil {
		return err
	}
	d.Copies++
	C.memcpy(dst, h, C.size_t(n))
	return nil
}

type kernel struct {
	id   C.int
	name string
}

func (d *Driver) Kernel(name string) (cuda.Kernel, error) {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	id := C.emu_kernel(cs)
	if id < 0 {
		return nil, fmt.Errorf("emu: no kernel %q", name)
	}
	return kernel{id, name}, nil
}

func (d *Driver) Launch(k cuda.Kernel, grid, block [3]int, args []uint64) error {
	kk, ok := k.(kernel)
	if !ok {
		return errors.New("emu: not an emulator kernel")
	}
	d.Launches++
	cargs := (*C.uint64_t)(C.malloc(C.size_t(8 * max(len(args), 1))))
	defer C.free(unsafe.Pointer(cargs))
	copy(unsafe.Slice((*uint64)(unsafe.Pointer(cargs)), len(args)), args)
	var msg [256]C.char
	if C.emu_launch(kk.id, C.uint(grid[0]), C.uint(grid[1]), C.uint(grid[2]), C.uint(block[0]), C.uint(block[1]), C.uint(block[2]),
		cargs, C.int(len(args)), &msg[0], C.int(len(msg))) != 0 {
		return fmt.Errorf("emu: launch of %s: %s", kk.name, C.GoString(&msg[0]))
	}
	return nil
}

func (d *Driver) Sync() error { return nil }

// Allocated is the device memory in use, in bytes.
func (d *Driver) Allocated() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, a := range d.allocs {
		n += a.n
	}
	return n
}

var _ cuda.LibraryDriver = (*Driver)(nil)

// GemmLibrary returns the emulator's stand-in for cuBLAS: SgemmNT on the
// emulated memory, every operand's extent checked against its allocation,
// sums in float64 (a library's order of sums differs from the kernels').
func (d *Driver) GemmLibrary() (cuda.GemmLibrary, error) { return library{d}, nil }

type library struct{ d *Driver }

func (library) Name() string { return "emulated BLAS" }

func (l library) SgemmNT(M, N, K int, A cuda.Ptr, lda int, B cuda.Ptr, ldb int, C cuda.Ptr, ldc int) error {
	if M < 0 || N < 0 || K < 0 || lda < K || ldb < K || ldc < N {
		return fmt.Errorf("emu: SgemmNT(%d, %d, %d) with strides %d, %d, %d", M, N, K, lda, ldb, ldc)
	}
	if M == 0 || N == 0 {
		return nil
	}
	view := func(p cuda.Ptr, rows, ld, cols int) ([]float32, error) {
		n := (rows-1)*ld + cols
		h, err := l.d.host(p, 4*n)
		if err != nil {
			return nil, err
		}
		return unsafe.Slice((*float32)(h), n), nil
	}
	a, err := view(A, M, lda, K)
	if err != nil {
		return err
	}
	b, err := view(B, N, ldb, K)
	if err != nil {
		return err
	}
	c, err := view(C, M, ldc, N)
	if err != nil {
		return err
	}
	l.d.LibraryCalls++
	for r := 0; r < M; r++ {
		for j := 0; j < N; j++ {
			var s float64
			for k := 0; k < K; k++ {
				s += float64(a[r*lda+k]) * float64(b[j*ldb+k])
			}
			c[r*ldc+j] = float32(s)
		}
	}
	return nil
}

// float2bfloat16 returns the values of v rounded to bfloat16 by the
// emulator's __float2bfloat16_rn, as float32 (for the tests).
func float2bfloat16(v []float32) []float32 {
	out := make([]float32, len(v))
	if len(v) > 0 {
		C.emu_float2bfloat16_rn((*C.float)(unsafe.Pointer(&v[0])), (*C.float)(unsafe.Pointer(&out[0])), C.size_t(len(v)))
	}
	return out
}
