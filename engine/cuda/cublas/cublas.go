// Package cublas calls cuBLAS's single-precision matrix product, loaded at
// run time with dlopen: binaries never link a CUDA toolkit library, start on
// machines that have only the NVIDIA driver, and use cuBLAS where a CUDA
// toolkit (or a PyTorch install) brings one.
//
// The library runs on the CUDA runtime's view of the calling thread's
// current context, so Open and every call must happen with the GPU
// engine's context current (inside the driver's Do); the engine uses the
// device's primary context, which is the runtime's too.
package cublas

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>

typedef int (*create_fn)(void **);
typedef int (*destroy_fn)(void *);
typedef int (*set_stream_fn)(void *, void *);
typedef int (*set_math_fn)(void *, int);
typedef int (*get_version_fn)(void *, int *);
typedef int (*sgemm_fn)(void *, int, int, int, int, int, const float *, const float *, int, const float *, int,
                        const float *, float *, int);

static int geca_create(void *f, void **h) { return ((create_fn)f)(h); }
static int geca_destroy(void *f, void *h) { return ((destroy_fn)f)(h); }
static int geca_set_stream(void *f, void *h, void *s) { return ((set_stream_fn)f)(h, s); }
static int geca_set_math(void *f, void *h, int m) { return ((set_math_fn)f)(h, m); }
static int geca_get_version(void *f, void *h, int *v) { return ((get_version_fn)f)(h, v); }
static int geca_sgemm(void *f, void *h, int ta, int tb, int m, int n, int k, float alpha, unsigned long long a, int lda,
                      unsigned long long b, int ldb, float beta, unsigned long long c, int ldc) {
	return ((sgemm_fn)f)(h, ta, tb, m, n, k, &alpha, (const float *)a, lda, (const float *)b, ldb, &beta, (float *)c, ldc);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"
)

// Candidates are the library files Open tries, in order, when $GECA_CUBLAS
// names none: the sonames of CUDA 13, 12 and 11 as the dynamic loader finds
// them (LD_LIBRARY_PATH, ld.so.cache), then a toolkit's usual folder.
var Candidates = []string{
	"libcublas.so.13", "libcublas.so.12", "libcublas.so.11",
	"/usr/local/cuda/lib64/libcublas.so.13", "/usr/local/cuda/lib64/libcublas.so.12", "/usr/local/cuda/lib64/libcublas.so.11",
	"/usr/local/cuda/lib64/libcublas.so",
}

// Handle is a cuBLAS handle bound to one stream.
type Handle struct {
	lib     unsafe.Pointer
	h       unsafe.Pointer
	path    string
	version int
	sgemm   unsafe.Pointer
	destroy unsafe.Pointer
}

// Open loads cuBLAS (the file $GECA_CUBLAS_LIB names, else the first of
// Candidates that loads), makes a handle that queues its work on stream (a
// CUstream; nil is the default stream) and keeps FP32 products in FP32
// arithmetic (no TF32). The error says what was tried.
func Open(stream unsafe.Pointer) (*Handle, error) {
	paths := Candidates
	if p := os.Getenv("GECA_CUBLAS_LIB"); p != "" {
		paths = []string{p}
	}
	var tried []string
	for _, p := range paths {
		h, err := open(p, stream)
		if err == nil {
			return h, nil
		}
		tried = append(tried, err.Error())
	}
	return nil, fmt.Errorf("no usable cuBLAS: %s", strings.Join(tried, "; "))
}

