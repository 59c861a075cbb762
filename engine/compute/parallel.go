package compute

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Kernel is one data-parallel piece of work over rows [lo, hi). Kernels are
// plain structs whose fields the caller fills before each run, so running
// one allocates nothing.
type Kernel interface {
	Run(lo, hi int)
}

type job struct {
	k      Kernel
	lo, hi int
	g      *group
}

// group tracks the blocks of one Parallel call still running elsewhere.
type group struct {
	pending atomic.Int32
	done    chan struct{} // receives one value when pending reaches 0
}

var (
	startOnce sync.Once
	jobs      chan job
	groups    = sync.Pool{New: func() any { return &group{done: make(chan struct{}, 1)} }}
)

func startWorkers() {
	n := max(runtime.NumCPU(), runtime.GOMAXPROCS(0))
	jobs = make(chan job, 64*n)
	for i := 0; i < n; i++ {
		go func() {
			for j := range jobs {
				j.run()
			}
		}()
	}
}

func (j job) run() {
	j.k.Run(j.lo, j.hi)
	if j.g.pending.Add(-1) == 0 {
		j.g.done <- struct{}{}
	}
}

// Parallel runs k over rows [0, n) split into about GOMAXPROCS contiguous
// blocks of at least grain rows, on a fixed set of worker goroutines plus the
// caller, and returns when every block is done. While it waits, the caller
// runs queued blocks itself, so kernels may call Parallel (or Gemm) again
// without deadlock.
func Parallel(n, grain int, k Kernel) {
	ParallelBlocks(n, min(runtime.GOMAXPROCS(0), (n+max(grain, 1)-1)/max(grain, 1)), k)
}

// ParallelBlocks runs k over rows [0, n) split into exactly blocks contiguous
// blocks (fewer when n < blocks).
func ParallelBlocks(n, blocks int, k Kernel) {
	if n <= 0 {
		return
	}
	blocks = min(blocks, n)
	if blocks <= 1 {
		k.Run(0, n)
		return
	}
	startOnce.Do(startWorkers)
	g := groups.Get().(*group)
	g.pending.Store(int32(blocks - 1))
	for i := 1; i < blocks; i++ {
		j := job{k: k, lo: i * n / blocks, hi: (i + 1) * n / blocks, g: g}
		select {
		case jobs <- j:
		default:
			j.run() // queue full (many concurrent callers): never block on it
		}
	}
	k.Run(0, n/blocks)
	for {
		select {
		case <-g.done:
			groups.Put(g)
			return
		case j := <-jobs:
			j.run()
		}
	}
}

// KernelFunc adapts a closure to Kernel, for callers outside the hot loop
// where one allocation per call does not matter.
type KernelFunc func(lo, hi int)

// Run calls f(lo, hi).
func (f KernelFunc) Run(lo, hi int) { f(lo, hi) }

// ParallelFunc runs fn over [0, n) in about GOMAXPROCS contiguous chunks on
// the shared workers (see Parallel).
func ParallelFunc(n int, fn func(lo, hi int)) { Parallel(n, 1, KernelFunc(fn)) }
