package compute

import "fmt"

// 3x3 convolutions by Winograd's minimal filtering (Lavin & Gray, "Fast
// Algorithms for Convolutional Neural Networks", 2016). An m×m block of
// outputs comes from an (m+2)×(m+2) input tile d:
//
//	Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A
//
// Summed over input channels, the (m+2)² element-wise products become (m+2)²
// matrix products U[ξ] (COut × CIn) · V[ξ] (CIn × tiles). Two sizes:
//
//   - F(2x2, 3x3): 16 products per 4 outputs, 2.25x fewer multiply-adds than
//     a direct or im2col convolution; Bᵀ and Aᵀ hold only 0 and ±1, G only ½.
//     Error at float32 rounding level.
//     Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
//     G  = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]
//     Aᵀ = [1 1 1 0; 0 1 -1 -1]
//   - F(4x4, 3x3): 36 products per 16 outputs, 4x fewer; the transforms use
//     the points 0, ±1, ±2, ∞, so values grow by up to ~100 inside and the
//     error is a few float32 ulps of the inputs' scale (about 1e-6 relative
//     on the decoder, far below its 1e-4 budget).
//     Bᵀ = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0;
//     0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//     G  = [¼ 0 0; -⅙ -⅙ -⅙; -⅙ ⅙ -⅙; 1/24 1/12 ⅙; 1/24 -1/12 ⅙; 0 0 1]
//     Aᵀ = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
//
// The transforms are a few additions per value, done as whole-row loops so
// they stream through memory.

// winoWeights returns U = G g Gᵀ for every (o, i), laid out as (m+2)²
// matrices U[ξ] of COut × CIn, ξ = (m+2)·row + column of the transformed
// filter. It is computed in float64 and rounded once.
func winoWeights(weight []float32, cout, cin, m int) []float32 {
	var g [][3]float64
	switch m {
	case 2:
		g = [][3]float64{{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}}
	case 4:
		g = [][3]float64{{0.25, 0, 0}, {-1.0 / 6, -1.0 / 6, -1.0 / 6}, {-1.0 / 6, 1.0 / 6, -1.0 / 6},
			{1.0 / 24, 1.0 / 12, 1.0 / 6}, {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}}
	default:
		panic(fmt.Sprintf("compute: no Winograd F(%dx%d, 3x3)", m, m))
	}
	a := m + 2
	u := make([]float32, a*a*cout*cin)
	plane := cout * cin
	ParallelFunc(cout, func(o0, o1 int) {
		var t [6][3]float64
		for o := o0; o < o1; o++ {
			for i := 0; i < cin; i++ {
				f := weight[(o*cin+i)*9 : (o*cin+i+1)*9]
				for r := 0; r < a; r++ { // t = G f
					for c := 0; c < 3; c++ {
						t[r][c] = g[r][0]*float64(f[c]) + g[r][1]*float64(f[3+c]) + g[r][2]*float64(f[6+c])
					}
				}
				for r := 0; r < a; r++ { // U = t Gᵀ
					for c := 0; c < a; c++ {
						v := t[r][0]*g[c][0] + t[r][1]*g[c][1] + t[r][2]*g[c][2]
						u[(r*a+c)*plane+o*cin+i] = float32(v)
					}
				}
			}
		}
	})
	return u
}

// winoBudget bounds each of the transformed-input and transformed-output
// buffers (float32 values, 16 MiB): tiles are processed in bands of tile rows.
const winoBudget = 1 << 22

// convWinograd computes one image: dst (COut, H, W) = conv3x3(src) + bias
// (+ dst when s.Accumulate), u from winoWeights(…, m).
func convWinograd(dst, src, u, bias []float32, s Conv2dSpec, m int, ws *ConvWorkspace) {
	if s.K != 3 {
		panic(fmt.Sprintf("compute: Winograd needs K=3, got %d", s.K))
	}
	a2 := (m + 2) * (m + 2)
	th, tw := (s.H+m-1)/m, (s.W+m-1)/m
	rows := winoBudget / (a2 * max(s.CIn, s.COut) * tw)
	rows = max(1, min(rows, th))
	v := ws.buf(a2 * s.CIn * rows * tw)
	if cap(ws.out) < a2*s.COut*rows*tw {
		ws.out = make([]float32, a2*s.COut*rows*tw)
	}
	mo := ws.out[:a2*s.COut*rows*tw]
	for ty0 := 0; ty0 < th; ty0 += rows {
		r := min(rows, th-ty0)
		nt := r * tw
		vb, mb := v[:a2*s.CIn*nt], mo[:a2*s.COut*nt]
		if m == 2 {
			winoInput2(vb, src, s, ty0, r, tw)
		} else {
			winoInput4(vb, src, s, ty0, r, tw)
		}
		for xi := 0; xi < a2; xi++ {
			Gemm(false, false, s.COut, nt, s.CIn, 1,
				u[xi*s.COut*s.CIn:], s.CIn,
				vb[xi*s.CIn*nt:], nt,
				0, mb[xi*s.COut*nt:], nt)
		}
		if m == 2 {
			winoOutput2(dst, mb, bias, s, ty0, r, tw)
		} else {
			winoOutput4(dst, mb, bias, s, ty0, r, tw)
		}
	}
}

