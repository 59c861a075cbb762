//go:build cgo

package cublas

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"
)

// stub is a stand-in libcublas: the reference BLAS semantics of
// cublasSgemm_v2 (column-major, op T or N, alpha and beta by pointer) on
// host memory, so that the binding's symbols, argument order and the
// row-major to column-major mapping are tested without a GPU.
const stub = `
#include <stddef.h>
static int handle_storage;
int cublasCreate_v2(void **h) { *h = &handle_storage; return 0; }
int cublasDestroy_v2(void *h) { return h == &handle_storage ? 0 : 7; }
int cublasSetStream_v2(void *h, void *s) { return h == &handle_storage && s && *(int *)s == 0x1234 ? 0 : 7; }
int cublasSetMathMode(void *h, int m) { return m == 0 ? 0 : 7; }
int cublasGetVersion_v2(void *h, int *v) { *v = 120405; return 0; }
int cublasSgemm_v2(void *h, int ta, int tb, int m, int n, int k, const float *alpha, const float *A, int lda,
                   const float *B, int ldb, const float *beta, float *C, int ldc) {
	if (h != &handle_storage || m < 0 || n < 0 || k < 0) return 7;
	for (int j = 0; j < n; j++)
		for (int i = 0; i < m; i++) {
			double s = 0;
			for (int p = 0; p < k; p++) {
				float a = ta ? A[p + (size_t)i * lda] : A[i + (size_t)p * lda];
				float b = tb ? B[j + (size_t)p * ldb] : B[p + (size_t)j * ldb];
				s += (double)a * b;
			}
			C[i + (size_t)j * ldc] = (float)(*alpha * s + (*beta == 0 ? 0 : *beta * C[i + (size_t)j * ldc]));
		}
	return 0;
}
`

func buildStub(t *testing.T, src string) string {
	t.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "stub.c"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	lib := filepath.Join(dir, "libcublas.so.12")
	if out, err := exec.Command(cc, "-shared", "-fPIC", "-O1", "-o", lib, filepath.Join(dir, "stub.c")).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return lib
}

func TestSgemmNT(t *testing.T) {
	t.Setenv("GECA_CUBLAS_LIB", buildStub(t, stub))
	stream := int32(0x1234) // what the stub checks it was given
	h, err := Open(unsafe.Pointer(&stream))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if got := h.Name(); got != "cuBLAS 12.4.5 (libcublas.so.12)" {
		t.Errorf("Name %q", got)
	}
	// Row-major A (M×K, stride lda), B (N×K, stride ldb) into C (M×N,
	// stride ldc), strides wider than the rows, as the engine's scratch
	// buffers are.
	const M, N, K, lda, ldb, ldc = 5, 7, 9, 11, 10, 8
	r := rand.New(rand.NewPCG(1, 2))
	A := make([]float32, M*lda)
	B := make([]float32, N*ldb)
	for i := range A {
		A[i] = float32(r.IntN(9) - 4)
	}
	for i := range B {
		B[i] = float32(r.IntN(9) - 4)
	}
	Cm := make([]float32, M*ldc)
	for i := range Cm {
		Cm[i] = 99 // beta is 0: old values must not leak in
	}
	ptr := func(s []float32) uint64 { return uint64(uintptr(unsafe.Pointer(&s[0]))) }
	if err := h.SgemmNT(M, N, K, ptr(A), lda, ptr(B), ldb, ptr(Cm), ldc); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < M; i++ {
		for j := 0; j < N; j++ {
			var want float32
			for k := 0; k < K; k++ {
				want += A[i*lda+k] * B[j*ldb+k]
			}
			if Cm[i*ldc+j] != want {
				t.Fatalf("C[%d][%d] = %v, want %v", i, j, Cm[i*ldc+j], want)
			}
		}
		if Cm[i*ldc+N] != 99 {
			t.Fatalf("row %d: written past column N", i)
		}
	}
	if err := h.SgemmNT(-1, N, K, ptr(A), lda, ptr(B), ldb, ptr(Cm), ldc); err == nil || !strings.Contains(err.Error(), "CUBLAS_STATUS_INVALID_VALUE") {
		t.Errorf("bad size: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Setenv("GECA_CUBLAS_LIB", filepath.Join(t.TempDir(), "libcublas.so.99"))
	if _, err := Open(nil); err == nil || !strings.Contains(err.Error(), "no usable cuBLAS") || !strings.Contains(err.Error(), "libcublas.so.99") {
		t.Errorf("missing library: %v", err)
	}
	t.Setenv("GECA_CUBLAS_LIB", buildStub(t, "int not_cublas(void) { return 0; }"))
	if _, err := Open(nil); err == nil || !strings.Contains(err.Error(), "not cuBLAS") {
		t.Errorf("another library: %v", err)
	}
	t.Setenv("GECA_CUBLAS_LIB", buildStub(t, `
int cublasCreate_v2(void **h) { return 1; }
int cublasDestroy_v2(void *h) { return 0; }
int cublasSetStream_v2(void *h, void *s) { return 0; }
int cublasSgemm_v2(void) { return 0; }`))
	if _, err := Open(nil); err == nil || !strings.Contains(err.Error(), "cublasCreate: CUBLAS_STATUS_NOT_INITIALIZED") {
		t.Errorf("no GPU: %v", err)
	}
}
