package compute

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// refConv is a direct, float64 convolution written from the definition:
// out[o,y,x] = b[o] + Σ w[o,i,ky,kx]·in[i, y+ky-p, x+kx-p], where in is the
// (possibly nearest-2x-upsampled) input.
func refConv(src, weight, bias []float32, s Conv2dSpec) []float64 {
	sh, sw := s.H, s.W
	if s.Upsample2x {
		sh, sw = s.H/2, s.W/2
	}
	at := func(i, y, x int) float64 {
		if y < 0 || y >= s.H || x < 0 || x >= s.W {
			return 0
		}
		if s.Upsample2x {
			y, x = y/2, x/2
		}
		return float64(src[(i*sh+y)*sw+x])
	}
	p := s.K / 2
	out := make([]float64, s.COut*s.H*s.W)
	for o := 0; o < s.COut; o++ {
		for y := 0; y < s.H; y++ {
			for x := 0; x < s.W; x++ {
				acc := 0.0
				if bias != nil {
					acc = float64(bias[o])
				}
				for i := 0; i < s.CIn; i++ {
					for ky := 0; ky < s.K; ky++ {
						for kx := 0; kx < s.K; kx++ {
							acc += float64(weight[((o*s.CIn+i)*s.K+ky)*s.K+kx]) * at(i, y+ky-p, x+kx-p)
						}
					}
				}
				out[(o*s.H+y)*s.W+x] = acc
			}
		}
	}
	return out
}

func randSlice(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

func TestConv2d(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := []Conv2dSpec{
		{CIn: 3, COut: 5, K: 3, H: 7, W: 6},
		{CIn: 4, COut: 2, K: 1, H: 5, W: 3},
		{CIn: 3, COut: 4, K: 3, H: 8, W: 6, Upsample2x: true},
		{CIn: 2, COut: 3, K: 1, H: 4, W: 4, Upsample2x: true},
		{CIn: 2, COut: 3, K: 5, H: 6, W: 7},
		{CIn: 1, COut: 1, K: 3, H: 1, W: 1},
		{CIn: 6, COut: 3, K: 3, H: 9, W: 4, Accumulate: true},
		// Wide enough that the im2col buffer is split into bands of rows.
		{CIn: 64, COut: 4, K: 3, H: 40, W: 120},
	}
	for ci, s := range cases {
		t.Run(fmt.Sprint(ci), func(t *testing.T) {
			for _, withBias := range []bool{true, false} {
				const batch = 2
				src := randSlice(r, batch*s.SrcLen())
				w := randSlice(r, s.COut*s.CIn*s.K*s.K)
				var b []float32
				if withBias {
					b = randSlice(r, s.COut)
				}
				dst := randSlice(r, batch*s.DstLen())
				old := append([]float32(nil), dst...)
				Conv2d(dst, src, w, b, batch, s, nil)
				for n := 0; n < batch; n++ {
					want := refConv(src[n*s.SrcLen():(n+1)*s.SrcLen()], w, b, s)
					for i, v := range want {
						if s.Accumulate {
							v += float64(old[n*s.DstLen()+i])
						}
						got := float64(dst[n*s.DstLen()+i])
						if !(math.Abs(got-v) <= 1e-4*(1+math.Abs(v))) {
							t.Fatalf("%+v bias=%v image %d index %d: got %v, want %v", s, withBias, n, i, got, v)
						}
					}
				}
			}
		})
	}
}

func TestConv2dBadSpecPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("want a panic for a short weight")
		}
	}()
	s := Conv2dSpec{CIn: 2, COut: 2, K: 3, H: 2, W: 2}
	Conv2d(make([]float32, 8), make([]float32, 8), make([]float32, 5), nil, 1, s, nil)
}

func TestUpsampleNearest2x(t *testing.T) {
	src := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12} // 2 planes of 2x3
	dst := make([]float32, 48)
	UpsampleNearest2x(dst, src, 2, 2, 3)
	want := []float32{
		1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 4, 4, 5, 5, 6, 6,
		7, 7, 8, 8, 9, 9, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 10, 10, 11, 11, 12, 12,
	}
	for i := range want {
		if dst[i] != want[i] {
			t.Fatalf("index %d: got %v, want %v", i, dst[i], want[i])
		}
	}
}

