package cuda

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"geca/engine"
)

// Precision is the arithmetic of the matrix products; the other kernels
// (LayerNorm, attention, the update) compute the same way in every mode. The
// errors quoted are norm-wise relative errors of the grid after a 12-update
// denoiser call against the CPU engine, measured in the emulator (emu
// tests).
type Precision int

const (
	// FP32: CUDA cores, FP32 throughout: the CPU engine's results to
	// rounding (2e-7).
	FP32 Precision = iota
	// TF32: tensor cores, operands rounded to TF32 (10-bit mantissa), FP32
	// accumulation (3e-4).
	TF32
	// BF16: tensor cores, operands rounded to bfloat16 (7-bit mantissa),
	// FP32 accumulation (3e-3).
	BF16
)

// precisionNames are the names String gives and ParsePrecision takes.
var precisionNames = []string{"fp32", "tf32", "bf16"}

func (p Precision) String() string {
	if p >= 0 && int(p) < len(precisionNames) {
		return precisionNames[p]
	}
	return fmt.Sprintf("Precision(%d)", int(p))
}

// ParsePrecision returns the precision named s (fp32, tf32 or bf16).
func ParsePrecision(s string) (Precision, error) {
	for i, n := range precisionNames {
		if s == n {
			return Precision(i), nil
		}
	}
	return 0, fmt.Errorf("precision %q: want fp32, tf32 or bf16", s)
}

// Options configure an Accelerator.
type Options struct {
	// Precision of the matrix products; the zero value is FP32.
	Precision Precision
	// Library computes the FP32 matrix products with the driver's vendor
	// library (cuBLAS, LibraryDriver) instead of the kernels of
	// kernels.cu: rows are gathered before and the bias, GELU and row
	// scatter applied after, by two small kernels. FP32 only.
	Library bool
}

// Accelerator runs the updates of models on a device (engine.Accelerator).
// Weights go to the device on the first update of a model; the scratch
// buffers are shared by all its updaters, which the accelerator runs one at
// a time.
type Accelerator struct {
	drv Driver
	opt Options
	k   kernels

	models map[*engine.Model]*devModel
	sc     scratch

	lib        GemmLibrary // with Options.Library
	libA, libC buf         // its gathered operand and its result before the epilogue

	freeMu  sync.Mutex
	pending []Ptr // freed by the garbage collector's cleanups, released in the next Do
}

type kernels struct {
	gemm128v, gemm128s, gemm64v, gemm64s, tf32, bf16 Kernel
	embed, resid, attn, apply, silu                  Kernel
	gather, biasAct                                  Kernel
}

