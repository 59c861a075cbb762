package compute

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"runtime"
	"testing"
)

// fma32 must round x·y+z once, exactly as the FMA instruction does: checked
// against big.Float on random operands and on sums built to land exactly
// halfway between two float32s in float64 (where rounding twice goes wrong).
func TestFMA32(t *testing.T) {
	exact := func(x, y, z float32) float32 {
		p := new(big.Float).SetPrec(1000).SetFloat64(float64(x))
		p.Mul(p, new(big.Float).SetPrec(1000).SetFloat64(float64(y)))
		p.Add(p, new(big.Float).SetPrec(1000).SetFloat64(float64(z)))
		f, _ := p.Float32()
		return f
	}
	r := rand.New(rand.NewPCG(3, 4))
	check := func(x, y, z float32) {
		t.Helper()
		got, want := fma32(x, y, z), exact(x, y, z)
		if math.Float32bits(got) != math.Float32bits(want) && !(got == 0 && want == 0) {
			t.Fatalf("fma32(%g, %g, %g) = %g (%#x), want %g (%#x)", x, y, z, got, math.Float32bits(got), want, math.Float32bits(want))
		}
	}
	randf := func() float32 {
		return float32(r.NormFloat64() * math.Exp2(float64(r.IntN(40)-20)))
	}
	for i := 0; i < 200000; i++ {
		check(randf(), randf(), randf())
	}
	// Double-rounding cases: z = 1 and x·y = 2^-24 + 2^-60: the float64 sum is
	// 1 + 2^-24 (halfway to the next float32) while the exact sum lies above.
	hard := 0
	for i := 0; i < 200000; i++ {
		x := float32(1 + r.Float64())
		z := float32(math.Ldexp(1+float64(r.IntN(1<<23))/(1<<23), r.IntN(60)-30))
		// y such that x·y sits near half an ulp of z.
		half := math.Ldexp(1, math.Ilogb(float64(z))-24)
		y := float32(half / float64(x))
		for _, yy := range []float32{y, math.Nextafter32(y, 10), math.Nextafter32(y, -10), -y} {
			s := float64(x)*float64(yy) + float64(z)
			if float64(float32(s)) != s {
				hard++
			}
			check(x, yy, z)
		}
	}
	// Subnormal results, overflow and the overflow threshold.
	for _, c := range [][3]float32{
		{1e-30, 1e-15, 1e-45}, {math.SmallestNonzeroFloat32, 0.5, 0}, {math.SmallestNonzeroFloat32, 1.5, math.SmallestNonzeroFloat32},
		{math.MaxFloat32, 2, 0}, {math.MaxFloat32, 1, math.MaxFloat32}, {math.MaxFloat32, -1, -math.MaxFloat32},
		{float32(math.Ldexp(1, 103)), 1, math.MaxFloat32}, {float32(math.Ldexp(1, 103)), 1 + 1.0/(1<<23), math.MaxFloat32},
		{float32(math.Ldexp(1, 102)), -1, -math.MaxFloat32}, {0, 0, 0}, {-0.0, 1, 0},
	} {
		check(c[0], c[1], c[2])
	}
	if got := fma32(float32(math.NaN()), 1, 1); !math.IsNaN(float64(got)) {
		t.Fatalf("fma32(NaN, 1, 1) = %v", got)
	}
	if got := fma32(float32(math.Inf(1)), 1, 1); !math.IsInf(float64(got), 1) {
		t.Fatalf("fma32(Inf, 1, 1) = %v", got)
	}
	t.Logf("%d of the crafted sums were not float32-exact in float64", hard)
}

// chainRef is the defining formula of PackedLinear, one output at a time.
func chainRef(x, w, bias []float32, in int) float32 {
	var acc float32
	for p := 0; p < in; p++ {
		acc = fma32(x[p], w[p], acc)
	}
	if bias != nil {
		acc += bias[0]
	}
	return acc
}

// Every output of Apply is the k-ordered FMA chain of its own row and column,
// bit for bit, for the shapes the engine uses and odd ones (edges in rows,
// columns and k blocks), with and without bias, on 1 to 3 threads.
func TestPackedLinearIsTheChain(t *testing.T) { withKernels(t, testPackedLinearIsTheChain) }

