//go:build cuda

package gpu

// GPU tests and benchmarks. They need an NVIDIA GPU: without one, package
// probe skips them all before anything else runs. Build once, run anywhere:
//
//	go test -tags cuda -c -o gpu.test ./engine/cuda/gpu
//	./gpu.test -test.run Parity -test.v
//	./gpu.test -test.run '^$' -test.bench . -test.benchtime 1x
//
// engine/cuda/devicecheck.sh runs them and prints one table.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"

	"geca/engine"
	"geca/engine/ckpt"
	"geca/engine/compute"
	"geca/engine/cuda"
	"geca/engine/sample"
	"geca/internal/numcheck"
)

var (
	openOnce   sync.Once
	accels     map[string]*cuda.Accelerator // by mode: fp32, tf32, bf16, cublas
	openErr    error
	cublasErr  error // why there is no cublas accelerator
	deviceName string
)

// modes are the ways the GPU engine computes its matrix products: its own
// kernels in each precision, and cuBLAS (FP32) where it is found.
var modes = []struct {
	name string
	opt  cuda.Options
}{
	{"fp32", cuda.Options{}}, {"tf32", cuda.Options{Precision: cuda.TF32}}, {"bf16", cuda.Options{Precision: cuda.BF16}},
	{"cublas", cuda.Options{Library: true}},
}

// accelerator returns the accelerator of a mode (modes) on GPU 0,
// which it opens once, with one accelerator per mode. Without cuBLAS the
// cublas mode skips the test or benchmark.
func accelerator(tb testing.TB, mode string) *cuda.Accelerator {
	tb.Helper()
	openOnce.Do(func() {
		d, err := Open(0)
		if err != nil {
			openErr = err
			return
		}
		deviceName = d.Name()
		accels = map[string]*cuda.Accelerator{}
		for _, m := range modes {
			a, err := cuda.New(d, m.opt)
			if err != nil && m.opt.Library {
				cublasErr = err
				continue
			}
			if err != nil {
				openErr = err
				return
			}
			accels[m.name] = a
		}
	})
	if openErr != nil {
		tb.Fatal(openErr)
	}
	if accels[mode] == nil {
		tb.Skipf("no %s engine: %v", mode, cublasErr)
	}
	return accels[mode]
}

// geCAS is GeCA-S with 10 classes (the class count only sizes the label
// embedding).
func geCAS() engine.Config {
	c, _ := engine.Preset("GeCA-S", 10)
	return c
}

// models returns a random-weight model and its twin on acc (the same
// weights; std 0.5 as engine.NewRandomModel suggests).
func models(tb testing.TB, cfg engine.Config, acc engine.Accelerator) (cpu, dev *engine.Model) {
	tb.Helper()
	var err error
	if cpu, err = engine.NewRandomModel(cfg, 1, 0.5); err != nil {
		tb.Fatal(err)
	}
	if acc == nil {
		return cpu, nil
	}
	dev, _ = engine.NewRandomModel(cfg, 1, 0.5)
	dev.SetAccelerator(acc)
	return cpu, dev
}

func randomState(cfg engine.Config, b int, seed uint64) *engine.State {
	st := engine.NewState(b, cfg.GridH, cfg.GridW, cfg.CellDim())
	engine.NewStream(seed, "test-state").Normal(st.Data)
	return st
}

