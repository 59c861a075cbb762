package compute

import (
	"fmt"
	"runtime"
	"sync"
)

// The engine's linear layers multiply a set of cell rows by a fixed weight
// matrix. Which rows are in the set changes from update to update (only
// masked-in or changed cells are computed), so a cell's result must not
// depend on which other rows share the product: a branched, rewound or
// resumed run has to continue bit for bit like the run it came from.
//
// A general BLAS gives no such promise. OpenBLAS, for one, computes the
// rows of a partial register tile and small matrices with other kernels,
// whose sums are associated differently (docs/numerics.md measures it). So the
// engine's products go through PackedLinear, whose every output is one chain
// of fused multiply-adds in k order, acc = fma(x[r][p], w[c][p], acc) from
// acc = 0, plus the bias at the end. Rows and columns are only ever spread
// over vector lanes, tiles and threads, never summed together, so an output
// depends on its own row of X and column of W alone: the same on every
// machine with the same kernel, whatever the row count, the offset or
// GOMAXPROCS.

// tileCols is the width of a packed panel of W: the columns one 16-lane
// AVX-512 or two 8-lane AVX2 vectors hold.
const tileCols = 16

// Blocking of X, sized so that a block of packed rows stays in L2 and one
// panel's k block in L1 while the tiles run over them.
const (
	blockK    = 256 // k steps per packed block
	blockRows = 144 // most rows per packed block
)

// PackedLinear is a linear layer's weight W (Out×In, as PyTorch stores it)
// and optional bias, packed once into panels of 16 columns for Apply.
type PackedLinear struct {
	In, Out int
	panels  []float32 // panel j, step p: W[16j+c][p] at (j·In+p)·16+c, zero past Out
	bias    []float32 // padded to whole panels; nil without bias
}

// PackLinear packs w (out×in, row-major) and bias (out, or nil). It copies:
// later changes to w or bias are not seen.
func PackLinear(w, bias []float32, out, in int) *PackedLinear {
	if out <= 0 || in <= 0 || len(w) < out*in || (bias != nil && len(bias) < out) {
		panic(fmt.Sprintf("compute.PackLinear: %d×%d weight from %d values, bias of %d", out, in, len(w), len(bias)))
	}
	np := (out + tileCols - 1) / tileCols
	l := &PackedLinear{In: in, Out: out, panels: make([]float32, np*in*tileCols)}
	for c := 0; c < out; c++ {
		j, cc := c/tileCols, c%tileCols
		dst := l.panels[j*in*tileCols+cc:]
		for p, v := range w[c*in : (c+1)*in] {
			dst[p*tileCols] = v
		}
	}
	if bias != nil {
		l.bias = make([]float32, (np+1)*tileCols) // a spare panel: see block
		copy(l.bias, bias[:out])
	}
	return l
}

// Apply computes y = x·Wᵀ + bias for rows rows: x is rows×In, y rows×Out,
// both row-major and contiguous. Each y[r][c] is the fused multiply-add chain
// described above. It allocates nothing once warm.
func (l *PackedLinear) Apply(y, x []float32, rows int) {
	if rows <= 0 {
		return
	}
	if len(x) < rows*l.In || len(y) < rows*l.Out {
		panic(fmt.Sprintf("compute.PackedLinear.Apply: %d rows need %d inputs and %d outputs, have %d and %d",
			rows, rows*l.In, rows*l.Out, len(x), len(y)))
	}
	t := matmulTasks.Get().(*matmulTask)
	*t = matmulTask{l: l, y: y, x: x, rows: rows}
	t.plan(runtime.GOMAXPROCS(0))
	n := t.rowBlocks * t.colGroups
	if n == 1 {
		t.Run(0, 1)
	} else {
		ParallelBlocks(n, min(runtime.GOMAXPROCS(0), n), t)
	}
	*t = matmulTask{}
	matmulTasks.Put(t)
}

// matmulTask is one Apply split into blocks of rows × groups of panels, each
// packed and computed by one thread. How it is split changes no bit.
type matmulTask struct {
	l                    *PackedLinear
	y, x                 []float32
	rows                 int
	rowBlocks, colGroups int
}