func open(path string, stream unsafe.Pointer) (*Handle, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	lib := C.dlopen(cpath, C.RTLD_NOW|C.RTLD_LOCAL)
	if lib == nil {
		msg := C.GoString(C.dlerror())
		return nil, errors.New(msg)
	}
	sym := func(name string) unsafe.Pointer {
		cn := C.CString(name)
		defer C.free(unsafe.Pointer(cn))
		return C.dlsym(lib, cn)
	}
	h := &Handle{lib: lib, path: path}
	create, setStream, setMath, getVersion := sym("cublasCreate_v2"), sym("cublasSetStream_v2"), sym("cublasSetMathMode"), sym("cublasGetVersion_v2")
	h.sgemm, h.destroy = sym("cublasSgemm_v2"), sym("cublasDestroy_v2")
	if create == nil || setStream == nil || h.sgemm == nil || h.destroy == nil {
		C.dlclose(lib)
		return nil, fmt.Errorf("%s: not cuBLAS (no cublasCreate_v2, cublasSetStream_v2, cublasSgemm_v2 or cublasDestroy_v2)", path)
	}
	if st := C.geca_create(create, &h.h); st != 0 {
		C.dlclose(lib)
		return nil, fmt.Errorf("%s: cublasCreate: %s", path, status(st))
	}
	if st := C.geca_set_stream(setStream, h.h, stream); st != 0 {
		h.Close()
		return nil, fmt.Errorf("%s: cublasSetStream: %s", path, status(st))
	}
	if setMath != nil {
		// CUBLAS_DEFAULT_MATH: FP32 products stay FP32 (TF32 is a separate,
		// opt-in mode of the engine).
		if st := C.geca_set_math(setMath, h.h, 0); st != 0 {
			h.Close()
			return nil, fmt.Errorf("%s: cublasSetMathMode: %s", path, status(st))
		}
	}
	if getVersion != nil {
		var v C.int
		if C.geca_get_version(getVersion, h.h, &v) == 0 {
			h.version = int(v)
		}
	}
	return h, nil
}

// Name says which library this is, e.g. "cuBLAS 12.4.5 (libcublas.so.12)".
func (h *Handle) Name() string {
	v := h.version
	return fmt.Sprintf("cuBLAS %d.%d.%d (%s)", v/10000, v/100%100, v%100, filepath.Base(h.path))
}

// SgemmNT queues C = A·Bᵀ in row-major terms: A is M×K with row stride lda,
// B is N×K with row stride ldb (a PyTorch weight), C is M×N with row stride
// ldc; all are device addresses.
//
// cuBLAS is column-major: the row-major C is the column-major Cᵀ (N×M), and
// Cᵀ = B·Aᵀ, where the column-major view of the row-major B is Bᵀ (so it
// goes in transposed) and that of A is Aᵀ (so it goes in as it is).
func (h *Handle) SgemmNT(M, N, K int, a uint64, lda int, b uint64, ldb int, c uint64, ldc int) error {
	const opN, opT = 0, 1
	st := C.geca_sgemm(h.sgemm, h.h, opT, opN, C.int(N), C.int(M), C.int(K), 1,
		C.ulonglong(b), C.int(ldb), C.ulonglong(a), C.int(lda), 0, C.ulonglong(c), C.int(ldc))
	if st != 0 {
		return fmt.Errorf("cublasSgemm (%dx%dx%d): %s", M, N, K, status(st))
	}
	return nil
}

// Close releases the handle (the library stays loaded: unloading cuBLAS
// while the runtime holds its state is not safe).
func (h *Handle) Close() {
	if h.h != nil {
		C.geca_destroy(h.destroy, h.h)
		h.h = nil
	}
}

// status names a cublasStatus_t.
func status(st C.int) string {
	switch st {
	case 1:
		return "CUBLAS_STATUS_NOT_INITIALIZED (no usable GPU or CUDA runtime)"
	case 3:
		return "CUBLAS_STATUS_ALLOC_FAILED"
	case 7:
		return "CUBLAS_STATUS_INVALID_VALUE"
	case 8:
		return "CUBLAS_STATUS_ARCH_MISMATCH"
	case 11:
		return "CUBLAS_STATUS_MAPPING_ERROR"
	case 13:
		return "CUBLAS_STATUS_EXECUTION_FAILED"
	case 14:
		return "CUBLAS_STATUS_INTERNAL_ERROR"
	case 15:
		return "CUBLAS_STATUS_NOT_SUPPORTED"
	}
	return fmt.Sprintf("cuBLAS status %d", int(st))
}