func testPackedLinearIsTheChain(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, s := range [][2]int{{1, 1}, {5, 3}, {17, 40}, {96, 32}, {257, 48}, {600, 33}} {
		in, out := s[0], s[1]
		w, bias := randSlice(r, out*in), randSlice(r, out)
		for _, withBias := range []bool{false, true} {
			b := bias
			if !withBias {
				b = nil
			}
			l := PackLinear(w, b, out, in)
			for _, rows := range []int{1, 7, 13, 150} {
				for _, procs := range []int{1, 3} {
					t.Run(fmt.Sprintf("in=%d/out=%d/bias=%v/rows=%d/procs=%d", in, out, withBias, rows, procs), func(t *testing.T) {
						defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
						x := randSlice(r, rows*in)
						y := randSlice(r, rows*out) // garbage Apply must overwrite
						l.Apply(y, x, rows)
						for i := 0; i < rows; i++ {
							for c := 0; c < out; c++ {
								var bc []float32
								if withBias {
									bc = bias[c:]
								}
								want := chainRef(x[i*in:(i+1)*in], w[c*in:(c+1)*in], bc, in)
								if got := y[i*out+c]; math.Float32bits(got) != math.Float32bits(want) {
									t.Fatalf("y[%d][%d] = %v, want the chain's %v", i, c, got, want)
								}
							}
						}
					})
				}
			}
		}
	}
}

// TestRowInvariance is the property the engine's determinism rests on: a row
// of a product gives the same bits whether it is computed alone, among any
// number of other rows (1…70), at any offset, or in a dense block, on any
// number of threads. It holds for PackedLinear by construction and is
// checked here for every shape of a GeCA block (GeCA-S and the built-in
// model's widths) and odd ones.
func TestRowInvariance(t *testing.T) { withKernels(t, testRowInvariance) }

func testRowInvariance(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const total = 1100 // a dense 32x32 grid plus spare rows for offsets
	// in×out: the cell embedding, the MLP (k blocks continued), the final
	// layer (a lone last panel) and small odd ones.
	shapes := [][2]int{{76, 768}, {768, 3072}, {3072, 768}, {768, 68}, {37, 5}}
	if kernel.name == "go" { // the portable kernel is slow: small shapes only
		shapes = [][2]int{{37, 5}, {300, 20}}
	}
	for _, s := range shapes {
		in, out := s[0], s[1]
		t.Run(fmt.Sprintf("in=%d/out=%d", in, out), func(t *testing.T) {
			l := PackLinear(randSlice(r, out*in), randSlice(r, out), out, in)
			x := randSlice(r, total*in)
			ref := make([]float32, total*out)
			l.Apply(ref, x, total)
			check := func(what string, y []float32, off, rows int) {
				t.Helper()
				for i := 0; i < rows*out; i++ {
					if math.Float32bits(y[i]) != math.Float32bits(ref[off*out+i]) {
						t.Fatalf("%s: row %d column %d = %v, %v in the dense product", what, off+i/out, i%out, y[i], ref[off*out+i])
					}
				}
			}
			for _, procs := range []int{1, 3} {
				old := runtime.GOMAXPROCS(procs)
				for rows := 1; rows <= 70; rows++ {
					for _, off := range []int{0, 1, 7, 145, 1029} {
						y := make([]float32, rows*out)
						l.Apply(y, x[off*in:], rows)
						check(fmt.Sprintf("procs=%d rows=%d offset=%d", procs, rows, off), y, off, rows)
					}
				}
				// Large sets as the sparse updates make them.
				for _, rows := range []int{144, 145, 289, 513, 1024} {
					y := make([]float32, rows*out)
					l.Apply(y, x[7*in:], rows)
					check(fmt.Sprintf("procs=%d rows=%d offset=7", procs, rows), y, 7, rows)
				}
				runtime.GOMAXPROCS(old)
			}
		})
	}
}

