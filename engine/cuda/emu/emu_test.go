//go:build cgo

package emu

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"geca/engine"
	"geca/engine/cuda"
	"geca/engine/sample"
	"geca/internal/numcheck"
)

// The emulator compiles copies of kernels.cu and of the generated
// geca_arch.h, which must be current, as must geca_arch.h itself.
func TestKernelsCopyIsCurrent(t *testing.T) {
	for _, c := range []struct {
		path string
		want func() ([]byte, error)
	}{
		{"kernels_cu.h", func() ([]byte, error) { return os.ReadFile("../kernels.cu") }},
		{"geca_arch.h", func() ([]byte, error) { return []byte(cuda.ArchHeader()), nil }},
		{"../geca_arch.h", func() ([]byte, error) { return []byte(cuda.ArchHeader()), nil }},
	} {
		t.Run(c.path, func(t *testing.T) {
			want, err := c.want()
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(c.path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s is not current: run go generate ./engine/cuda", path.Join("engine/cuda/emu", c.path))
			}
		})
	}
}

// skipShort skips a test that emulates whole denoiser calls (seconds to
// tens of seconds on the emulator) under go test -short; CI runs it.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("emulates whole denoiser calls; run without -short")
	}
}

func upload(t *testing.T, d *Driver, v []float32) cuda.Ptr {
	t.Helper()
	p, err := d.Alloc(4 * max(len(v), 1))
	if err != nil {
		t.Fatal(err)
	}
	if len(v) > 0 {
		if err := d.HtoD(p, unsafe.Pointer(&v[0]), 4*len(v)); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func uploadInts(t *testing.T, d *Driver, v []int32) cuda.Ptr {
	t.Helper()
	p, err := d.Alloc(4 * max(len(v), 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.HtoD(p, unsafe.Pointer(&v[0]), 4*len(v)); err != nil {
		t.Fatal(err)
	}
	return p
}

func seq(n int, f func(i int) float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = f(i)
	}
	return v
}

// roundNearest rounds x to a format with the top 32-drop bits of binary32
// by comparing its distances to the two neighbours in that format (float64
// arithmetic, exact here); a tie goes to the even neighbour, or away from
// zero when away is set. Infinities and NaNs are returned as they are; past
// the largest finite value the upper neighbour is 2^128, i.e. infinity.
func roundNearest(x float32, drop uint, away bool) float32 {
	if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
		return x
	}
	ulp := uint32(1) << drop
	b := math.Float32bits(x)
	loBits := b &^ (ulp - 1)
	hiBits := loBits + ulp
	lo := float64(math.Float32frombits(loBits))
	hi := math.Copysign(math.Ldexp(1, 128), float64(x))
	if hiBits&0x7f800000 != 0x7f800000 {
		hi = float64(math.Float32frombits(hiBits))
	}
	dlo, dhi := math.Abs(float64(x)-lo), math.Abs(hi-float64(x))
	switch {
	case dlo < dhi:
		return math.Float32frombits(loBits)
	case dhi < dlo, away, loBits&ulp != 0:
		return math.Float32frombits(hiBits) // at the top: the infinity of x's sign
	}
	return math.Float32frombits(loBits)
}

// bf16 and tf32 are the roundings of the tensor-core kernels' operands:
// bfloat16 to nearest even (__float2bfloat16_rn), TF32 to nearest with ties
// away from zero (cvt.rna.tf32.f32).
func bf16(x float32) float32 { return roundNearest(x, 16, false) }
func tf32(x float32) float32 { return roundNearest(x, 13, true) }

// The emulator's __float2bfloat16_rn against roundNearest: every bfloat16
// value with low halves at and around the ties, zero and the maximum, and
// random bits; infinities kept, NaNs kept NaN, overflow to infinity.
func TestFloat2Bfloat16(t *testing.T) {
	var in []float32
	for hi := uint32(0); hi < 1<<16; hi++ {
		for _, lo := range []uint32{0, 1, 0x7fff, 0x8000, 0x8001, 0xffff} {
			in = append(in, math.Float32frombits(hi<<16|lo))
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 1<<18; i++ {
		in = append(in, math.Float32frombits(r.Uint32()))
	}
	got := float2bfloat16(in)
	for i, x := range in {
		g, w := got[i], bf16(x)
		if math.IsNaN(float64(x)) {
			if !math.IsNaN(float64(g)) {
				t.Fatalf("%#08x (NaN) rounds to %v", math.Float32bits(x), g)
			}
			continue
		}
		if math.Float32bits(g) != math.Float32bits(w) {
			t.Fatalf("%#08x (%g) rounds to %#08x (%g), want %#08x (%g)", math.Float32bits(x), x,
				math.Float32bits(g), g, math.Float32bits(w), w)
		}
	}
	// A few by hand: ties to even, and overflow.
	for ci, c := range []struct{ in, want uint32 }{
		{0x3f808000, 0x3f800000}, {0x3f818000, 0x3f820000}, {0x3f808001, 0x3f810000},
		{0x7f7f8000, 0x7f800000}, {0x7f7f7fff, 0x7f7f0000}, {0xff800000, 0xff800000}, {0x00008000, 0x00000000},
	} {
		t.Run(fmt.Sprint(ci), func(t *testing.T) {
			if g := math.Float32bits(float2bfloat16([]float32{math.Float32frombits(c.in)})[0]); g != c.want {
				t.Errorf("%#08x rounds to %#08x, want %#08x", c.in, g, c.want)
			}
		})
	}
}

// The matrix product kernels against a float64 reference: tile sizes,
// vector and scalar loads, K tails, gathered A rows, scattered C rows,
// bias and GELU, and the TF32 and BF16 tensor-core kernels (odd shapes:
// partial 64 x 64 tiles and K tails in every direction).
//
// Each result is compared with two float64 references: one on the rounded
// operands (bf16, tf32 below), which a tensor-core kernel must match to FP32
// accumulation rounding (so it rounds exactly as specified), and one on the
// operands as given, where its error is that of the rounding: with unit
// roundoff u (TF32 2^-11, bfloat16 2^-8) each product is off by at most
// (2u + u²) relative, so each sum by at most (2u + u²)·Σ|a||b|, plus the
// FP32 accumulation's K·2^-24·Σ|a||b| (GELU's slope is below 1.13).
// Measured, largest error over the largest value: FP32 7e-7, TF32 3.7e-3,
// BF16 2.2e-2 (the sums cancel: these errors are a few u of Σ|a||b|).
func TestGemmKernels(t *testing.T) {
	type tc struct{ M, N, K int }
	cases := []tc{{1, 1, 1}, {5, 7, 3}, {37, 70, 76}, {130, 20, 16}, {64, 64, 64}, {3, 200, 33}, {67, 65, 49}}
	worst := map[string]float64{}
	defer func() { t.Logf("largest max relative error: %v", worst) }()
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			prec := mode.opt.Precision
			for _, sms := range []int{1, 1 << 20} { // 128-wide tiles, 64-wide tiles
				if (prec != cuda.FP32 || mode.opt.Library) && sms == 1 {
					continue // one tiling for the tensor-core kernels; none for the library
				}
				d := New(sms)
				acc, err := cuda.New(d, mode.opt)
				if err != nil {
					t.Fatal(err)
				}
				calls := d.LibraryCalls
				for _, c := range cases {
					for _, variant := range []int{0, 1, 2} { // plain; gather+scatter+bias+GELU; odd strides
						lda, ldb, ldc := c.K, c.K, c.N
						if variant == 2 {
							lda, ldb, ldc = c.K+1, c.K+3, c.N+2
						}
						aRows := c.M + 3
						A := seq(aRows*lda, func(i int) float32 { return float32(math.Sin(float64(i)*0.7)) * 0.5 })
						B := seq(c.N*ldb, func(i int) float32 { return float32(math.Cos(float64(i)*1.3)) * 0.5 })
						bias := seq(c.N, func(i int) float32 { return float32(i%5) * 0.1 })
						aIdx := make([]int32, c.M)
						cIdx := make([]int32, c.M)
						for r := range aIdx {
							aIdx[r] = int32((r*7 + 2) % aRows)
							cIdx[r] = int32(c.M - 1 - r)
						}
						round := map[cuda.Precision]func(float32) float32{
							cuda.FP32: func(x float32) float32 { return x }, cuda.TF32: tf32, cuda.BF16: bf16}[prec]
						absSum := make([]float64, c.M*ldc) // Σ|a||b| per result
						ref := func(round func(float32) float32) []float32 {
							want := make([]float32, c.M*ldc)
							for r := 0; r < c.M; r++ {
								ra, rc := r, r
								if variant == 1 {
									ra, rc = int(aIdx[r]), int(cIdx[r])
								}
								for j := 0; j < c.N; j++ {
									var s, abs float64
									for k := 0; k < c.K; k++ {
										s += float64(round(A[ra*lda+k])) * float64(round(B[j*ldb+k]))
										abs += math.Abs(float64(A[ra*lda+k]) * float64(B[j*ldb+k]))
									}
									absSum[rc*ldc+j] = abs
									if variant == 1 {
										s += float64(bias[j])
										s = 0.5 * s * (1 + math.Erf(s/math.Sqrt2))
									}
									want[rc*ldc+j] = float32(s)
								}
							}
							return want
						}
						want, wantRounded := ref(func(x float32) float32 { return x }), ref(round)
						var pa, pb, pc, pBias, pai, pci cuda.Ptr
						err := d.Do(func() error {
							pa, pb = upload(t, d, A), upload(t, d, B)
							pc = upload(t, d, make([]float32, c.M*ldc))
							if variant == 1 {
								pBias, pai, pci = upload(t, d, bias), uploadInts(t, d, aIdx), uploadInts(t, d, cIdx)
							}
							if err := acc.Gemm(c.M, c.N, c.K, pa, lda, pai, pb, ldb, pc, ldc, pci, pBias, variant == 1); err != nil {
								return err
							}
							got := make([]float32, c.M*ldc)
							if err := d.DtoH(unsafe.Pointer(&got[0]), pc, 4*len(got)); err != nil {
								return err
							}
							for r := 0; r < c.M; r++ {
								for j := c.N; j < ldc; j++ {
									got[r*ldc+j], want[r*ldc+j], wantRounded[r*ldc+j] = 0, 0, 0 // padding
								}
							}
							if e := numcheck.MaxRelErr(got, wantRounded); e > 1e-6 {
								t.Errorf("%s, sms %d, %+v variant %d: max relative error %.3g against the product of the rounded operands",
									mode.name, sms, c, variant, e)
							}
							worst[mode.name] = max(worst[mode.name], numcheck.MaxRelErr(got, want))
							u := map[cuda.Precision]float64{cuda.FP32: 0, cuda.TF32: 0x1p-11, cuda.BF16: 0x1p-8}[prec]
							for i := range want {
								bound := 1.13*(2*u+u*u+float64(c.K)*0x1p-24)*absSum[i] + 0x1p-22*math.Abs(float64(want[i])) // and the epilogue's roundings
								if e := math.Abs(float64(got[i]) - float64(want[i])); e > bound {
									t.Errorf("%s, sms %d, %+v variant %d, element %d: %v, want %v: error %.3g over the bound %.3g",
										mode.name, sms, c, variant, i, got[i], want[i], e, bound)
									break
								}
							}
							for _, p := range []cuda.Ptr{pa, pb, pc, pBias, pai, pci} {
								if p != 0 {
									d.Free(p)
								}
							}
							return nil
						})
						if err != nil {
							t.Fatal(err)
						}
					}
				}
				if used := d.LibraryCalls > calls; used != mode.opt.Library {
					t.Errorf("%s: library used: %v", mode.name, used)
				}
			}
		})
	}
}

// modes are the ways the accelerator computes its matrix products.
var modes = []struct {
	name string
	opt  cuda.Options
}{
	{"fp32", cuda.Options{}},
	{"tf32", cuda.Options{Precision: cuda.TF32}},
	{"bf16", cuda.Options{Precision: cuda.BF16}},
	{"fp32 library", cuda.Options{Library: true}},
}

func tinyConfig() engine.Config {
	return engine.Config{Name: "tiny", GridH: 5, GridW: 7, InChannels: 3, HiddenChannels: 5, EmbedDim: 16, Heads: 2,
		MLPDim: 24, NumClasses: 3, M: 12, UpdateRate: 0.5}
}

// xsConfig is GeCA-XS on a small grid: the real widths (D 384, 6 heads of
// 64, C_h 32), so the kernels see GeCA's shapes.
func xsConfig() engine.Config {
	c, _ := engine.Preset("GeCA-XS", 5)
	c.GridH, c.GridW = 6, 5
	return c
}

func randomState(cfg engine.Config, b int, seed uint64) *engine.State {
	st := engine.NewState(b, cfg.GridH, cfg.GridW, cfg.CellDim())
	engine.NewStream(seed, "test-state").Normal(st.Data)
	return st
}

func twinModels(t *testing.T, cfg engine.Config, acc engine.Accelerator) (cpu, dev *engine.Model) {
	t.Helper()
	cpu, err := engine.NewRandomModel(cfg, 7, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	dev, _ = engine.NewRandomModel(cfg, 7, 0.5)
	dev.SetAccelerator(acc)
	return cpu, dev
}

func condition(t *testing.T, m *engine.Model, ts ...int) *engine.Cond {
	t.Helper()
	ys := make([][]float32, len(ts))
	for b := range ys {
		ys[b] = make([]float32, m.Cfg.NumClasses)
		ys[b][b%m.Cfg.NumClasses] = 1
	}
	c, err := m.Condition(ts, ys)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// One denoiser call of 12 updates on the emulated device equals the CPU
// engine's to rounding (the parity the GPU test checks, at emulator sizes).
//
// Measured, as norm-wise relative error of the grid (and max error / max
// value): FP32 1.0e-7 (1.5e-7) tiny, 2.2e-7 (2.0e-7) GeCA-XS; TF32 3.3e-4
// (5.2e-4) tiny, 3.0e-4 (2.7e-4) XS; BF16 2.7e-3 (3.9e-3) tiny, 2.5e-3
// (2.1e-3) XS. BF16's operands carry 8x TF32's rounding error (unit
// roundoff 2^-8 against 2^-11) and so does the call. The bounds leave a
// factor of 3 to 5 over the tensor-core errors.
func TestCallMatchesCPU(t *testing.T) {
	skipShort(t)
	type bound struct{ rel, max float64 }
	tols := map[cuda.Precision]bound{cuda.FP32: {1e-5, 1e-4}, cuda.TF32: {1e-3, 2e-3}, cuda.BF16: {1e-2, 2e-2}}
	for _, cfg := range []engine.Config{tinyConfig(), xsConfig()} {
		t.Run(cfg.Name, func(t *testing.T) {
			for _, mode := range modes {
				prec := mode.opt.Precision
				d := New(1 << 20)
				acc, err := cuda.New(d, mode.opt)
				if err != nil {
					t.Fatal(err)
				}
				cpu, dev := twinModels(t, cfg, acc)
				st0 := randomState(cfg, 2, 1)
				want, got := st0.Clone(), st0.Clone()
				if err := cpu.NewUpdater(2).Call(want, condition(t, cpu, 10, 900), 12, 0.5, engine.NewStream(3, engine.StreamMask), nil); err != nil {
					t.Fatal(err)
				}
				copies := d.Copies
				if err := dev.NewUpdater(2).Call(got, condition(t, dev, 10, 900), 12, 0.5, engine.NewStream(3, engine.StreamMask), nil); err != nil {
					t.Fatal(err)
				}
				e, me := numcheck.RelErr(got.Data, want.Data), numcheck.MaxRelErr(got.Data, want.Data)
				t.Logf("%s, %s: relative error %.3g (max %.3g) after 12 updates; %d copies", cfg.Name, mode.name, e, me, d.Copies-copies)
				if tol := tols[prec]; e > tol.rel || me > tol.max {
					t.Errorf("%s, %s: relative error %.3g, max %.3g; want at most %g and %g", cfg.Name, mode.name, e, me, tol.rel, tol.max)
				}
				if mode.opt.Library && d.LibraryCalls == 0 {
					t.Errorf("%s, %s: the library was not used", cfg.Name, mode.name)
				}
				if numcheck.RelErr(got.Data, st0.Data) < 1e-3 {
					t.Errorf("%s: the grid barely changed", cfg.Name)
				}
			}
		})
	}
}

// Update by update with everything the viewer observes, a dense updater, an
// edit of the grid and a change of conditioning between updates.
func TestUpdatesWithObserveEditsDense(t *testing.T) {
	skipShort(t)
	for _, lib := range []bool{false, true} {
		t.Run(fmt.Sprintf("library=%v", lib), func(t *testing.T) { testUpdatesWithObserveEditsDense(t, cuda.Options{Library: lib}) })
	}
}

func testUpdatesWithObserveEditsDense(t *testing.T, opt cuda.Options) {
	cfg := tinyConfig()
	d := New(1 << 20)
	acc, err := cuda.New(d, opt)
	if err != nil {
		t.Fatal(err)
	}
	cpu, dev := twinModels(t, cfg, acc)
	for _, dense := range []bool{false, true} {
		st0 := randomState(cfg, 2, 5)
		want, got := st0.Clone(), st0.Clone()
		uc, ud := cpu.NewUpdater(2), dev.NewUpdater(2)
		uc.Dense, ud.Dense = dense, dense
		masks := engine.NewStream(9, engine.StreamMask)
		rows := 2 * cfg.Cells()
		obsC := &engine.Observe{Magnitude: make([]float32, rows), Attn: make([]float32, cfg.Heads*9), AttnB: 1, AttnI: 0, AttnJ: 6}
		obsD := &engine.Observe{Magnitude: make([]float32, rows), Attn: make([]float32, cfg.Heads*9), AttnB: 1, AttnI: 0, AttnJ: 6}
		c1, c2 := condition(t, cpu, 10, 900), condition(t, cpu, 500, 3)
		for i := 0; i < 8; i++ {
			mask := make([]float32, rows)
			if err := engine.DrawMask(mask, 0.5, masks); err != nil {
				t.Fatal(err)
			}
			c := c1
			if i >= 5 {
				c = c2
			}
			if i == 3 {
				// Damage: the same edit on both grids.
				for cell := 10; cell < 20; cell++ {
					for ch := 0; ch < cfg.CellDim(); ch++ {
						want.Data[cell*cfg.CellDim()+ch] = 0.125
						got.Data[cell*cfg.CellDim()+ch] = 0.125
					}
				}
			}
			if err := uc.Update(want, c, mask, obsC); err != nil {
				t.Fatal(err)
			}
			if err := ud.Update(got, c, mask, obsD); err != nil {
				t.Fatal(err)
			}
			if e := numcheck.MaxRelErr(got.Data, want.Data); e > 1e-5 {
				t.Fatalf("dense %v, update %d: grid max relative error %.3g", dense, i, e)
			}
			if e := numcheck.MaxRelErr(obsD.Magnitude, obsC.Magnitude); e > 1e-5 {
				t.Fatalf("dense %v, update %d: |update| max relative error %.3g", dense, i, e)
			}
			if e := numcheck.MaxRelErr(obsD.Attn, obsC.Attn); e > 1e-5 {
				t.Fatalf("dense %v, update %d: attention weights max relative error %.3g\n%v\n%v", dense, i, e, obsD.Attn, obsC.Attn)
			}
			for cell, m := range mask {
				if m == 0 && obsD.Magnitude[cell] != 0 {
					t.Fatalf("update %d: |update| %v at a masked cell", i, obsD.Magnitude[cell])
				}
			}
		}
		// Unmasked update (rate 1) and the Call path after single updates.
		if err := uc.Update(want, c1, nil, nil); err != nil {
			t.Fatal(err)
		}
		if err := ud.Update(got, c1, nil, nil); err != nil {
			t.Fatal(err)
		}
		if err := uc.Call(want, c1, 3, 0.5, engine.NewStream(4, engine.StreamMask), nil); err != nil {
			t.Fatal(err)
		}
		if err := ud.Call(got, c1, 3, 0.5, engine.NewStream(4, engine.StreamMask), nil); err != nil {
			t.Fatal(err)
		}
		if e := numcheck.MaxRelErr(got.Data, want.Data); e > 1e-5 {
			t.Fatalf("dense %v: after the call, max relative error %.3g", dense, e)
		}
	}
}

// Bad values are refused as on the CPU, and the device recovers.
func TestNonFinite(t *testing.T) {
	cfg := tinyConfig()
	acc, err := cuda.New(New(4), cuda.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cpu, dev := twinModels(t, cfg, acc)
	st := randomState(cfg, 1, 2)
	st.Cell(0, 2, 3)[4] = float32(math.Inf(1))
	errC := cpu.NewUpdater(1).Update(st.Clone(), condition(t, cpu, 5), nil, nil)
	u := dev.NewUpdater(1)
	errD := u.Update(st.Clone(), condition(t, dev, 5), nil, nil)
	if errC == nil || errD == nil || errC.Error() != errD.Error() {
		t.Fatalf("non-finite state: CPU %v, device %v", errC, errD)
	}
	c := condition(t, dev, 5)
	c.C[3] = float32(math.NaN())
	if err := u.Update(randomState(cfg, 1, 2), c, nil, nil); err == nil || !strings.Contains(err.Error(), "conditioning") {
		t.Fatalf("NaN conditioning: %v", err)
	}
	if err := u.Update(randomState(cfg, 1, 2), condition(t, dev, 5), nil, nil); err != nil {
		t.Fatalf("after refusing bad input: %v", err)
	}
}

// A sampling run with an accelerated model follows the CPU run.
func TestSamplerOnDevice(t *testing.T) {
	skipShort(t)
	cfg := tinyConfig()
	d := New(1 << 20)
	acc, err := cuda.New(d, cuda.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cpu, dev := twinModels(t, cfg, acc)
	opt := sample.Options{Steps: "4", M: 4, GHG: true, CFG: 1.5, Labels: [][]float32{{0, 1, 0}}, Seed: 3}
	run := func(m *engine.Model) []float32 {
		s, err := sample.New(m, opt)
		if err != nil {
			t.Fatal(err)
		}
		s.SetMeasure(true)
		if err := s.WatchCell(0, 2, 2); err != nil {
			t.Fatal(err)
		}
		if err := s.RunToEnd(context.Background()); err != nil {
			t.Fatal(err)
		}
		x, err := s.Result()
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	want, got := run(cpu), run(dev)
	if e := numcheck.RelErr(got, want); e > 1e-4 {
		t.Fatalf("sample on the device: relative error %.3g", e)
	}
}

// Dropped updaters give their device memory back.
func TestMemoryReleased(t *testing.T) {
	skipShort(t)
	cfg := tinyConfig()
	d := New(4)
	acc, err := cuda.New(d, cuda.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, dev := twinModels(t, cfg, acc)
	c := condition(t, dev, 5, 6, 7)
	st := randomState(cfg, 3, 1)
	if err := dev.NewUpdater(3).Update(st, c, nil, nil); err != nil {
		t.Fatal(err)
	}
	base := d.Allocated()
	for i := 0; i < 5; i++ {
		if err := dev.NewUpdater(3).Update(st, c, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		runtime.GC()
	}
	// The next device call frees what the collector released.
	if err := dev.NewUpdater(3).Update(st, c, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := d.Allocated(); got > base+base/2 {
		t.Fatalf("device memory %d bytes after dropping 5 updaters, %d with one", got, base)
	}
}
