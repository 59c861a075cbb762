package engine

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"geca/engine/compute"
)

func benchSetup(b testing.TB, preset string, batch int) (*Model, *Updater, *State, *Cond) {
	cfg, err := Preset(preset, 11)
	if err != nil {
		b.Fatal(err)
	}
	m, err := NewRandomModel(cfg, 1, 0.5)
	if err != nil {
		b.Fatal(err)
	}
	ts := make([]int, batch)
	ys := make([][]float32, batch)
	for i := range ts {
		ts[i], ys[i] = 100*i+5, make([]float32, cfg.NumClasses)
	}
	c, err := m.Condition(ts, ys)
	if err != nil {
		b.Fatal(err)
	}
	st := randomState(cfg, batch, 3)
	u := m.NewUpdater(batch)
	return m, u, st, c
}

// BenchmarkUpdate is one cell update of the whole 32x32 grid at update rate
// 0.5 in steady state (the caches hold the previous update's cells).
func BenchmarkUpdate(b *testing.B) {
	for _, preset := range []string{"GeCA-S", "GeCA-XS"} {
		for _, batch := range []int{1, 2} {
			for _, dense := range []bool{false, true} {
				name := fmt.Sprintf("%s/B=%d", preset, batch)
				if dense {
					name += "/dense"
				}
				b.Run(name, func(b *testing.B) {
					_, u, st, c := benchSetup(b, preset, batch)
					u.Dense = dense
					mask := make([]float32, batch*st.H*st.W)
					ms := NewStream(1, StreamMask)
					prof := &Profile{}
					u.Profile = prof
					for i := 0; i < 2; i++ {
						DrawMask(mask, 0.5, ms)
						if err := u.Update(st, c, mask, nil); err != nil {
							b.Fatal(err)
						}
					}
					*prof = Profile{}
					cpu0 := cpuTime()
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						b.StopTimer()
						DrawMask(mask, 0.5, ms)
						b.StartTimer()
						if err := u.Update(st, c, mask, nil); err != nil {
							b.Fatal(err)
						}
					}
					b.StopTimer()
					prof.report(b, cpu0)
				})
			}
		}
	}
}

// BenchmarkCall is one denoiser call (M = 12 updates at rate 0.5) from a
// freshly seeded grid with a new x_t, as at each sampling step.
func BenchmarkCall(b *testing.B) {
	for _, preset := range []string{"GeCA-XS", "GeCA-S"} {
		for _, batch := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/B=%d", preset, batch), func(b *testing.B) {
				m, u, st, c := benchSetup(b, preset, batch)
				ms := NewStream(1, StreamMask)
				x := make([]float32, batch*m.Cfg.InChannels*m.Cfg.Cells())
				prof := &Profile{}
				u.Profile = prof
				cpu0 := cpuTime()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					NewStream(uint64(i), "x").Normal(x)
					SetInput(st, m.Cfg, x)
					Seed(m.Cfg, st, NewStream(uint64(i), StreamSeed))
					if err := u.Call(st, c, 12, 0.5, ms, nil); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				prof.report(b, cpu0)
			})
		}
	}
}

// cpuTime is the user+system CPU time of the process so far: on a shared
// machine it is steadier than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (p *Profile) report(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(cpuTime()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
	tot := p.Gemm + p.Elementwise + p.Attention
	if tot <= 0 {
		return
	}
	b.ReportMetric(100*float64(p.Elementwise+p.Attention)/float64(tot), "%elem+attn")
	b.ReportMetric(100*float64(p.Attention)/float64(tot), "%attn")
	b.ReportMetric(float64(p.Rows)/float64(p.Updates), "rows/update")
	_ = compute.BLASName
}

func TestUpdateAllocs(t *testing.T) {
	cfg := tinyConfig()
	cfg.GridH, cfg.GridW = 16, 16
	m, _ := NewRandomModel(cfg, 1, 0.5)
	zero := make([]float32, cfg.NumClasses)
	c, _ := m.Condition([]int{3, 9}, [][]float32{zero, zero})
	st := randomState(cfg, 2, 1)
	u := m.NewUpdater(2)
	ms := NewStream(1, StreamMask)
	obs := &Observe{Magnitude: make([]float32, 2*cfg.Cells()), Attn: make([]float32, cfg.Heads*9), AttnI: 3}
	run := func() {
		if err := u.Call(st, c, 2, 0.5, ms, nil); err != nil {
			t.Fatal(err)
		}
		if err := u.Update(st, c, nil, obs); err != nil {
			t.Fatal(err)
		}
	}
	run()
	if n := testing.AllocsPerRun(20, run); n != 0 {
		t.Errorf("%v allocations per call (BLAS: %s)", n, compute.BLASName)
	}
}