// Every tile kernel the CPU can run gives tileGo's bits, including chains
// that continue over k blocks, the bias, and a two-panel tile whose second
// panel is its first (stride 0).
func TestTileKernelsMatchGo(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, k := range tileKernels() {
		tc := k.panels * tileCols
		for _, kc := range []int{1, 2, 3, 4, 5, 7, 8, 255, 256} {
			for _, flags := range []int{0, tileContinue, tileBias, tileContinue | tileBias} {
				for _, stride := range []int{0, kc * tileCols, kc*tileCols + 48} {
					a, b, bias := randSlice(r, kc*k.rows), randSlice(r, stride+kc*tileCols), randSlice(r, tc)
					ldc := tc + 3
					c0 := randSlice(r, k.rows*ldc)
					got, want := append([]float32(nil), c0...), append([]float32(nil), c0...)
					k.run(kc, a, b, stride, got, ldc, bias, flags)
					tileGo(k.rows, k.panels, kc, a, b, stride, want, ldc, bias, flags)
					for i := range want {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("%s kernel, kc=%d flags=%d stride=%d: c[%d] = %v, want %v", k.name, kc, flags, stride, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

// withKernels runs f once with each tile kernel this CPU can run.
func withKernels(t *testing.T, f func(t *testing.T)) {
	old := kernel
	defer func() { kernel = old }()
	for _, k := range tileKernels() {
		kernel = k
		t.Run(k.name, f)
	}
}

// PackedLinear agrees with a float64 product within float32 rounding.
func TestPackedLinearAccuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	in, out, rows := 300, 50, 40
	w, bias, x := randSlice(r, out*in), randSlice(r, out), randSlice(r, rows*in)
	y := make([]float32, rows*out)
	PackLinear(w, bias, out, in).Apply(y, x, rows)
	for i := 0; i < rows; i++ {
		for c := 0; c < out; c++ {
			s := float64(bias[c])
			for p := 0; p < in; p++ {
				s += float64(x[i*in+p]) * float64(w[c*in+p])
			}
			if d := math.Abs(float64(y[i*out+c]) - s); !(d <= 2e-5*math.Sqrt(float64(in))) {
				t.Fatalf("y[%d][%d] = %v, float64 product %v", i, c, y[i*out+c], s)
			}
		}
	}
}

func TestPackLinearRejectsBadSizes(t *testing.T) {
	for _, c := range []struct {
		w, b    int
		out, in int
	}{{5, 0, 2, 3}, {6, 1, 2, 3}, {0, 0, 0, 3}} {
		t.Run(fmt.Sprint(c.in), func(t *testing.T) {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("PackLinear(%d values, bias %d, %dx%d) did not panic", c.w, c.b, c.out, c.in)
					}
				}()
				var b []float32
				if c.b > 0 {
					b = make([]float32, c.b)
				}
				PackLinear(make([]float32, c.w), b, c.out, c.in)
			}()
		})
	}
}

// BenchmarkPackedLinear times the GeCA-S products of one sparse update (513
// of 1024 cells) and a small sparse set, with each tile kernel this CPU can
// run and, for comparison, the build's BLAS through Gemm (which gives no
// row invariance).
func BenchmarkPackedLinear(b *testing.B) {
	for _, s := range [][3]int{{513, 768, 768}, {513, 3072, 768}, {513, 768, 3072}, {9, 768, 768}} {
		rows, out, in := s[0], s[1], s[2]
		r := rand.New(rand.NewPCG(1, 2))
		x, w, y := randSlice(r, rows*in), randSlice(r, out*in), make([]float32, rows*out)
		gflops := func(b *testing.B) {
			b.ReportMetric(float64(2*rows*out*in)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		}
		name := fmt.Sprintf("rows=%d/out=%d/in=%d", rows, out, in)
		b.Run(name+"/blas", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				Gemm(false, true, rows, out, in, 1, x, in, w, in, 0, y, out)
			}
			gflops(b)
		})
		l := PackLinear(w, nil, out, in)
		for _, k := range tileKernels() {
			if k.name == "go" {
				continue
			}
			b.Run(name+"/"+k.name, func(b *testing.B) {
				defer func(old tileKernel) { kernel = old }(kernel)
				kernel = k
				for i := 0; i < b.N; i++ {
					l.Apply(y, x, rows)
				}
				gflops(b)
			})
		}
	}
}