// winoRows fills p[j] (j < len(p), each of padded width 1+m·tw+1 or more)
// with input row y0+j of plane, image column x at p[j][x+1], zero outside
// the image; up2x reads the plane through a nearest 2x upsample.
func winoRows(p [][]float32, plane []float32, s Conv2dSpec, y0 int) {
	sw := s.W
	if s.Upsample2x {
		sw = s.W / 2
	}
	for j, row := range p {
		clear(row)
		y := y0 + j
		if y < 0 || y >= s.H {
			continue
		}
		if !s.Upsample2x {
			copy(row[1:1+s.W], plane[y*sw:(y+1)*sw])
			continue
		}
		line := plane[(y/2)*sw : (y/2+1)*sw]
		dst := row[1 : 1+s.W]
		for x, val := range line {
			dst[2*x], dst[2*x+1] = val, val
		}
	}
}

func (s Conv2dSpec) srcPlane() int {
	if s.Upsample2x {
		return (s.H / 2) * (s.W / 2)
	}
	return s.H * s.W
}

// winoInput2 writes V[ξ][i][t] = (Bᵀ d B)[ξ] of F(2x2, 3x3) for the tiles of
// tile rows [ty0, ty0+r): tile (ty, tx) covers input rows 2ty-1 … 2ty+2 and
// columns 2tx-1 … 2tx+2 (the -1 is the padding).
func winoInput2(v, src []float32, s Conv2dSpec, ty0, r, tw int) {
	nt := r * tw
	pw := 2*tw + 2
	stride := s.CIn * nt // between ξ blocks
	ps := s.srcPlane()
	ParallelFunc(s.CIn, func(i0, i1 int) {
		buf := make([]float32, 8*pw)
		p := make([][]float32, 4)
		var e [4][]float32
		for j := 0; j < 4; j++ {
			p[j] = buf[j*pw : (j+1)*pw]
			e[j] = buf[(4+j)*pw : (5+j)*pw]
		}
		for i := i0; i < i1; i++ {
			plane := src[i*ps : (i+1)*ps]
			for tr := 0; tr < r; tr++ {
				winoRows(p, plane, s, 2*(ty0+tr)-1)
				p0, p1, p2, p3 := p[0], p[1][:len(p[0])], p[2][:len(p[0])], p[3][:len(p[0])]
				e0, e1, e2, e3 := e[0][:len(p0)], e[1][:len(p0)], e[2][:len(p0)], e[3][:len(p0)]
				for x := range p0 {
					e0[x] = p0[x] - p2[x]
					e1[x] = p1[x] + p2[x]
					e2[x] = p2[x] - p1[x]
					e3[x] = p1[x] - p3[x]
				}
				at := i*nt + tr*tw
				for j := 0; j < 4; j++ {
					ej := e[j]
					o := at + 4*j*stride
					v0 := v[o : o+tw]
					v1 := v[o+stride : o+stride+tw]
					v2 := v[o+2*stride : o+2*stride+tw]
					v3 := v[o+3*stride : o+3*stride+tw]
					for tx := range v0 {
						c := ej[2*tx : 2*tx+4 : 2*tx+4]
						v0[tx] = c[0] - c[2]
						v1[tx] = c[1] + c[2]
						v2[tx] = c[2] - c[1]
						v3[tx] = c[1] - c[3]
					}
				}
			}
		}
	})
}