var matmulTasks = sync.Pool{New: func() any { return new(matmulTask) }}

// plan splits the work for p threads: blocks of at most about blockRows rows,
// their count a multiple of p when there are enough rows, else groups of
// panels so that every thread gets a share.
func (t *matmulTask) plan(p int) {
	tr := kernel.rows
	tiles := (t.rows + tr - 1) / tr
	panels := (t.l.Out + tileCols - 1) / tileCols
	nb := (t.rows + blockRows - 1) / blockRows
	t.rowBlocks, t.colGroups = nb, 1
	if p <= 1 || t.rows*t.l.Out*t.l.In < 1<<23 { // under about 50 µs: waking a thread costs more
		return
	}
	if nb >= p || tiles >= 2*p {
		t.rowBlocks = min(tiles, (max(nb, p)+p-1)/p*p)
		return
	}
	t.colGroups = min((panels+kernel.panels-1)/kernel.panels, (p+nb-1)/nb)
}

// rowBound is where row block b starts: a multiple of the tile height,
// except the end of the last block.
func (t *matmulTask) rowBound(b int) int {
	if b >= t.rowBlocks {
		return t.rows
	}
	return b * t.rows / t.rowBlocks / kernel.rows * kernel.rows
}

func (t *matmulTask) Run(lo, hi int) {
	s := matmulScratches.Get().(*matmulScratch)
	steps := (t.l.Out + tileCols*kernel.panels - 1) / (tileCols * kernel.panels) // tile columns
	for i := lo; i < hi; i++ {
		rb, cg := i/t.colGroups, i%t.colGroups
		t.block(s, t.rowBound(rb), t.rowBound(rb+1), cg*steps/t.colGroups*kernel.panels, min((cg+1)*steps/t.colGroups*kernel.panels, (t.l.Out+tileCols-1)/tileCols))
	}
	matmulScratches.Put(s)
}

// matmulScratch is one thread's packed block of X and its edge tiles.
type matmulScratch struct {
	a    []float32 // tiles × blockK × tile rows
	edge []float32 // tiles that do not fit in y
}

var matmulScratches = sync.Pool{New: func() any { return new(matmulScratch) }}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// block computes rows [r0, r1) × panels [j0, j1). Tiles that reach past the
// last row or column are computed whole into scratch and copied out at the
// end; every k block after the first continues the chains from where the
// previous one stored them. With two-panel tiles, a lone last panel is paired
// with itself (its second half is discarded).
func (t *matmulTask) block(s *matmulScratch, r0, r1, j0, j1 int) {
	if r0 >= r1 || j0 >= j1 {
		return
	}
	l, in, out := t.l, t.l.In, t.l.Out
	tr, tp := kernel.rows, kernel.panels
	tc := tp * tileCols
	nt := (r1 - r0 + tr - 1) / tr // row tiles
	ns := (j1 - j0 + tp - 1) / tp // column tiles
	fullRows := (r1 - r0) / tr    // row tiles inside y
	full := func(ti, j int) bool { return ti < fullRows && j+tp <= j1 && (j+tp)*tileCols <= out }
	slot := func(ti, j int) []float32 { // the scratch tile of an edge tile
		if ti >= fullRows {
			return s.edge[(j-j0)/tp*tr*tc:]
		}
		return s.edge[(ns+ti)*tr*tc:]
	}
	s.a = grow(s.a, nt*min(blockK, in)*tr)
	s.edge = grow(s.edge, (nt+ns)*tr*tc)
	for pc := 0; pc < in; pc += blockK {
		kc := min(blockK, in-pc)
		t.pack(s.a[:nt*kc*tr], r0, r1, pc, kc)
		flags := 0
		if pc > 0 {
			flags |= tileContinue
		}
		last := pc+kc == in
		for j := j0; j < j1; j += tp {
			bp := l.panels[(j*in+pc)*tileCols:]
			stride := in * tileCols // from one panel to the next
			if j+1 >= j1 {
				stride = 0
			}
			var bias []float32
			f := flags
			if last && l.bias != nil {
				bias, f = l.bias[j*tileCols:], f|tileBias
			}
			for ti := 0; ti < nt; ti++ {
				ap := s.a[ti*kc*tr:]
				if full(ti, j) {
					kernel.run(kc, ap, bp, stride, t.y[(r0+ti*tr)*out+j*tileCols:], out, bias, f)
				} else {
					kernel.run(kc, ap, bp, stride, slot(ti, j), tc, bias, f)
				}
			}
		}
	}
	// Copy out the edge tiles.
	for j := j0; j < j1; j += tp {
		c0, c1 := j*tileCols, min(out, (j+tp)*tileCols, j1*tileCols)
		for ti := 0; ti < nt; ti++ {
			if full(ti, j) {
				continue
			}
			e := slot(ti, j)
			for r := 0; r < tr; r++ {
				row := r0 + ti*tr + r
				if row >= r1 {
					break
				}
				copy(t.y[row*out+c0:row*out+c1], e[r*tc:r*tc+c1-c0])
			}
		}
	}
}