func condition(tb testing.TB, m *engine.Model, ts ...int) *engine.Cond {
	tb.Helper()
	ys := make([][]float32, len(ts))
	for b := range ys {
		ys[b] = make([]float32, m.Cfg.NumClasses)
		if b%2 == 0 { // CFG pairs: conditional, then the null label
			ys[b][(b/2)%m.Cfg.NumClasses] = 1
		}
	}
	c, err := m.Condition(ts, ys)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// compare returns the norm-wise relative error and the largest error
// relative to the largest value.
func compare(got, want []float32) (rel, maxRel float64) {
	return numcheck.RelErr(got, want), numcheck.MaxRelErr(got, want)
}

// TestParityCall: one denoiser call (12 updates, update rate 0.5, the same
// masks) on a GeCA-S batch of 2 grids, GPU against the CPU engine, in each
// precision. The emulator measures 2e-7, 3e-4 and 3e-3 (FP32, TF32, BF16)
// on smaller models (emu.TestCallMatchesCPU); the tensor-core bounds are
// loose, as the hardware's accumulation order and rounding are its own.
func TestParityCall(t *testing.T) {
	cfg := geCAS()
	cpu, _ := models(t, cfg, accelerator(t, "fp32"))
	st0 := randomState(cfg, 2, 1)
	want := st0.Clone()
	if err := cpu.NewUpdater(2).Call(want, condition(t, cpu, 500, 500), 12, 0.5, engine.NewStream(3, engine.StreamMask), nil); err != nil {
		t.Fatal(err)
	}
	for _, v := range []struct {
		name string
		tol  float64
	}{{"fp32", 1e-4}, {"tf32", 3e-2}, {"bf16", 5e-2}, {"cublas", 1e-4}} {
		t.Run(v.name, func(t *testing.T) {
			if v.name == "cublas" && accels["cublas"] == nil {
				t.Logf("PARITY cublas: not run (%v)", cublasErr)
				return
			}
			_, m := models(t, cfg, accelerator(t, v.name))
			got := st0.Clone()
			if err := m.NewUpdater(2).Call(got, condition(t, m, 500, 500), 12, 0.5, engine.NewStream(3, engine.StreamMask), nil); err != nil {
				t.Fatal(err)
			}
			rel, mx := compare(got.Data, want.Data)
			t.Logf("PARITY %s %s: relative error %.2e, max error / max value %.2e after a 12-update call (2 grids of 32x32)", v.name, deviceName, rel, mx)
			if rel > v.tol || mx > v.tol {
				t.Errorf("%s: relative error %.3g, max %.3g; want at most %g", v.name, rel, mx, v.tol)
			}
		})
	}
}

// TestParityObserve: update by update, with the |update| map and the
// attention weights the viewer shows, and a dense updater.
func TestParityObserve(t *testing.T) {
	acc := accelerator(t, "fp32")
	cfg := geCAS()
	cpu, dev := models(t, cfg, acc)
	for _, dense := range []bool{false, true} {
		t.Run(fmt.Sprint(dense), func(t *testing.T) {
			st0 := randomState(cfg, 2, 2)
			want, got := st0.Clone(), st0.Clone()
			uc, ud := cpu.NewUpdater(2), dev.NewUpdater(2)
			uc.Dense, ud.Dense = dense, dense
			rows := 2 * cfg.Cells()
			oc := &engine.Observe{Magnitude: make([]float32, rows), Attn: make([]float32, cfg.Heads*9), AttnB: 1, AttnI: 0, AttnJ: 31}
			od := &engine.Observe{Magnitude: make([]float32, rows), Attn: make([]float32, cfg.Heads*9), AttnB: 1, AttnI: 0, AttnJ: 31}
			masks := engine.NewStream(4, engine.StreamMask)
			c := condition(t, cpu, 999, 999)
			for i := 0; i < 4; i++ {
				mask := make([]float32, rows)
				engine.DrawMask(mask, 0.5, masks)
				if err := uc.Update(want, c, mask, oc); err != nil {
					t.Fatal(err)
				}
				if err := ud.Update(got, c, mask, od); err != nil {
					t.Fatal(err)
				}
				for _, x := range []struct {
					what string
					a, b []float32
				}{{"grid", got.Data, want.Data}, {"|update|", od.Magnitude, oc.Magnitude}, {"attention", od.Attn, oc.Attn}} {
					if rel, mx := compare(x.a, x.b); rel > 1e-4 || mx > 1e-4 {
						t.Errorf("dense %v, update %d, %s: relative error %.3g, max %.3g", dense, i, x.what, rel, mx)
					}
				}
			}
		})
	}
}

// TestParitySample: a short CFG sampling run on the GPU follows the CPU
// run (the differences of rounding grow through the steps a little).
func TestParitySample(t *testing.T) {
	acc := accelerator(t, "fp32")
	cfg := geCAS()
	cpu, dev := models(t, cfg, acc)
	opt := sample.Options{Steps: "10", GHG: true, CFG: 1.5, Labels: [][]float32{oneHot(cfg, 3)}, N: 1, Seed: 5}
	run := func(m *engine.Model) []float32 {
		x, err := sample.Run(context.Background(), m, opt)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	want, got := run(cpu), run(dev)
	rel, mx := compare(got, want)
	t.Logf("PARITY sample %s: 10-step CFG sample, relative error %.2e (max %.2e)", deviceName, rel, mx)
	if rel > 1e-3 {
		t.Errorf("sample: relative error %.3g", rel)
	}
}

// TestCPUEngine names the CPU engine the CPU figures come from.
func TestCPUEngine(t *testing.T) {
	t.Logf("CPUENGINE %s, %d threads", compute.BLASName, runtime.GOMAXPROCS(0))
}

func oneHot(cfg engine.Config, k int) []float32 {
	y := make([]float32, cfg.NumClasses)
	y[k%cfg.NumClasses] = 1
	return y
}

// TestWriteCheckpoint writes the random GeCA-S model as a .safetensors
// checkpoint to $GECA_WRITE_CKPT (for the end-to-end run of geca-cuda in
// devicecheck.sh); without the variable it does nothing.
func TestWriteCheckpoint(t *testing.T) {
	path := os.Getenv("GECA_WRITE_CKPT")
	if path == "" {
		t.Skip("GECA_WRITE_CKPT not set")
	}
	m, _ := models(t, geCAS(), nil)
	js, _ := json.Marshal(m.Cfg)
	if err := ckpt.SaveSafetensors(path, m.Tensors(), m.Names(), map[string]string{ckpt.MetaConfig: string(js)}); err != nil {
		t.Fatal(err)
	}
}

// ---- benchmarks -------------------------------------------------------------------
//
// Names: Benchmark<What>/b<batch>/<engine>, engine cpu, gpu (FP32), tf32,
// bf16 or cublas (FP32 products by cuBLAS).
// Batch b is b samples under CFG: 2b grids of 32x32.

type engineCase struct {
	name string
	acc  func(testing.TB) engine.Accelerator
}

func engines() []engineCase {
	return []engineCase{
		{"cpu", func(testing.TB) engine.Accelerator { return nil }},
		{"gpu", func(tb testing.TB) engine.Accelerator { return accelerator(tb, "fp32") }},
		{"tf32", func(tb testing.TB) engine.Accelerator { return accelerator(tb, "tf32") }},
		{"bf16", func(tb testing.TB) engine.Accelerator { return accelerator(tb, "bf16") }},
		{"cublas", func(tb testing.TB) engine.Accelerator { return accelerator(tb, "cublas") }},
	}
}

func benchModel(b *testing.B, acc engine.Accelerator) *engine.Model {
	cpu, dev := models(b, geCAS(), acc)
	if dev != nil {
		return dev
	}
	return cpu
}

// BenchmarkUpdate: one cell update at update rate 0.5 with warm caches, as
// inside a sampling timestep (the grid comes back to the host each time).
func BenchmarkUpdate(b *testing.B) {
	for _, batch := range []int{1, 8} {
		for _, e := range engines() {
			b.Run(fmt.Sprintf("b%d/%s", batch, e.name), func(b *testing.B) {
				m := benchModel(b, e.acc(b))
				nb := 2 * batch
				st := randomState(m.Cfg, nb, 1)
				ts := make([]int, nb)
				c := condition(b, m, ts...)
				u := m.NewUpdater(nb)
				mask := make([]float32, nb*m.Cfg.Cells())
				masks := engine.NewStream(1, engine.StreamMask)
				engine.DrawMask(mask, 0.5, masks)
				if err := u.Update(st, c, mask, nil); err != nil { // caches, weights
					b.Fatal(err)
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					engine.DrawMask(mask, 0.5, masks)
					if err := u.Update(st, c, mask, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkCall: one denoiser call of 12 updates, each with a new timestep
// (new conditioning and input channels: every cache recomputed at its
// first update), as the sampler makes them.
func BenchmarkCall(b *testing.B) {
	for _, batch := range []int{1, 8} {
		for _, e := range engines() {
			b.Run(fmt.Sprintf("b%d/%s", batch, e.name), func(b *testing.B) {
				m := benchModel(b, e.acc(b))
				nb := 2 * batch
				st := randomState(m.Cfg, nb, 1)
				conds := [2]*engine.Cond{condition(b, m, make([]int, nb)...), condition(b, m, func() []int {
					t := make([]int, nb)
					for i := range t {
						t[i] = 999
					}
					return t
				}()...)}
				u := m.NewUpdater(nb)
				masks := engine.NewStream(1, engine.StreamMask)
				if err := u.Call(st, conds[1], 1, 0.5, masks, nil); err != nil {
					b.Fatal(err)
				}
				in := m.Cfg.InChannels
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					for cell := 0; cell < nb*m.Cfg.Cells(); cell++ {
						st.Data[cell*m.Cfg.CellDim()+i%in] += 1e-3 // a new x_t
					}
					if err := u.Call(st, conds[i%2], 12, 0.5, masks, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkSample: a whole 250-step CFG sample (guidance 1.5, GHG) with the
// official settings; GPU only (the CPU takes minutes: devicecheck.sh
// estimates it from BenchmarkCall).
func BenchmarkSample(b *testing.B) {
	for _, batch := range []int{1, 8} {
		for _, e := range engines()[1:] {
			b.Run(fmt.Sprintf("b%d/%s", batch, e.name), func(b *testing.B) {
				m := benchModel(b, e.acc(b))
				labels := make([][]float32, batch)
				for i := range labels {
					labels[i] = oneHot(m.Cfg, i)
				}
				opt := sample.Options{Steps: "250", GHG: true, CFG: 1.5, Labels: labels, Seed: 1, SnapshotBytes: -1}
				for i := 0; i < b.N; i++ {
					s, err := sample.New(m, opt)
					if err != nil {
						b.Fatal(err)
					}
					if err := s.RunToEnd(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func TestMain(m *testing.M) {
	runtime.GOMAXPROCS(runtime.NumCPU())
	os.Exit(m.Run())
}
