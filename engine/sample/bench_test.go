package sample

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"geca/engine"
)

// benchConfigs are GeCA-XS (32x32 latents) and a small pixel-space model the
// size of the default Fashion-MNIST model (28x28, C_in 1, D 64).
func benchConfigs(b *testing.B) map[string]engine.Config {
	xs, err := engine.Preset("GeCA-XS", 11)
	if err != nil {
		b.Fatal(err)
	}
	small := engine.Config{Name: "small", GridH: 28, GridW: 28, InChannels: 1, HiddenChannels: 16,
		EmbedDim: 64, Heads: 4, MLPDim: 128, NumClasses: 10, M: 8, UpdateRate: 0.5}
	return map[string]engine.Config{"GeCA-XS": xs, "small": small}
}

func benchModel(b *testing.B, cfg engine.Config) *engine.Model {
	m, err := engine.NewRandomModel(cfg, 1, 0.5)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func benchOptions(cfg engine.Config, steps string, n int) Options {
	y := make([]float32, cfg.NumClasses)
	y[1] = 1
	return Options{Steps: steps, GHG: true, CFG: 1.5, Labels: [][]float32{y}, N: n, M: 12}
}

// cpuTime is the process's user+system CPU time. On a shared, loaded machine
// wall time mostly measures waiting for a core; CPU time measures the work.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSample times whole samples at 50 steps, M = 12, CFG 1.5 (so 2N
// grids), and reports samples per minute. Run with -benchtime=1x: one
// GeCA-XS sample is 1200 whole-grid updates.
func BenchmarkSample(b *testing.B) {
	cfgs := benchConfigs(b)
	for _, c := range []struct {
		name string
		ns   []int
	}{{"GeCA-XS", []int{1}}, {"small", []int{1, 8}}} {
		name := c.name
		for _, n := range c.ns {
			b.Run(fmt.Sprintf("%s/steps=50/N=%d", name, n), func(b *testing.B) {
				m := benchModel(b, cfgs[name])
				b.ResetTimer()
				start, cpu0 := time.Now(), cpuTime()
				for i := 0; i < b.N; i++ {
					s, err := New(m, benchOptions(m.Cfg, "50", n))
					if err != nil {
						b.Fatal(err)
					}
					if err := s.RunToEnd(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
				el, cpu := time.Since(start), cpuTime()-cpu0
				b.ReportMetric(float64(b.N*n)/el.Minutes(), "samples/min")
				b.ReportMetric(float64(b.N*n)/cpu.Minutes(), "samples/cpu-min")
			})
		}
	}
}

// BenchmarkOverhead compares the sampler's own work per timestep with a whole
// timestep. The sampler's work is everything but the cell updates: preparing
// the timestep (C_in, seed, conditioning), the model output and CFG
// combination, the step noise and the DDPM step, plus drawing the M update
// masks; it is measured as a timestep with M = 0 plus M mask draws. The whole
// timestep has M = 12. Times are CPU times (see cpuTime). It reports
// overhead-% = sampler work / whole timestep,
// and frames-% = the extra cost of cell frames (state copy, x0 preview) for a
// viewer that asks for them.
func BenchmarkOverhead(b *testing.B) {
	cfgs := benchConfigs(b)
	for _, name := range []string{"GeCA-XS", "small"} {
		b.Run(name, func(b *testing.B) {
			m := benchModel(b, cfgs[name])
			cfg := m.Cfg
			const n, M = 1, 12
			ctx := context.Background()
			timesteps := func(opt Options, updates, count int, observe bool) time.Duration {
				s, err := New(m, opt)
				if err != nil {
					b.Fatal(err)
				}
				s.SetM(updates) // (Options.M = 0 would mean the model's M)
				if observe {
					s.SetObserver(func(*Frame) {}, true)
				}
				start := cpuTime()
				for k := 0; k < count; k++ {
					if s.Done() {
						b.Fatal("schedule too short")
					}
					if err := s.StepTimestep(ctx); err != nil {
						b.Fatal(err)
					}
				}
				return (cpuTime() - start) / time.Duration(count)
			}
			var full, fullObs, zero, masks time.Duration
			for i := 0; i < b.N; i++ {
				opt := benchOptions(cfg, "1000", n)
				full += timesteps(opt, M, 3, false)
				fullObs += timesteps(opt, M, 3, true)
				opt.SnapshotBytes = -1
				zero += timesteps(opt, 0, 1000, false)
				mask := make([]float32, 2*n*cfg.GridH*cfg.GridW)
				st := engine.NewStream(1, engine.StreamMask)
				start := cpuTime()
				for k := 0; k < 2000; k++ {
					engine.DrawMask(mask, 0.5, st)
				}
				masks += (cpuTime() - start) / 2000 * M
			}
			over := float64(zero+masks) / float64(full)
			b.ReportMetric(float64(full.Microseconds())/float64(b.N)/1000, "cpu-ms/timestep")
			b.ReportMetric(float64((zero+masks).Microseconds())/float64(b.N)/1000, "cpu-ms-sampler/timestep")
			b.ReportMetric(100*over, "overhead-%")
			b.ReportMetric(100*float64(fullObs-full)/float64(full), "frames-%")
		})
	}
}
