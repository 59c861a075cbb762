package compute

import (
	"fmt"
	"sync"
)

// Conv2dSpec describes a stride-1 2-D convolution with "same" zero padding
// (K/2 on every side), the only kind the VAE decoders use (3x3 and 1x1).
// Images are channel-first: src is (CIn, H, W) per image, dst (COut, H, W).
type Conv2dSpec struct {
	CIn, COut int
	K         int // kernel size, odd (1 or 3 in practice); weight is (COut, CIn, K, K)
	H, W      int // output size, which is also the (possibly upsampled) input size
	// Upsample2x reads src as (CIn, H/2, W/2) through a nearest-neighbour 2x
	// upsample, so the upsampled image is never stored (diffusers Upsample2D:
	// interpolate(scale_factor=2, mode="nearest") then a 3x3 conv).
	Upsample2x bool
	// Accumulate adds the convolution to what dst holds (a residual sum)
	// instead of overwriting it.
	Accumulate bool
}

// SrcLen is the number of values of one input image.
func (s Conv2dSpec) SrcLen() int {
	if s.Upsample2x {
		return s.CIn * (s.H / 2) * (s.W / 2)
	}
	return s.CIn * s.H * s.W
}

// DstLen is the number of values of one output image.
func (s Conv2dSpec) DstLen() int { return s.COut * s.H * s.W }

// ConvWorkspace holds the im2col buffer so repeated convolutions do not
// allocate. The zero value is ready; it is not safe for concurrent use.
type ConvWorkspace struct {
	col []float32 // im2col band, or Winograd-transformed input tiles
	out []float32 // Winograd products before the output transform
}

// convColBudget bounds the im2col buffer (in float32 values, 8 MiB): the
// output is produced in bands of rows so memory stays flat at any image
// size, while each band is still a wide matrix product that BLAS runs at
// full speed.
const convColBudget = 1 << 21

func (ws *ConvWorkspace) buf(n int) []float32 {
	if cap(ws.col) < n {
		ws.col = make([]float32, n)
	}
	return ws.col[:n]
}

// Conv2d computes dst = conv(src, weight) + bias for batch images (plus the
// old dst when s.Accumulate). bias may be nil. ws may be nil (a temporary
// buffer is used). It panics when a slice length does not match the spec,
// since that is a bug in the caller, not bad data.
//
// A KxK convolution is one matrix product per band of output rows:
// dst[:, band] = W (COut × CIn·K·K) · col (CIn·K·K × band pixels), where col
// is the band's im2col matrix built in parallel. 1x1 convolutions without
// upsampling skip im2col and multiply the image directly.
func Conv2d(dst, src, weight, bias []float32, batch int, s Conv2dSpec, ws *ConvWorkspace) {
	if s.K <= 0 || s.K%2 == 0 || s.CIn <= 0 || s.COut <= 0 || s.H <= 0 || s.W <= 0 || batch < 0 {
		panic(fmt.Sprintf("compute.Conv2d: bad spec %+v (batch %d)", s, batch))
	}
	if s.Upsample2x && (s.H%2 != 0 || s.W%2 != 0) {
		panic(fmt.Sprintf("compute.Conv2d: upsampled output %dx%d must be even", s.H, s.W))
	}
	kk := s.CIn * s.K * s.K
	if len(weight) != s.COut*kk {
		panic(fmt.Sprintf("compute.Conv2d: weight has %d values, want %d", len(weight), s.COut*kk))
	}
	if bias != nil && len(bias) != s.COut {
		panic(fmt.Sprintf("compute.Conv2d: bias has %d values, want %d", len(bias), s.COut))
	}
	if len(src) != batch*s.SrcLen() || len(dst) != batch*s.DstLen() {
		panic(fmt.Sprintf("compute.Conv2d: src/dst have %d/%d values, want %d/%d", len(src), len(dst), batch*s.SrcLen(), batch*s.DstLen()))
	}
	if ws == nil {
		ws = &ConvWorkspace{}
	}
	hw := s.H * s.W
	for n := 0; n < batch; n++ {
		in := src[n*s.SrcLen() : (n+1)*s.SrcLen()]
		out := dst[n*s.DstLen() : (n+1)*s.DstLen()]
		beta := float32(0)
		if s.Accumulate {
			beta = 1
		}
		if bias != nil {
			addBias(out, bias, hw, s.Accumulate)
			beta = 1
		}
		if s.K == 1 && !s.Upsample2x {
			Gemm(false, false, s.COut, hw, s.CIn, 1, weight, s.CIn, in, hw, beta, out, hw)
			continue
		}
		rows := convColBudget / (kk * s.W)
		if rows < 1 {
			rows = 1
		}
		if rows > s.H {
			rows = s.H
		}
		col := ws.buf(kk * rows * s.W)
		for y0 := 0; y0 < s.H; y0 += rows {
			r := min(rows, s.H-y0)
			np := r * s.W
			im2col(col[:kk*np], in, s, y0, r)
			Gemm(false, false, s.COut, np, kk, 1, weight, kk, col, np, beta, out[y0*s.W:], hw)
		}
	}
}