// New makes an accelerator on drv and checks that its kernels load.
func New(drv Driver, opt Options) (*Accelerator, error) {
	if opt.Precision < FP32 || opt.Precision > BF16 {
		return nil, fmt.Errorf("cuda: unknown precision %v", opt.Precision)
	}
	if opt.Library && opt.Precision != FP32 {
		return nil, fmt.Errorf("cuda: the matrix library computes in FP32, not %v", opt.Precision)
	}
	ld, hasLib := drv.(LibraryDriver)
	if opt.Library && !hasLib {
		return nil, fmt.Errorf("cuda: %s offers no matrix library", drv.Name())
	}
	a := &Accelerator{drv: drv, opt: opt, models: map[*engine.Model]*devModel{}}
	err := drv.Do(func() error {
		for _, k := range []struct {
			dst  *Kernel
			name string
		}{
			{&a.k.gemm128v, "gemm128v"}, {&a.k.gemm128s, "gemm128s"}, {&a.k.gemm64v, "gemm64v"}, {&a.k.gemm64s, "gemm64s"},
			{&a.k.tf32, "gemm_tf32"}, {&a.k.bf16, "gemm_bf16"}, {&a.k.embed, "embed_ln"}, {&a.k.resid, "resid_ln"}, {&a.k.attn, "attn"},
			{&a.k.apply, "apply_update"}, {&a.k.silu, "silu"}, {&a.k.gather, "gather_rows"}, {&a.k.biasAct, "bias_act"},
		} {
			var err error
			if *k.dst, err = drv.Kernel(k.name); err != nil {
				return fmt.Errorf("kernel %s: %w", k.name, err)
			}
		}
		if opt.Library {
			var err error
			if a.lib, err = ld.GemmLibrary(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Name describes the device and the precision of the matrix products.
func (a *Accelerator) Name() string {
	switch a.opt.Precision {
	case TF32:
		return a.drv.Name() + ", TF32 tensor cores"
	case BF16:
		return a.drv.Name() + ", BF16 tensor cores"
	}
	if a.lib != nil {
		return a.drv.Name() + ", FP32, " + a.lib.Name()
	}
	return a.drv.Name() + ", FP32"
}

// Precision is the precision of the accelerator's matrix products.
func (a *Accelerator) Precision() Precision { return a.opt.Precision }

// Driver returns the accelerator's driver.
func (a *Accelerator) Driver() Driver { return a.drv }

// buf is a device buffer of n float32 (or int32) values.
type buf struct {
	p Ptr
	n int
}

func (a *Accelerator) alloc(n int) (buf, error) {
	if n <= 0 {
		n = 1
	}
	p, err := a.drv.Alloc(4 * n)
	if err != nil {
		return buf{}, fmt.Errorf("device memory for %d values: %w", n, err)
	}
	return buf{p, n}, nil
}

// at is the address of value i.
func (b buf) at(i int) Ptr { return b.p + Ptr(4*i) }

// release frees buffers once the garbage collector drops their owner (it
// runs on another goroutine: the frees wait for the next Do).
func (a *Accelerator) release(ps []Ptr) {
	a.freeMu.Lock()
	a.pending = append(a.pending, ps...)
	a.freeMu.Unlock()
}

// reap frees what release queued (inside Do).
func (a *Accelerator) reap() {
	a.freeMu.Lock()
	ps := a.pending
	a.pending = nil
	a.freeMu.Unlock()
	for _, p := range ps {
		_ = a.drv.Free(p)
	}
}

func (a *Accelerator) upload(b buf, v []float32) error {
	if len(v) == 0 {
		return nil
	}
	if len(v) > b.n {
		return fmt.Errorf("upload of %d values into a buffer of %d", len(v), b.n)
	}
	return a.drv.HtoD(b.p, f32p(v), 4*len(v))
}

func (a *Accelerator) uploadInts(b buf, v []int32) error {
	if len(v) == 0 {
		return nil
	}
	if len(v) > b.n {
		return fmt.Errorf("upload of %d values into a buffer of %d", len(v), b.n)
	}
	return a.drv.HtoD(b.p, i32p(v), 4*len(v))
}

func (a *Accelerator) download(v []float32, b buf) error {
	if len(v) == 0 {
		return nil
	}
	if len(v) > b.n {
		return fmt.Errorf("download of %d values from a buffer of %d", len(v), b.n)
	}
	return a.drv.DtoH(f32p(v), b.p, 4*len(v))
}

// devModel is a model's weights on the device: a buffer for every tensor
// of the state dict that the cell update uses (engine.Module.InUpdate; the
// conditioning is computed on the host), found by the tensor's place in the
// module tree, and the positional code.
type devModel struct {
	params []buf // by engine.ParamSpec.Index; zero for the conditioning's tensors
	pe     buf
}

// of returns the device buffer of a tensor of the model.
func (w *devModel) of(p *engine.Param[float32]) buf { return w.params[p.Index] }

// weights returns m's weights on the device, uploading them the first time.
func (a *Accelerator) weights(m *engine.Model) (*devModel, error) {
	if w, ok := a.models[m]; ok {
		return w, nil
	}
	w := &devModel{params: make([]buf, len(m.List))}
	var ptrs []Ptr
	put := func(dst *buf, v []float32) error {
		b, err := a.alloc(len(v))
		if err != nil {
			for _, p := range ptrs {
				_ = a.drv.Free(p)
			}
			return err
		}
		ptrs = append(ptrs, b.p)
		*dst = b
		return a.upload(b, v)
	}
	for _, p := range m.List {
		if !p.Module.InUpdate() {
			continue
		}
		if err := put(&w.params[p.Index], p.W); err != nil {
			return nil, err
		}
	}
	if err := put(&w.pe, m.PE); err != nil {
		return nil, err
	}
	a.models[m] = w
	// The weights stay while the model lives.
	runtime.AddCleanup(m, func(ps []Ptr) { a.release(ps) }, ptrs)
	return w, nil
}

// scratch holds the per-row intermediates of an update, shared by the
// updaters (one runs at a time), grown to the largest row count seen.
type scratch struct {
	rows, d, mlp, ud     int
	g, ag, q, o, t, h, f buf // rows×D
	hid                  buf // rows×MLP
	u                    buf // rows×update_dim
	obsQ, obsO, obsP     buf
}

func (a *Accelerator) ensureScratch(rows, d, mlp, ud, heads int) error {
	s := &a.sc
	if rows <= s.rows && d == s.d && mlp == s.mlp && ud == s.ud && s.obsP.n >= heads*9 {
		return nil
	}
	if d == s.d && mlp == s.mlp && ud == s.ud {
		rows = max(rows, s.rows)
	}
	old := []buf{s.g, s.ag, s.q, s.o, s.t, s.h, s.f, s.hid, s.u, s.obsQ, s.obsO, s.obsP}
	for _, b := range old {
		if b.p != 0 {
			_ = a.drv.Free(b.p)
		}
	}
	*s = scratch{}
	ns := scratch{rows: rows, d: d, mlp: mlp, ud: ud}
	for _, x := range []struct {
		dst *buf
		n   int
	}{
		{&ns.g, rows * d}, {&ns.ag, rows * d}, {&ns.q, rows * d}, {&ns.o, rows * d}, {&ns.t, rows * d}, {&ns.h, rows * d},
		{&ns.f, rows * d}, {&ns.hid, rows * mlp}, {&ns.u, rows * ud}, {&ns.obsQ, d}, {&ns.obsO, d}, {&ns.obsP, heads * 9},
	} {
		b, err := a.alloc(x.n)
		if err != nil {
			return err
		}
		*x.dst = b
	}
	*s = ns
	return nil
}

// ---- launches ------------------------------------------------------------------

func iarg(v int) uint64     { return uint64(uint32(int32(v))) }
func farg(v float32) uint64 { return uint64(math.Float32bits(v)) }
func cdiv(a, b int) int     { return (a + b - 1) / b }

// Gemm queues C[r] = epi(A[ra]·Bᵀ + bias) for r < M (see kernels.cu): B is
// N×K (a PyTorch weight), rows of A are gathered by the int32 row indices
// at aIdx (0: none) and rows of C scattered by cIdx (0: none); bias may be
// 0; gelu applies the exact GELU. Call it inside the driver's Do.
func (a *Accelerator) Gemm(M, N, K int, A Ptr, lda int, aIdx Ptr, B Ptr, ldb int, C Ptr, ldc int, cIdx Ptr, bias Ptr, gelu bool) error {
	return a.gemm(M, N, K, A, lda, aIdx, B, ldb, C, ldc, cIdx, bias, gelu)
}

func (a *Accelerator) gemm(M, N, K int, A Ptr, lda int, aIdx Ptr, B Ptr, ldb int, C Ptr, ldc int, cIdx Ptr, bias Ptr, gelu bool) error {
	if M <= 0 || N <= 0 {
		return nil
	}
	epi := 0
	if gelu {
		epi = 1
	}
	if cdiv(M, 64) > 65535 {
		return fmt.Errorf("matrix product of %d rows: more than the grid of one launch allows", M)
	}
	if a.lib != nil {
		return a.libGemm(M, N, K, A, lda, aIdx, B, ldb, C, ldc, cIdx, bias, epi)
	}
	args := []uint64{iarg(M), iarg(N), iarg(K), uint64(A), iarg(lda), uint64(aIdx), uint64(B), iarg(ldb), uint64(C),
		iarg(ldc), uint64(cIdx), uint64(bias), iarg(epi)}
	switch a.opt.Precision {
	case TF32:
		return a.drv.Launch(a.k.tf32, [3]int{cdiv(N, 64), cdiv(M, 64), 1}, [3]int{128, 1, 1}, args)
	case BF16:
		return a.drv.Launch(a.k.bf16, [3]int{cdiv(N, 64), cdiv(M, 64), 1}, [3]int{128, 1, 1}, args)
	}
	vec := K%4 == 0 && lda%4 == 0 && ldb%4 == 0 && A%16 == 0 && B%16 == 0
	// Large tiles when they alone fill the device, else small ones for
	// more blocks.
	if cdiv(M, 128)*cdiv(N, 128) >= a.drv.SMs() {
		k := a.k.gemm128s
		if vec {
			k = a.k.gemm128v
		}
		return a.drv.Launch(k, [3]int{cdiv(N, 128), cdiv(M, 128), 1}, [3]int{256, 1, 1}, args)
	}
	k := a.k.gemm64s
	if vec {
		k = a.k.gemm64v
	}
	return a.drv.Launch(k, [3]int{cdiv(N, 64), cdiv(M, 64), 1}, [3]int{256, 1, 1}, args)
}

// libGemm is gemm through the matrix library: gather the rows of A when
// aIdx lists them, multiply, then add the bias, apply the epilogue and
// scatter the rows when any of those is asked for (else the library writes
// C itself).
func (a *Accelerator) libGemm(M, N, K int, A Ptr, lda int, aIdx Ptr, B Ptr, ldb int, C Ptr, ldc int, cIdx Ptr, bias Ptr, epi int) error {
	const threads = 256
	if aIdx != 0 {
		if err := a.growLib(&a.libA, M*K); err != nil {
			return err
		}
		if err := a.drv.Launch(a.k.gather, [3]int{cdiv(M*K, threads), 1, 1}, [3]int{threads, 1, 1}, []uint64{
			iarg(M), iarg(K), uint64(A), iarg(lda), uint64(aIdx), uint64(a.libA.p)}); err != nil {
			return err
		}
		A, lda = a.libA.p, K
	}
	if cIdx == 0 && bias == 0 && epi == 0 {
		return a.lib.SgemmNT(M, N, K, A, lda, B, ldb, C, ldc)
	}
	if err := a.growLib(&a.libC, M*N); err != nil {
		return err
	}
	if err := a.lib.SgemmNT(M, N, K, A, lda, B, ldb, a.libC.p, N); err != nil {
		return err
	}
	return a.drv.Launch(a.k.biasAct, [3]int{cdiv(M*N, threads), 1, 1}, [3]int{threads, 1, 1}, []uint64{
		iarg(M), iarg(N), uint64(a.libC.p), iarg(N), uint64(bias), iarg(epi), uint64(C), iarg(ldc), uint64(cIdx)})
}

// growLib makes b hold at least n values. The queued work may still read
// the old buffer, so it is waited for before the buffer goes; sizes settle
// after the first denoiser call.
func (a *Accelerator) growLib(b *buf, n int) error {
	if n <= b.n {
		return nil
	}
	if b.p != 0 {
		if err := a.drv.Sync(); err != nil {
			return err
		}
		if err := a.drv.Free(b.p); err != nil {
			return err
		}
		*b = buf{}
	}
	nb, err := a.alloc(n + n/4)
	if err != nil {
		return err
	}
	*b = nb
	return nil
}
