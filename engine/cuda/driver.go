// Package cuda runs the GeCA cell update on an NVIDIA GPU. Its kernels are
// CUDA C (kernels.cu), compiled to PTX by `go generate` (kernels.ptx, which
// is committed and embedded), so building needs no CUDA toolkit; the driver
// JIT-compiles the PTX for the GPU it runs on.
//
// The package itself is plain Go: Accelerator (an engine.Accelerator) drives
// a Driver, the handful of device operations it needs (memory, copies,
// kernel launches on one stream). Two drivers exist: the CUDA driver API
// through gorgonia.org/cu in package gpu (build tag cuda; its binaries need
// an NVIDIA driver to start), and a CPU emulator in package emu that runs the
// same kernels.cu on fibers, for tests on machines without a GPU.
//
// An update is one pass of kernel launches on one stream with the weights,
// the grid and the caches of embeddings, keys and values resident on the
// device: the host uploads the lists of rows to compute (the cells whose
// mask is 1, and the cells whose caches are stale), and downloads only the
// new channel values of the updated cells. A denoiser call (Updater.Call)
// uploads all its row lists at once and copies the grid back once, with no
// host round trip in between.
package cuda

//go:generate go run gen.go
//go:generate cp kernels.cu emu/kernels_cu.h
//go:generate sh -c "$DOLLAR{NVCC:-nvcc} -ptx -arch=compute_80 -O3 -o kernels.ptx kernels.cu"

import (
	_ "embed"
	"unsafe"
)

// PTX is kernels.cu compiled for compute capability 8.0 and later (Ampere,
// Hopper and newer JIT-compile it).
//
//go:embed kernels.ptx
var PTX string

// Ptr is a device address.
type Ptr uint64

// Kernel is a loaded kernel function (what it is depends on the driver).
type Kernel any

// Driver is what the accelerator needs from a device. All calls except Do
// happen inside Do. Copies and launches are queued on one stream in order;
// DtoH waits for everything queued before it.
type Driver interface {
	// Name describes the device.
	Name() string
	// SMs is the number of multiprocessors (to size the work of a launch).
	SMs() int
	// Do runs f with the device bound to the calling goroutine, one f at a
	// time.
	Do(f func() error) error
	Alloc(bytes int) (Ptr, error)
	Free(p Ptr) error
	// HtoD copies host memory to the device; src may be reused once it
	// returns.
	HtoD(dst Ptr, src unsafe.Pointer, bytes int) error
	// DtoH waits for the queued work, then copies device memory to the host.
	DtoH(dst unsafe.Pointer, src Ptr, bytes int) error
	Kernel(name string) (Kernel, error)
	// Launch queues a kernel; args are its parameters, each in 64 bits
	// (pointers, int32 and float32 bits in the low half).
	Launch(k Kernel, grid, block [3]int, args []uint64) error
	// Sync waits for the queued work.
	Sync() error
}

// GemmLibrary is a vendor library's FP32 matrix product (cuBLAS), queued
// on the driver's stream.
type GemmLibrary interface {
	// Name names the library and its version.
	Name() string
	// SgemmNT queues C = A·Bᵀ, all row-major FP32: A is M×K, B is N×K
	// (a PyTorch weight), C is M×N, with row strides lda, ldb and ldc.
	SgemmNT(M, N, K int, A Ptr, lda int, B Ptr, ldb int, C Ptr, ldc int) error
}

// LibraryDriver is a Driver that can offer a GemmLibrary; it is asked
// inside Do, and says why when it has none.
type LibraryDriver interface {
	Driver
	GemmLibrary() (GemmLibrary, error)
}

func f32p(s []float32) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(s)) }
func i32p(s []int32) unsafe.Pointer   { return unsafe.Pointer(unsafe.SliceData(s)) }