// winoOutput2 turns the products M[ξ][o][t] of F(2x2, 3x3) into outputs
// Aᵀ M A, adds the bias (and dst when accumulating) and writes the blocks
// that fall inside the image.
func winoOutput2(dst, m, bias []float32, s Conv2dSpec, ty0, r, tw int) {
	nt := r * tw
	stride := s.COut * nt
	ParallelFunc(s.COut, func(o0, o1 int) {
		buf := make([]float32, 8*tw+2*(2*tw))
		var a [4][2][]float32 // a[j][k] = (q A)[j][k] for every tile of the row
		for j := 0; j < 4; j++ {
			for k := 0; k < 2; k++ {
				a[j][k] = buf[(2*j+k)*tw : (2*j+k+1)*tw]
			}
		}
		rows := [][]float32{buf[8*tw : 10*tw], buf[10*tw : 12*tw]}
		for o := o0; o < o1; o++ {
			b := float32(0)
			if bias != nil {
				b = bias[o]
			}
			for tr := 0; tr < r; tr++ {
				at := o*nt + tr*tw
				for j := 0; j < 4; j++ {
					q0 := m[at+(4*j)*stride : at+(4*j)*stride+tw]
					q1 := m[at+(4*j+1)*stride : at+(4*j+1)*stride+tw]
					q2 := m[at+(4*j+2)*stride : at+(4*j+2)*stride+tw]
					q3 := m[at+(4*j+3)*stride : at+(4*j+3)*stride+tw]
					a0, a1 := a[j][0][:len(q0)], a[j][1][:len(q0)]
					for tx := range q0 {
						a0[tx] = q0[tx] + q1[tx] + q2[tx]
						a1[tx] = q1[tx] - q2[tx] - q3[tx]
					}
				}
				// Aᵀ (q A): output row 0 = a0 + a1 + a2, row 1 = a1 - a2 - a3.
				r0, r1 := rows[0], rows[1]
				for k := 0; k < 2; k++ {
					x0, x1, x2, x3 := a[0][k], a[1][k][:len(a[0][k])], a[2][k][:len(a[0][k])], a[3][k][:len(a[0][k])]
					for tx := range x0 {
						r0[2*tx+k] = x0[tx] + x1[tx] + x2[tx] + b
						r1[2*tx+k] = x1[tx] - x2[tx] - x3[tx] + b
					}
				}
				winoStore(dst, rows, o, 2*(ty0+tr), s)
			}
		}
	})
}

// winoStore writes (or adds, when accumulating) the finished output rows
// starting at image row y of channel o, cropped to the image.
func winoStore(dst []float32, rows [][]float32, o, y int, s Conv2dSpec) {
	plane := dst[o*s.H*s.W : (o+1)*s.H*s.W]
	for j := 0; j < len(rows) && y+j < s.H; j++ {
		line := plane[(y+j)*s.W : (y+j+1)*s.W]
		src := rows[j][:len(line)]
		if s.Accumulate {
			for x := range line {
				line[x] += src[x]
			}
		} else {
			copy(line, src)
		}
	}
}

// winoInput4 is winoInput2 for F(4x4, 3x3): tile (ty, tx) covers input rows
// 4ty-1 … 4ty+4 and columns 4tx-1 … 4tx+4.
func winoInput4(v, src []float32, s Conv2dSpec, ty0, r, tw int) {
	nt := r * tw
	pw := 4*tw + 2
	stride := s.CIn * nt
	ps := s.srcPlane()
	ParallelFunc(s.CIn, func(i0, i1 int) {
		buf := make([]float32, 12*pw)
		p := make([][]float32, 6)
		var e [6][]float32
		for j := 0; j < 6; j++ {
			p[j] = buf[j*pw : (j+1)*pw]
			e[j] = buf[(6+j)*pw : (7+j)*pw]
		}
		for i := i0; i < i1; i++ {
			plane := src[i*ps : (i+1)*ps]
			for tr := 0; tr < r; tr++ {
				winoRows(p, plane, s, 4*(ty0+tr)-1)
				// Bᵀ d down the columns, for every column of the row at once.
				d0 := p[0]
				d1, d2, d3, d4, d5 := p[1][:len(d0)], p[2][:len(d0)], p[3][:len(d0)], p[4][:len(d0)], p[5][:len(d0)]
				e0, e1, e2, e3, e4, e5 := e[0][:len(d0)], e[1][:len(d0)], e[2][:len(d0)], e[3][:len(d0)], e[4][:len(d0)], e[5][:len(d0)]
				for x := range d0 {
					a, b := d4[x]-4*d2[x], d3[x]-4*d1[x]
					c, dd := d4[x]-d2[x], 2*(d3[x]-d1[x])
					e0[x] = 4*d0[x] - 5*d2[x] + d4[x]
					e1[x] = a + b
					e2[x] = a - b
					e3[x] = c + dd
					e4[x] = c - dd
					e5[x] = 4*d1[x] - 5*d3[x] + d5[x]
				}
				// (Bᵀ d) B along the row, six columns per tile, stride 4.
				at := i*nt + tr*tw
				for j := 0; j < 6; j++ {
					ej := e[j]
					o := at + 6*j*stride
					v0 := v[o : o+tw]
					v1 := v[o+stride : o+stride+tw]
					v2 := v[o+2*stride : o+2*stride+tw]
					v3 := v[o+3*stride : o+3*stride+tw]
					v4 := v[o+4*stride : o+4*stride+tw]
					v5 := v[o+5*stride : o+5*stride+tw]
					for tx := range v0 {
						c := ej[4*tx : 4*tx+6 : 4*tx+6]
						a, b := c[4]-4*c[2], c[3]-4*c[1]
						g, h := c[4]-c[2], 2*(c[3]-c[1])
						v0[tx] = 4*c[0] - 5*c[2] + c[4]
						v1[tx] = a + b
						v2[tx] = a - b
						v3[tx] = g + h
						v4[tx] = g - h
						v5[tx] = 4*c[1] - 5*c[3] + c[5]
					}
				}
			}
		}
	})
}