// pack copies x[r0:r1][pc:pc+kc] into tiles of the kernel's height,
// step-major (a[(tile·kc + p)·rows + r]), with zero rows past r1.
func (t *matmulTask) pack(a []float32, r0, r1, pc, kc int) {
	in, tr := t.l.In, kernel.rows
	nt := len(a) / (kc * tr)
	for ti := 0; ti < nt; ti++ {
		dst := a[ti*kc*tr : (ti+1)*kc*tr]
		for r := 0; r < tr; r++ {
			row := r0 + ti*tr + r
			if row >= r1 {
				for p := 0; p < kc; p++ {
					dst[p*tr+r] = 0
				}
				continue
			}
			src := t.x[row*in+pc : row*in+pc+kc]
			for p, v := range src {
				dst[p*tr+r] = v
			}
		}
	}
}

// Flags of a tile kernel call.
const (
	tileContinue = 1 // start the chains from the values in c, not from 0
	tileBias     = 2 // add the bias after the last step
)

// tileKernel computes one tile of rows × panels·16 outputs: from kc steps of
// a (rows values each, packed by pack) and of b (16 values of each panel,
// the next panel stride values on), into c with row stride ldc, adding
// bias[0:panels·16] when flags has tileBias.
type tileKernel struct {
	name         string
	rows, panels int
	run          func(kc int, a, b []float32, stride int, c []float32, ldc int, bias []float32, flags int)
}

// goKernel is the portable tile kernel, and the reference every assembly
// kernel is tested against bit for bit.
var goKernel = tileKernel{name: "go", rows: 6, panels: 1, run: func(kc int, a, b []float32, stride int, c []float32, ldc int, bias []float32, flags int) {
	tileGo(6, 1, kc, a, b, stride, c, ldc, bias, flags)
}}

// tileGo is the tile kernel's definition in Go, for any tile size.
func tileGo(rows, panels, kc int, a, b []float32, stride int, c []float32, ldc int, bias []float32, flags int) {
	tc := panels * tileCols
	acc := make([]float32, rows*tc)
	if flags&tileContinue != 0 {
		for r := 0; r < rows; r++ {
			copy(acc[r*tc:(r+1)*tc], c[r*ldc:r*ldc+tc])
		}
	}
	for p := 0; p < kc; p++ {
		for r := 0; r < rows; r++ {
			x := a[p*rows+r]
			for pn := 0; pn < panels; pn++ {
				bp := b[pn*stride+p*tileCols : pn*stride+(p+1)*tileCols]
				row := acc[r*tc+pn*tileCols:]
				for cc, w := range bp {
					row[cc] = fma32(x, w, row[cc])
				}
			}
		}
	}
	for r := 0; r < rows; r++ {
		if flags&tileBias != 0 {
			for cc := 0; cc < tc; cc++ {
				acc[r*tc+cc] += bias[cc]
			}
		}
		copy(c[r*ldc:r*ldc+tc], acc[r*tc:(r+1)*tc])
	}
}
