//go:build cuda

// Package gpu is the CUDA driver of package cuda: the NVIDIA driver API
// through gorgonia.org/cu, one context, one non-blocking stream, the
// embedded PTX JIT-compiled at Open. A binary that imports it needs
// libcuda.so.1 (the NVIDIA driver) and no CUDA toolkit library, and ends at
// start-up when the driver cannot start (package probe says why): build it
// only into the GPU worker (-tags cuda).
package gpu

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	_ "geca/engine/cuda/probe" // before cu: says why the driver does not start

	"geca/engine/cuda"
	"geca/engine/cuda/cublas"

	"gorgonia.org/cu"
)

// Driver is a cuda.Driver on one NVIDIA GPU.
type Driver struct {
	mu     sync.Mutex
	dev    cu.Device
	ctx    cu.CUContext
	mod    cu.Module
	stream cu.Stream
	name   string
	sms    int
}

// Open starts GPU ordinal: a context, a stream, and the kernels compiled
// for it.
func Open(ordinal int) (*Driver, error) {
	n, err := cu.NumDevices()
	if err != nil {
		return nil, fmt.Errorf("cuda: counting devices: %w", err)
	}
	if ordinal < 0 || ordinal >= n {
		return nil, fmt.Errorf("cuda: no GPU %d (%d found)", ordinal, n)
	}
	dev, err := cu.GetDevice(ordinal)
	if err != nil {
		return nil, fmt.Errorf("cuda: GPU %d: %w", ordinal, err)
	}
	d := &Driver{dev: dev}
	name, err := dev.Name()
	if err != nil {
		return nil, fmt.Errorf("cuda: GPU %d: %w", ordinal, err)
	}
	major, _ := dev.Attribute(cu.ComputeCapabilityMajor)
	minor, _ := dev.Attribute(cu.ComputeCapabilityMinor)
	if major < 8 {
		return nil, fmt.Errorf("cuda: %s has compute capability %d.%d; the kernels need 8.0 (Ampere) or newer", name, major, minor)
	}
	d.sms, _ = dev.Attribute(cu.MultiprocessorCount)
	mem, _ := dev.TotalMem()
	d.name = fmt.Sprintf("CUDA: %s (sm_%d%d, %d SMs, %.0f GiB, driver %d.%d)", name, major, minor, d.sms,
		float64(mem)/(1<<30), cu.Version()/1000, cu.Version()%1000/10)

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if d.ctx, err = dev.RetainPrimaryCtx(); err != nil {
		return nil, fmt.Errorf("cuda: context on %s: %w", name, err)
	}
	if err := cu.SetCurrentContext(d.ctx); err != nil {
		return nil, fmt.Errorf("cuda: context on %s: %w", name, err)
	}
	if d.mod, err = cu.LoadData(cuda.PTX); err != nil {
		return nil, fmt.Errorf("cuda: compiling the kernels for %s: %w", name, err)
	}
	if d.stream, err = cu.MakeStream(cu.NonBlocking); err != nil {
		return nil, fmt.Errorf("cuda: stream on %s: %w", name, err)
	}
	return d, nil
}

func (d *Driver) Name() string { return d.name }
func (d *Driver) SMs() int     { return d.sms }

// Do runs f on an OS thread with the context current, one f at a time.
func (d *Driver) Do(f func() error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cu.SetCurrentContext(d.ctx); err != nil {
		return fmt.Errorf("cuda: %w", err)
	}
	return f()
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("cuda: %s: %w", what, err)
}

func (d *Driver) Alloc(bytes int) (cuda.Ptr, error) {
	p, err := cu.MemAlloc(int64(bytes))
	if err != nil {
		return 0, wrap(fmt.Sprintf("allocating %d bytes", bytes), err)
	}
	return cuda.Ptr(p), nil
}

func (d *Driver) Free(p cuda.Ptr) error {
	if p == 0 {
		return nil
	}
	return wrap("free", cu.MemFree(cu.DevicePtr(p)))
}

func (d *Driver) HtoD(dst cuda.Ptr, src unsafe.Pointer, bytes int) error {
	// From pageable memory the copy is staged before the call returns, so
	// src may be reused at once.
	return wrap("copy to the GPU", cu.MemcpyHtoDAsync(cu.DevicePtr(dst), src, int64(bytes), d.stream))
}

