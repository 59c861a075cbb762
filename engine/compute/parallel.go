package compute

import (
	"runtime"
	"sync"
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
	wg     *sync.WaitGroup
}

var (
	startOnce sync.Once
	jobs      chan job
	wgPool    = sync.Pool{New: func() any { return new(sync.WaitGroup) }}
)

func startWorkers() {
	n := runtime.NumCPU()
	jobs = make(chan job, 4*n+16)
	for i := 0; i < n; i++ {
		go func() {
			for j := range jobs {
				j.k.Run(j.lo, j.hi)
				j.wg.Done()
			}
		}()
	}
}

// Parallel runs k over rows [0, n) split into about GOMAXPROCS contiguous
// blocks of at least grain rows, on a fixed set of worker goroutines plus the
// caller. It returns when every block is done.
func Parallel(n, grain int, k Kernel) {
	if n <= 0 {
		return
	}
	p := runtime.GOMAXPROCS(0)
	if grain < 1 {
		grain = 1
	}
	blocks := min(p, (n+grain-1)/grain)
	if blocks <= 1 {
		k.Run(0, n)
		return
	}
	startOnce.Do(startWorkers)
	wg := wgPool.Get().(*sync.WaitGroup)
	wg.Add(blocks - 1)
	for i := 1; i < blocks; i++ {
		jobs <- job{k: k, lo: i * n / blocks, hi: (i + 1) * n / blocks, wg: wg}
	}
	k.Run(0, n/blocks)
	wg.Wait()
	wgPool.Put(wg)
}
