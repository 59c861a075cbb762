package compute

import "fmt"

// 3x3 convolutions by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray,
// "Fast Algorithms for Convolutional Neural Networks", 2016). Each 2x2 block
// of outputs comes from a 4x4 input tile d:
//
//	Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A
//
// with
//
//	Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
//	G  = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]
//	Aᵀ = [1 1 1 0; 0 1 -1 -1]
//
// Summed over input channels, the 16 element-wise products become 16 matrix
// products U[ξ] (COut × CIn) · V[ξ] (CIn × tiles), which need 16/36 = 1/2.25
// of the multiply-adds of im2col. Bᵀ and Aᵀ hold only 0 and ±1, so the
// transforms are a handful of additions per value; the decoder is therefore
// about twice as fast, and its error stays at float32 rounding level (the
// factors ½ are exact).

// winoWeights returns U = G g Gᵀ for every (o, i), laid out as 16 matrices
// U[ξ] of COut × CIn, ξ = 4·row + column of the 4x4 transformed filter.
func winoWeights(weight []float32, cout, cin int) []float32 {
	u := make([]float32, 16*cout*cin)
	plane := cout * cin
	for o := 0; o < cout; o++ {
		for i := 0; i < cin; i++ {
			g := weight[(o*cin+i)*9 : (o*cin+i+1)*9]
			// t = G g (4x3), then U = t Gᵀ (4x4).
			var t [4][3]float32
			for c := 0; c < 3; c++ {
				g0, g1, g2 := g[c], g[3+c], g[6+c]
				t[0][c] = g0
				t[1][c] = 0.5 * (g0 + g1 + g2)
				t[2][c] = 0.5 * (g0 - g1 + g2)
				t[3][c] = g2
			}
			for r := 0; r < 4; r++ {
				g0, g1, g2 := t[r][0], t[r][1], t[r][2]
				base := 4*r*plane + o*cin + i
				u[base] = g0
				u[base+plane] = 0.5 * (g0 + g1 + g2)
				u[base+2*plane] = 0.5 * (g0 - g1 + g2)
				u[base+3*plane] = g2
			}
		}
	}
	return u
}

// winoBudget bounds each of the transformed-input and transformed-output
// buffers (float32 values, 16 MiB): tiles are processed in bands of tile rows.
const winoBudget = 1 << 22

// conv3x3Winograd computes one image: dst (COut, H, W) = conv3x3(src) + bias
// (+ dst when s.Accumulate), u from winoWeights.
func conv3x3Winograd(dst, src, u, bias []float32, s Conv2dSpec, ws *ConvWorkspace) {
	if s.K != 3 {
		panic(fmt.Sprintf("compute: Winograd F(2x2,3x3) needs K=3, got %d", s.K))
	}
	th, tw := (s.H+1)/2, (s.W+1)/2
	rows := winoBudget / (16 * max(s.CIn, s.COut) * tw)
	rows = max(1, min(rows, th))
	v := ws.buf(16 * s.CIn * rows * tw)
	if cap(ws.out) < 16*s.COut*rows*tw {
		ws.out = make([]float32, 16*s.COut*rows*tw)
	}
	m := ws.out[:16*s.COut*rows*tw]
	for ty0 := 0; ty0 < th; ty0 += rows {
		r := min(rows, th-ty0)
		nt := r * tw
		winoInput(v[:16*s.CIn*nt], src, s, ty0, r, tw)
		vb, mb := v[:16*s.CIn*nt], m[:16*s.COut*nt]
		for xi := 0; xi < 16; xi++ {
			Gemm(false, false, s.COut, nt, s.CIn, 1,
				u[xi*s.COut*s.CIn:], s.CIn,
				vb[xi*s.CIn*nt:], nt,
				0, mb[xi*s.COut*nt:], nt)
		}
		winoOutput(dst, mb, bias, s, ty0, r, tw)
	}
}

// winoInput writes V[ξ][i][t] = (Bᵀ d B)[ξ] for the input tiles of tile rows
// [ty0, ty0+r): tile (ty, tx) covers input rows 2ty-1 … 2ty+2 and columns
// 2tx-1 … 2tx+2 (the -1 is the padding), zero outside the image. Each tile row
// is done as whole-row loops: Bᵀ on four padded input rows, then B along the
// row, so every loop streams through memory.
func winoInput(v, src []float32, s Conv2dSpec, ty0, r, tw int) {
	nt := r * tw
	sh, sw := s.H, s.W
	if s.Upsample2x {
		sh, sw = s.H/2, s.W/2
	}
	pw := 2*tw + 2       // padded row: column x of the image is at x+1
	stride := s.CIn * nt // between ξ blocks
	convParallel(s.CIn, func(i0, i1 int) {
		buf := make([]float32, 8*pw)
		var p, e [4][]float32
		for j := 0; j < 4; j++ {
			p[j] = buf[j*pw : (j+1)*pw]
			e[j] = buf[(4+j)*pw : (5+j)*pw]
		}
		for i := i0; i < i1; i++ {
			plane := src[i*sh*sw : (i+1)*sh*sw]
			for tr := 0; tr < r; tr++ {
				y0 := 2*(ty0+tr) - 1
				for j := 0; j < 4; j++ {
					row := p[j]
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

// winoOutput turns the products M[ξ][o][t] of tile rows [ty0, ty0+r) into
// outputs Aᵀ M A, adds the bias (and dst when accumulating) and writes the
// 2x2 blocks that fall inside the image, one tile row at a time.
func winoOutput(dst, m, bias []float32, s Conv2dSpec, ty0, r, tw int) {
	nt := r * tw
	stride := s.COut * nt
	convParallel(s.COut, func(o0, o1 int) {
		buf := make([]float32, 8*tw+2*(2*tw))
		var a [4][2][]float32 // a[j][k] = (q A)[j][k] for every tile of the row
		for j := 0; j < 4; j++ {
			for k := 0; k < 2; k++ {
				a[j][k] = buf[(2*j+k)*tw : (2*j+k+1)*tw]
			}
		}
		rows := [2][]float32{buf[8*tw : 10*tw], buf[10*tw : 12*tw]}
		for o := o0; o < o1; o++ {
			b := float32(0)
			if bias != nil {
				b = bias[o]
			}
			plane := dst[o*s.H*s.W : (o+1)*s.H*s.W]
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
				y := 2 * (ty0 + tr)
				for j := 0; j < 2 && y+j < s.H; j++ {
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
		}
	})
}