func (d *Driver) DtoH(dst unsafe.Pointer, src cuda.Ptr, bytes int) error {
	if err := cu.MemcpyDtoHAsync(dst, cu.DevicePtr(src), int64(bytes), d.stream); err != nil {
		return wrap("copy from the GPU", err)
	}
	return wrap("waiting for the GPU", d.stream.Synchronize())
}

func (d *Driver) Kernel(name string) (cuda.Kernel, error) {
	f, err := d.mod.Function(name)
	if err != nil {
		return nil, wrap("kernel "+name, err)
	}
	return kernel{f, name}, nil
}

type kernel struct {
	f    cu.Function
	name string
}

func (d *Driver) Launch(k cuda.Kernel, grid, block [3]int, args []uint64) error {
	kk, ok := k.(kernel)
	if !ok {
		return errors.New("cuda: not a kernel of this driver")
	}
	params := make([]unsafe.Pointer, len(args))
	for i := range args {
		params[i] = unsafe.Pointer(&args[i])
	}
	return wrap("launching "+kk.name, kk.f.Launch(grid[0], grid[1], grid[2], block[0], block[1], block[2], 0, d.stream, params))
}

func (d *Driver) Sync() error { return wrap("waiting for the GPU", d.stream.Synchronize()) }

var _ cuda.LibraryDriver = (*Driver)(nil)

// GemmLibrary loads cuBLAS (package cublas: found at run time, never
// linked) with a handle on the driver's stream. Call it inside Do.
func (d *Driver) GemmLibrary() (cuda.GemmLibrary, error) {
	h, err := cublas.Open(unsafe.Pointer(d.stream.C()))
	if err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	return library{h}, nil
}

type library struct{ h *cublas.Handle }

func (l library) Name() string { return l.h.Name() }

func (l library) SgemmNT(M, N, K int, A cuda.Ptr, lda int, B cuda.Ptr, ldb int, C cuda.Ptr, ldc int) error {
	return l.h.SgemmNT(M, N, K, uint64(A), lda, uint64(B), ldb, uint64(C), ldc)
}

// OpenAccelerator opens GPU 0 and checks, with one small matrix product
// against the CPU, that its kernels run and compute right.
func OpenAccelerator(opt cuda.Options) (*cuda.Accelerator, error) {
	d, err := Open(0)
	if err != nil {
		return nil, err
	}
	a, err := cuda.New(d, opt)
	if err != nil {
		return nil, err
	}
	if err := selfTest(a, d); err != nil {
		return nil, fmt.Errorf("%s: self-test failed: %w", d.name, err)
	}
	return a, nil
}

// selfTest multiplies a 37×70 by a 70×45 matrix (odd sizes: tails and
// bounds) on the GPU and compares with the CPU.
func selfTest(a *cuda.Accelerator, d *Driver) error {
	const M, N, K = 37, 45, 70
	A := make([]float32, M*K)
	B := make([]float32, N*K)
	for i := range A {
		A[i] = float32(i%13) - 6
	}
	for i := range B {
		B[i] = float32(i%7) - 3
	}
	want := make([]float32, M*N)
	for r := 0; r < M; r++ {
		for c := 0; c < N; c++ {
			var s float32
			for k := 0; k < K; k++ {
				s += A[r*K+k] * B[c*K+k]
			}
			want[r*N+c] = s
		}
	}
	got := make([]float32, M*N)
	return d.Do(func() error {
		pa, err := d.Alloc(4 * len(A))
		if err != nil {
			return err
		}
		defer d.Free(pa)
		pb, err := d.Alloc(4 * len(B))
		if err != nil {
			return err
		}
		defer d.Free(pb)
		pc, err := d.Alloc(4 * len(got))
		if err != nil {
			return err
		}
		defer d.Free(pc)
		if err := d.HtoD(pa, unsafe.Pointer(&A[0]), 4*len(A)); err != nil {
			return err
		}
		if err := d.HtoD(pb, unsafe.Pointer(&B[0]), 4*len(B)); err != nil {
			return err
		}
		if err := a.Gemm(M, N, K, pa, K, 0, pb, K, pc, N, 0, 0, false); err != nil {
			return err
		}
		if err := d.DtoH(unsafe.Pointer(&got[0]), pc, 4*len(got)); err != nil {
			return err
		}
		for i := range want {
			if got[i] != want[i] { // small integers: exact in FP32, TF32 and BF16
				return fmt.Errorf("product element %d is %v, want %v", i, got[i], want[i])
			}
		}
		return nil
	})
}