// winoOutput4 is winoOutput2 for F(4x4, 3x3): for six values q,
// Aᵀq = (q0+q1+q2+q3+q4, q1−q2+2(q3−q4), q1+q2+4(q3+q4), q1−q2+8(q3−q4)+q5).
func winoOutput4(dst, m, bias []float32, s Conv2dSpec, ty0, r, tw int) {
	nt := r * tw
	stride := s.COut * nt
	ParallelFunc(s.COut, func(o0, o1 int) {
		buf := make([]float32, 24*tw+4*(4*tw))
		var a [6][4][]float32 // a[j][k] = (q A)[j][k] for every tile of the row
		for j := 0; j < 6; j++ {
			for k := 0; k < 4; k++ {
				a[j][k] = buf[(4*j+k)*tw : (4*j+k+1)*tw]
			}
		}
		rows := make([][]float32, 4)
		for k := range rows {
			rows[k] = buf[24*tw+k*4*tw : 24*tw+(k+1)*4*tw]
		}
		for o := o0; o < o1; o++ {
			b := float32(0)
			if bias != nil {
				b = bias[o]
			}
			for tr := 0; tr < r; tr++ {
				at := o*nt + tr*tw
				for j := 0; j < 6; j++ {
					base := at + 6*j*stride
					q0 := m[base : base+tw]
					q1 := m[base+stride : base+stride+tw]
					q2 := m[base+2*stride : base+2*stride+tw]
					q3 := m[base+3*stride : base+3*stride+tw]
					q4 := m[base+4*stride : base+4*stride+tw]
					q5 := m[base+5*stride : base+5*stride+tw]
					a0, a1, a2, a3 := a[j][0][:len(q0)], a[j][1][:len(q0)], a[j][2][:len(q0)], a[j][3][:len(q0)]
					for tx := range q0 {
						s12, d12 := q1[tx]+q2[tx], q1[tx]-q2[tx]
						s34, d34 := q3[tx]+q4[tx], q3[tx]-q4[tx]
						a0[tx] = q0[tx] + s12 + s34
						a1[tx] = d12 + 2*d34
						a2[tx] = s12 + 4*s34
						a3[tx] = d12 + 8*d34 + q5[tx]
					}
				}
				// Aᵀ (q A) down the columns: output row k of every tile.
				for k := 0; k < 4; k++ {
					x0 := a[0][k]
					x1, x2, x3, x4, x5 := a[1][k][:len(x0)], a[2][k][:len(x0)], a[3][k][:len(x0)], a[4][k][:len(x0)], a[5][k][:len(x0)]
					r0, r1, r2, r3 := rows[0], rows[1], rows[2], rows[3]
					for tx := range x0 {
						s12, d12 := x1[tx]+x2[tx], x1[tx]-x2[tx]
						s34, d34 := x3[tx]+x4[tx], x3[tx]-x4[tx]
						c := 4*tx + k
						r0[c] = x0[tx] + s12 + s34 + b
						r1[c] = d12 + 2*d34 + b
						r2[c] = s12 + 4*s34 + b
						r3[c] = d12 + 8*d34 + x5[tx] + b
					}
				}
				winoStore(dst, rows, o, 4*(ty0+tr), s)
			}
		}
	})
}