// Conv is one convolution layer (stride 1, "same" zero padding). 3x3
// kernels run as Winograd F(4x4, 3x3) on images of at least
// WinogradF4MinPixels pixels and F(2x2, 3x3) below; other sizes use im2col
// (or a plain matrix product for 1x1). The transformed weights are made
// once, on the first Forward or by Prepare.
//
// F(4x4) is the faster of the two at every size measured (32x32 to 256x256),
// but its transformed weights take 4x the memory of the kernel (F(2x2):
// 1.8x) and its error is about 8x larger (still ~1e-5 relative on the SD
// decoder). Small images are where the widest layers run (the SD decoder's
// 512-channel 32x32 level), so F(2x2) there saves the most memory for the
// least time.
type Conv struct {
	COut, CIn, K int
	Weight       []float32 // (COut, CIn, K, K) as stored by PyTorch; nil once released
	Bias         []float32 // (COut) or nil
	// Im2col forces the im2col path for 3x3 kernels (reference and
	// benchmarks); it needs Weight.
	Im2col bool

	mu      sync.Mutex
	wino    []float32 // Winograd-transformed 3x3 weights, (m+2)² × COut × CIn
	winoM   int       // m of F(m×m, 3x3): 2 or 4; 0 before Prepare
	release bool      // drop Weight once transformed
}

// WinogradF4MinPixels is the output size (H·W) from which 3x3 kernels use
// F(4x4, 3x3) rather than F(2x2, 3x3).
const WinogradF4MinPixels = 48 * 48

// NewConv checks the sizes. weight and bias are kept (not copied); the
// caller must not change them afterwards.
func NewConv(cout, cin, k int, weight, bias []float32) (*Conv, error) {
	if cout <= 0 || cin <= 0 || k <= 0 || k%2 == 0 {
		return nil, fmt.Errorf("compute.NewConv: bad shape (%d, %d, %d, %d)", cout, cin, k, k)
	}
	if len(weight) != cout*cin*k*k {
		return nil, fmt.Errorf("compute.NewConv: weight has %d values, want (%d, %d, %d, %d) = %d", len(weight), cout, cin, k, k, cout*cin*k*k)
	}
	if bias != nil && len(bias) != cout {
		return nil, fmt.Errorf("compute.NewConv: bias has %d values, want %d", len(bias), cout)
	}
	return &Conv{COut: cout, CIn: cin, K: k, Weight: weight, Bias: bias}, nil
}

// Prepare transforms a 3x3 kernel for h×w outputs now (instead of on the
// first Forward): F(4x4, 3x3) from WinogradF4MinPixels on, else F(2x2, 3x3).
// The choice is made once; later calls, and later sizes, keep it.
func (c *Conv) Prepare(h, w int) {
	m := 2
	if h*w >= WinogradF4MinPixels {
		m = 4
	}
	c.PrepareWinograd(m)
}

// PrepareWinograd transforms a 3x3 kernel for F(m×m, 3x3), m = 2 or 4,
// unless it is already prepared.
func (c *Conv) PrepareWinograd(m int) {
	if c.K != 3 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.winoM != 0 {
		return
	}
	c.wino, c.winoM = winoWeights(c.Weight, c.COut, c.CIn, m), m
	if c.release {
		c.Weight, c.Im2col = nil, false
	}
}

// WinogradTile is m of the prepared F(m×m, 3x3), 0 when not prepared.
func (c *Conv) WinogradTile() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.winoM
}

// ReleaseWeight lets a 3x3 kernel drop Weight once it is in Winograd form
// (now, if it already is), so a large model does not hold its convolutions
// twice; the im2col path is then unavailable. Other kernels keep Weight.
func (c *Conv) ReleaseWeight() {
	if c.K != 3 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.release = true
	if c.winoM != 0 {
		c.Weight, c.Im2col = nil, false
	}
}

// Params is the number of weights and biases.
func (c *Conv) Params() int { return c.COut*c.CIn*c.K*c.K + len(c.Bias) }