func BenchmarkConv2d3x3(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	s := Conv2dSpec{CIn: 256, COut: 256, K: 3, H: 64, W: 64}
	src := randSlice(r, s.SrcLen())
	w := randSlice(r, s.COut*s.CIn*9)
	dst := make([]float32, s.DstLen())
	var ws ConvWorkspace
	b.ReportMetric(0, "ns/op")
	for b.Loop() {
		Conv2d(dst, src, w, nil, 1, s, &ws)
	}
	b.ReportMetric(2*float64(s.COut*s.CIn*9*s.H*s.W)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func TestConvWinograd(t *testing.T) {
	for _, m := range []int{2, 4} {
		t.Run(fmt.Sprintf("F%d", m), func(t *testing.T) { testConvWinograd(t, m) })
	}
}

func testConvWinograd(t *testing.T, m int) {
	// F(4x4, 3x3)'s transforms grow values by up to 100x, so its rounding
	// error is ~5x that of im2col (measured rms 5e-6 relative at 600 input
	// channels); F(2x2, 3x3) is as accurate as im2col.
	tol := 1e-5
	if m == 4 {
		tol = 1e-4
	}
	r := rand.New(rand.NewPCG(5, 6))
	cases := []Conv2dSpec{
		{CIn: 3, COut: 5, H: 7, W: 6},
		{CIn: 4, COut: 3, H: 6, W: 5, Accumulate: true},
		{CIn: 3, COut: 4, H: 8, W: 6, Upsample2x: true},
		{CIn: 2, COut: 2, H: 1, W: 1},
		{CIn: 2, COut: 2, H: 2, W: 3},
		{CIn: 3, COut: 2, H: 9, W: 13},
		{CIn: 2, COut: 3, H: 4, W: 4, Upsample2x: true},
		{CIn: 5, COut: 3, H: 10, W: 4, Upsample2x: true, Accumulate: true},
		// Enough channels and width that the tiles are split into bands.
		{CIn: 600, COut: 3, H: 12, W: 30},
	}
	for _, s := range cases {
		s.K = 3
		for _, withBias := range []bool{true, false} {
			const batch = 2
			src := randSlice(r, batch*s.SrcLen())
			w := randSlice(r, s.COut*s.CIn*9)
			var b []float32
			if withBias {
				b = randSlice(r, s.COut)
			}
			c, err := NewConv(s.COut, s.CIn, 3, w, b)
			if err != nil {
				t.Fatal(err)
			}
			c.ReleaseWeight()
			c.PrepareWinograd(m)
			if c.WinogradTile() != m || c.Weight != nil {
				t.Fatalf("prepared F%d, weight released: got F%d, %v", m, c.WinogradTile(), c.Weight != nil)
			}
			dst := randSlice(r, batch*s.DstLen())
			old := append([]float32(nil), dst...)
			c.Forward(dst, src, batch, s.H, s.W, s.Upsample2x, s.Accumulate, nil)
			for n := 0; n < batch; n++ {
				want := refConv(src[n*s.SrcLen():(n+1)*s.SrcLen()], w, b, s)
				// Winograd's error scales with the outputs' magnitude, not each value's.
				scale := 1.0
				for _, v := range want {
					scale = math.Max(scale, math.Abs(v))
				}
				for i, v := range want {
					if s.Accumulate {
						v += float64(old[n*s.DstLen()+i])
					}
					got := float64(dst[n*s.DstLen()+i])
					if !(math.Abs(got-v) <= tol*scale) {
						t.Fatalf("%+v bias=%v image %d index %d: got %v, want %v", s, withBias, n, i, got, v)
					}
				}
			}
		}
	}
	if _, err := NewConv(2, 2, 3, make([]float32, 5), nil); err == nil {
		t.Error("short weight: want an error")
	}
}

func benchConv(b *testing.B, c, hw int, algo int) {
	r := rand.New(rand.NewPCG(1, 2))
	conv, _ := NewConv(c, c, 3, randSlice(r, c*c*9), randSlice(r, c))
	conv.Im2col = algo == 0
	if algo > 0 {
		conv.PrepareWinograd(algo)
	}
	src := randSlice(r, c*hw*hw)
	dst := make([]float32, c*hw*hw)
	var ws ConvWorkspace
	conv.Forward(dst, src, 1, hw, hw, false, false, &ws)
	cpu0 := convCPUSeconds()
	for b.Loop() {
		conv.Forward(dst, src, 1, hw, hw, false, false, &ws)
	}
	// CPU time is steadier than wall time on a shared machine.
	cpu := (convCPUSeconds() - cpu0) / float64(b.N)
	b.ReportMetric(cpu*1e3, "cpu-ms/op")
	b.ReportMetric(2*float64(c*c*9*hw*hw)/cpu/1e9, "direct-GFLOP/cpu-s")
}

// algorithm 0: im2col, 2: F(2x2, 3x3), 4: F(4x4, 3x3).
func BenchmarkConv3x3(b *testing.B) {
	for _, sz := range [][2]int{{512, 32}, {512, 64}, {256, 128}, {128, 256}} {
		for _, algo := range []int{0, 2, 4} {
			b.Run(fmt.Sprintf("c%d_%dx%d_algo%d", sz[0], sz[1], sz[1], algo), func(b *testing.B) { benchConv(b, sz[0], sz[1], algo) })
		}
	}
}
