package compute

import (
	"fmt"
)

// StridedConv is the convolution of diffusers' Downsample2D as the
// AutoencoderKL encoder builds it (padding=0): the input is zero-padded by
// one row at the bottom and one column at the right (F.pad(x, (0, 1, 0, 1))),
// then convolved with a 3x3 kernel at stride 2. Output pixel (y, x) reads input
// pixels (2y+ky, 2x+kx), ky, kx in 0..2, zero past the bottom or right edge;
// an h×w input gives floor(h/2)×floor(w/2).
//
// Conv has only stride 1 (its Winograd forms rely on it), so this is
// its own im2col + matrix product. The kernel keeps its PyTorch layout.
type StridedConv struct {
	COut, CIn int
	Weight    []float32 // (COut, CIn, 3, 3)
	Bias      []float32 // (COut) or nil
}

// NewStridedConv checks the sizes; weight and bias are kept, not copied.
func NewStridedConv(cout, cin int, weight, bias []float32) (*StridedConv, error) {
	if cout <= 0 || cin <= 0 {
		return nil, fmt.Errorf("compute: strided conv: bad shape (%d, %d, 3, 3)", cout, cin)
	}
	if len(weight) != cout*cin*9 {
		return nil, fmt.Errorf("compute: strided conv: weight has %d values, want (%d, %d, 3, 3) = %d", len(weight), cout, cin, cout*cin*9)
	}
	if bias != nil && len(bias) != cout {
		return nil, fmt.Errorf("compute: strided conv: bias has %d values, want %d", len(bias), cout)
	}
	return &StridedConv{COut: cout, CIn: cin, Weight: weight, Bias: bias}, nil
}

// OutputSize is the output size for an h×w input: floor(h/2)×floor(w/2).
func (c *StridedConv) OutputSize(h, w int) (int, int) { return h / 2, w / 2 }

// s2ColBudget bounds the im2col band (float32 values, 8 MiB), as for the
// stride-1 convolutions: memory stays flat at any image size while each band
// is still a wide matrix product.
const s2ColBudget = 1 << 21

// Forward writes dst (COut, h/2, w/2) = conv(src (CIn, h, w)) + bias for one
// image; h and w must be at least 2. col is scratch, grown as needed. It
// panics when a length does not match, since that is a bug in the caller.
func (c *StridedConv) Forward(dst, src []float32, h, w int, col *[]float32) {
	oh, ow := c.OutputSize(h, w)
	if oh < 1 || ow < 1 {
		panic(fmt.Sprintf("compute: StridedConv.Forward: input %dx%d is smaller than 2x2", h, w))
	}
	if len(src) != c.CIn*h*w || len(dst) != c.COut*oh*ow {
		panic(fmt.Sprintf("compute: StridedConv.Forward: src/dst have %d/%d values, want %d/%d", len(src), len(dst), c.CIn*h*w, c.COut*oh*ow))
	}
	kk := c.CIn * 9
	ohw := oh * ow
	for o := 0; o < c.COut; o++ {
		b := float32(0)
		if c.Bias != nil {
			b = c.Bias[o]
		}
		row := dst[o*ohw : (o+1)*ohw]
		for i := range row {
			row[i] = b
		}
	}
	rows := max(1, min(oh, s2ColBudget/(kk*ow)))
	if cap(*col) < kk*rows*ow {
		*col = make([]float32, kk*rows*ow)
	}
	buf := (*col)[:kk*rows*ow]
	for y0 := 0; y0 < oh; y0 += rows {
		r := min(rows, oh-y0)
		np := r * ow
		im2colS2(buf[:kk*np], src, c.CIn, h, w, ow, y0, r)
		Gemm(false, false, c.COut, np, kk, 1, c.Weight, kk, buf, np, 1, dst[y0*ow:], ohw)
	}
}

// im2colS2 fills col (CIn·9 rows × r·ow columns) for output rows [y0, y0+r):
// row (ci, ky, kx) holds input pixel (2y+ky, 2x+kx) of channel ci for every
// output pixel (y, x) of the band, zero past the bottom and right edges (the
// only padding the (0, 1, 0, 1) pad adds).
func im2colS2(col, src []float32, cin, h, w, ow, y0, r int) {
	np := r * ow
	ParallelFunc(cin*3, func(i0, i1 int) {
		for i := i0; i < i1; i++ { // i = ci·3 + ky
			ci, ky := i/3, i%3
			plane := src[ci*h*w : (ci+1)*h*w]
			for kx := 0; kx < 3; kx++ {
				row := col[(i*3+kx)*np : (i*3+kx+1)*np]
				for yy := 0; yy < r; yy++ {
					seg := row[yy*ow : (yy+1)*ow]
					y := 2*(y0+yy) + ky
					if y >= h {
						clear(seg)
						continue
					}
					line := plane[y*w : (y+1)*w]
					// Columns with 2x+kx < w read the image, the rest are the pad.
					xb := min(ow, (w-kx+1)/2)
					for x := 0; x < xb; x++ {
						seg[x] = line[2*x+kx]
					}
					clear(seg[xb:])
				}
			}
		}
	})
}