// Forward computes dst = conv(src) + bias for batch images of h×w outputs
// (src is (CIn, h, w) per image, or (CIn, h/2, w/2) read through a nearest
// 2x upsample when up2x). With acc the result is added to dst. ws may be nil.
func (c *Conv) Forward(dst, src []float32, batch, h, w int, up2x, acc bool, ws *ConvWorkspace) {
	s := Conv2dSpec{CIn: c.CIn, COut: c.COut, K: c.K, H: h, W: w, Upsample2x: up2x, Accumulate: acc}
	c.mu.Lock()
	direct := c.K != 3 || (c.Im2col && c.Weight != nil)
	c.mu.Unlock()
	if direct {
		Conv2d(dst, src, c.Weight, c.Bias, batch, s, ws)
		return
	}
	if h <= 0 || w <= 0 || batch < 0 || (up2x && (h%2 != 0 || w%2 != 0)) {
		panic(fmt.Sprintf("compute.Conv.Forward: bad size %dx%d (batch %d, upsample %v)", h, w, batch, up2x))
	}
	if len(src) != batch*s.SrcLen() || len(dst) != batch*s.DstLen() {
		panic(fmt.Sprintf("compute.Conv.Forward: src/dst have %d/%d values, want %d/%d", len(src), len(dst), batch*s.SrcLen(), batch*s.DstLen()))
	}
	c.Prepare(h, w)
	c.mu.Lock()
	u, m := c.wino, c.winoM
	c.mu.Unlock()
	if ws == nil {
		ws = &ConvWorkspace{}
	}
	for n := 0; n < batch; n++ {
		convWinograd(dst[n*s.DstLen():(n+1)*s.DstLen()], src[n*s.SrcLen():(n+1)*s.SrcLen()], u, c.Bias, s, m, ws)
	}
}

// addBias sets (or, when acc, adds) bias[c] on every pixel of channel c.
func addBias(out, bias []float32, hw int, acc bool) {
	ParallelFunc(len(bias), func(c0, c1 int) {
		for c := c0; c < c1; c++ {
			o := out[c*hw : (c+1)*hw]
			b := bias[c]
			if acc {
				for i := range o {
					o[i] += b
				}
			} else {
				for i := range o {
					o[i] = b
				}
			}
		}
	})
}

// im2col fills col (CIn·K·K rows × r·W columns) for output rows [y0, y0+r):
// row (ci, ky, kx) holds input pixel (y+ky-K/2, x+kx-K/2) of channel ci for
// every output pixel (y, x) of the band, zero outside the image.
func im2col(col, src []float32, s Conv2dSpec, y0, r int) {
	k, w, pad := s.K, s.W, s.K/2
	np := r * w
	sh, sw := s.H, s.W
	if s.Upsample2x {
		sh, sw = s.H/2, s.W/2
	}
	ParallelFunc(s.CIn*k, func(i0, i1 int) {
		for i := i0; i < i1; i++ { // i = ci·K + ky
			ci, ky := i/k, i%k
			plane := src[ci*sh*sw : (ci+1)*sh*sw]
			for kx := 0; kx < k; kx++ {
				row := col[(i*k+kx)*np : (i*k+kx+1)*np]
				dx := kx - pad
				for yy := 0; yy < r; yy++ {
					seg := row[yy*w : (yy+1)*w]
					y := y0 + yy + ky - pad
					if y < 0 || y >= s.H {
						clear(seg)
						continue
					}
					// Output columns x with 0 <= x+dx < W read the image; the rest are padding.
					xa, xb := max(0, -dx), min(w, w-dx)
					clear(seg[:xa])
					clear(seg[xb:])
					if !s.Upsample2x {
						copy(seg[xa:xb], plane[y*sw+xa+dx:y*sw+xb+dx])
						continue
					}
					line := plane[(y/2)*sw : (y/2+1)*sw]
					for x := xa; x < xb; x++ {
						seg[x] = line[(x+dx)>>1]
					}
				}
			}
		}
	})
}

// UpsampleNearest2x writes the nearest-neighbour 2x upsample of src
// (planes of h×w, e.g. batch·channels of them) into dst (planes of 2h×2w).
func UpsampleNearest2x(dst, src []float32, planes, h, w int) {
	if len(src) != planes*h*w || len(dst) != 4*planes*h*w {
		panic(fmt.Sprintf("compute.UpsampleNearest2x: src/dst have %d/%d values, want %d/%d", len(src), len(dst), planes*h*w, 4*planes*h*w))
	}
	ParallelFunc(planes, func(p0, p1 int) {
		for p := p0; p < p1; p++ {
			in := src[p*h*w : (p+1)*h*w]
			out := dst[p*4*h*w : (p+1)*4*h*w]
			for y := 0; y < h; y++ {
				line := in[y*w : (y+1)*w]
				o := out[2*y*2*w : (2*y+1)*2*w]
				for x, v := range line {
					o[2*x], o[2*x+1] = v, v
				}
				copy(out[(2*y+1)*2*w:(2*y+2)*2*w], o)
			}
		}
	})
}
