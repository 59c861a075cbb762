package engine

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"geca/internal/membudget"
)

// allocated returns the bytes allocated while f ran.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// A config that a small file can declare, but whose model cannot fit, is
// refused by Validate (which every model is built after) quickly and
// without allocating it: such a grid once made geca inspect allocate 34 GB
// for the positional code.
func TestValidateRefusesModelsOverTheLimit(t *testing.T) {
	defer membudget.Set(0)
	membudget.Set(1 << 30)
	c := Config{Name: "big", GridH: 4096, GridW: 4096, InChannels: 4, HiddenChannels: 8, EmbedDim: 512, Heads: 8,
		MLPDim: 64, NumClasses: 10, M: 12, UpdateRate: 0.5}
	var err error
	start := time.Now()
	alloc := allocated(func() { err = c.Validate() })
	var me *membudget.Error
	if !errors.As(err, &me) || !strings.Contains(err.Error(), "4096x4096") || me.Need < 32<<30 {
		t.Fatalf("Validate = %v, want a memory error of at least 32 GB naming the grid", err)
	}
	if alloc > 1<<20 || time.Since(start) > 5*time.Second {
		t.Errorf("refusing took %d bytes and %v", alloc, time.Since(start))
	}
	if _, err := NewRandomModel(c, 1, 0.5); !errors.As(err, &me) {
		t.Errorf("NewRandomModel = %v", err)
	}
	c.GridH, c.GridW = 32, 32
	if err := c.Validate(); err != nil {
		t.Errorf("a 32x32 grid: %v", err)
	}
}

// The estimates cover what the engine really allocates for a run: a state
// and an updater of a small model, measured, stay under UpdaterBytes +
// StateBytes, which is not wildly more.
func TestEstimatesCoverAllocations(t *testing.T) {
	cfg := Config{Name: "t", GridH: 12, GridW: 10, InChannels: 3, HiddenChannels: 7, EmbedDim: 24, Heads: 2,
		MLPDim: 40, NumClasses: 5, M: 3, UpdateRate: 0.5}
	m, err := NewRandomModel(cfg, 1, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []int{1, 3, 8} {
		t.Run(fmt.Sprint(b), func(t *testing.T) {
			var st *State
			var u *Updater
			got := allocated(func() {
				st = NewState(b, cfg.GridH, cfg.GridW, cfg.CellDim())
				u = m.NewUpdater(b)
			})
			want := StateBytes(b, cfg.GridH, cfg.GridW, cfg.CellDim()) + UpdaterBytes(cfg, b)
			if int64(got) > want || want > 2*int64(got)+updaterBuffers*8<<10 {
				t.Errorf("batch %d: allocated %d bytes, estimated %d", b, got, want)
			}
			runtime.KeepAlive(st)
			runtime.KeepAlive(u)
		})
	}
	if RunBytes(cfg, 4, true) <= RunBytes(cfg, 4, false) {
		t.Error("guidance doubles the grids but not the estimate")
	}
}

// Runs, calls and states over the limit or the caps are refused with a
// message naming the sizes; counts that overflow saturate instead of
// wrapping into small ones.
func TestCheckRunCallState(t *testing.T) {
	defer membudget.Set(0)
	membudget.Set(1 << 30)
	cfg, err := Preset("GeCA-S", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckRun(cfg, 8, true); err != nil {
		t.Errorf("8 GeCA-S samples with guidance: %v", err)
	}
	var me *membudget.Error
	if err := CheckRun(cfg, 65536, false); !errors.As(err, &me) || !strings.Contains(err.Error(), "65536 sample") {
		t.Errorf("65536 samples: %v", err)
	}
	if err := CheckRun(cfg, MaxBatch, true); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("a guided batch over MaxBatch: %v", err)
	}
	if err := CheckCall(cfg, 65536); !errors.As(err, &me) || me.Need < 26<<30 {
		t.Errorf("a call on 65536 grids: %v", err)
	}
	if err := CheckCall(cfg, 0); err == nil {
		t.Error("a call on no grid")
	}
	if err := CheckState(1<<20, 1<<20, 1<<20, 1<<20); !errors.As(err, &me) || me.Need != 1<<63-1 {
		t.Errorf("an overflowing state: %v", err)
	}
	if err := CheckState(1, 0, 4, 4); err == nil {
		t.Error("an empty state")
	}
}
