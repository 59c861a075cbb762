package vae

import (
	"math"

	"geca/engine/compute"
)

// The layers of the AutoencoderKL decoder, one struct per diffusers module.
// Every forward works on one image, channel-first (C, H, W).

// GroupNorm is torch.nn.GroupNorm (affine), eps 1e-6 throughout the VAE.
type GroupNorm struct {
	Groups int
	Eps    float32
	Weight []float32 // .weight (C)
	Bias   []float32 // .bias (C)
}

func (g *GroupNorm) forward(dst, src []float32, hw int, silu bool) {
	compute.GroupNorm(dst, src, 1, len(g.Weight), hw, g.Groups, g.Weight, g.Bias, g.Eps, silu)
}

// Linear is torch.nn.Linear (or an equivalent 1x1 convolution) applied to
// channel-first data: y (Out, N) = W (Out, In) · x (In, N) + b.
type Linear struct {
	In, Out int
	Weight  []float32 // .weight (Out, In) or (Out, In, 1, 1)
	Bias    []float32 // .bias (Out)
}

// forward writes y = W·x + b, or adds it to y when acc.
func (l *Linear) forward(y, x []float32, n int, acc bool) {
	for o := 0; o < l.Out; o++ {
		row := y[o*n : (o+1)*n]
		b := l.Bias[o]
		if acc {
			for i := range row {
				row[i] += b
			}
		} else {
			for i := range row {
				row[i] = b
			}
		}
	}
	compute.Gemm(false, false, l.Out, n, l.In, 1, l.Weight, l.In, x, n, 1, y, n)
}

// ResnetBlock2D is diffusers' ResnetBlock2D without a time embedding:
// out = shortcut(x) + conv2(SiLU(norm2(conv1(SiLU(norm1(x)))))), where
// shortcut is conv_shortcut (1x1) when the width changes, else identity.
type ResnetBlock2D struct {
	In, Out      int
	Norm1        *GroupNorm    // .norm1
	Conv1        *compute.Conv // .conv1 (3x3)
	Norm2        *GroupNorm    // .norm2
	Conv2        *compute.Conv // .conv2 (3x3)
	ConvShortcut *compute.Conv // .conv_shortcut (1x1), nil when In == Out
}

// forward runs the block on x (In, h, w) using t1, t2 (each at least
// max(In, Out)·h·w) and returns the output (Out, h, w): x itself (updated in
// place) or, with a shortcut conv, t1.
func (r *ResnetBlock2D) forward(x, t1, t2 []float32, h, w int, ws *compute.ConvWorkspace) []float32 {
	hw := h * w
	a := t1[:r.In*hw]
	r.Norm1.forward(a, x[:r.In*hw], hw, true)
	b := t2[:r.Out*hw]
	r.Conv1.Forward(b, a, 1, h, w, false, false, ws)
	r.Norm2.forward(b, b, hw, true)
	out := x[:r.Out*hw]
	if r.ConvShortcut != nil {
		out = t1[:r.Out*hw] // t1 is free again once conv1 has read it
		r.ConvShortcut.Forward(out, x[:r.In*hw], 1, h, w, false, false, ws)
	}
	r.Conv2.Forward(out, b, 1, h, w, false, true, ws)
	return out
}

// Attention is the mid block's single-head spatial self-attention (diffusers
// Attention with heads = 1, dim_head = C, residual connection, group norm):
// x + to_out(softmax(q kᵀ / √C) v), with q, k, v = to_q/to_k/to_v of
// group_norm(x) taken over the H·W positions as tokens.
type Attention struct {
	C         int
	GroupNorm *GroupNorm // .group_norm
	ToQ       *Linear    // .to_q      (older files: .query)
	ToK       *Linear    // .to_k      (.key)
	ToV       *Linear    // .to_v      (.value)
	ToOut     *Linear    // .to_out.0  (.proj_attn)
}

// attnChunk bounds the score matrix (query rows × tokens) in float32 values.
const attnChunk = 1 << 22

// forward updates x (C, n tokens) in place; t (≥ 4·C·n) is scratch.
func (a *Attention) forward(x, t []float32, n int, scores []float32) {
	c := a.C
	xn, q, k, v := t[:c*n], t[c*n:2*c*n], t[2*c*n:3*c*n], t[3*c*n:4*c*n]
	a.GroupNorm.forward(xn, x[:c*n], n, false)
	a.ToQ.forward(q, xn, n, false)
	a.ToK.forward(k, xn, n, false)
	a.ToV.forward(v, xn, n, false)
	o := xn // the normalised input is no longer needed
	scale := float32(1 / math.Sqrt(float64(c)))
	rows := max(1, min(n, len(scores)/n))
	for i0 := 0; i0 < n; i0 += rows {
		m := min(rows, n-i0)
		s := scores[:m*n]
		// s[i, j] = scale · Σ_c q[c, i0+i] k[c, j]
		compute.Gemm(true, false, m, n, c, scale, q[i0:], n, k, n, 0, s, n)
		softmaxRows(s, m, n)
		// o[c, i0+i] = Σ_j v[c, j] s[i, j]
		compute.Gemm(false, true, c, m, n, 1, v, n, s, n, 0, o[i0:], n)
	}
	a.ToOut.forward(x[:c*n], o, n, true)
}

// softmaxRows replaces each of the m rows of s (length n) by its softmax,
// computed in float64 after subtracting the row maximum.
func softmaxRows(s []float32, m, n int) {
	compute.ParallelFunc(m, func(i0, i1 int) {
		for i := i0; i < i1; i++ {
			row := s[i*n : (i+1)*n]
			mx := row[0]
			for _, v := range row {
				if v > mx {
					mx = v
				}
			}
			sum := 0.0
			for j, v := range row {
				e := math.Exp(float64(v - mx))
				row[j] = float32(e)
				sum += e
			}
			inv := 1 / sum
			for j := range row {
				row[j] = float32(float64(row[j]) * inv)
			}
		}
	})
}

// UNetMidBlock2D is resnets.0, attentions.0, resnets.1 at the deepest width.
type UNetMidBlock2D struct {
	Resnets    []*ResnetBlock2D // .resnets.0, .resnets.1
	Attentions []*Attention     // .attentions.0 (empty when mid_block_add_attention is false)
}

// Upsample2D is a nearest 2x upsample followed by a 3x3 convolution; the
// convolution reads the small image directly (no upsampled copy is stored).
type Upsample2D struct {
	Conv *compute.Conv // .conv
}

// UpDecoderBlock2D is layers_per_block+1 resnets, then (except in the last
// block) a 2x upsample.
type UpDecoderBlock2D struct {
	Resnets    []*ResnetBlock2D // .resnets.N
	Upsamplers []*Upsample2D    // .upsamplers.0, absent in the last block
}

// Parameter counts, shared by the encoder's and the decoder's ParamCount.

func convParams(c *compute.Conv) int {
	if c == nil {
		return 0
	}
	return c.Params()
}

func (g *GroupNorm) params() int { return len(g.Weight) + len(g.Bias) }

func (l *Linear) params() int { return len(l.Weight) + len(l.Bias) }

func (r *ResnetBlock2D) params() int {
	return r.Norm1.params() + convParams(r.Conv1) + r.Norm2.params() + convParams(r.Conv2) + convParams(r.ConvShortcut)
}

func (a *Attention) params() int {
	return a.GroupNorm.params() + a.ToQ.params() + a.ToK.params() + a.ToV.params() + a.ToOut.params()
}

func (m *UNetMidBlock2D) params() int {
	n := 0
	for _, r := range m.Resnets {
		n += r.params()
	}
	for _, a := range m.Attentions {
		n += a.params()
	}
	return n
}

// scratch is the working memory of an encoder or decoder, kept between calls:
// three activation buffers of the largest layer's size and, when the mid block
// has attention, its q, k, v and normalised input plus a chunk of scores.
type scratch struct {
	bufs [3][]float32 // activations
	attn []float32    // attention q, k, v and normalised input
	sc   []float32    // attention scores
}

// grow sizes the buffers for activations of need values and, when attnC > 0,
// attention over attnN positions of attnC channels.
func (s *scratch) grow(need, attnC, attnN int) {
	for i := range s.bufs {
		if cap(s.bufs[i]) < need {
			s.bufs[i] = nil // let the old one go before allocating
			s.bufs[i] = make([]float32, need)
		}
		s.bufs[i] = s.bufs[i][:cap(s.bufs[i])]
	}
	if attnC == 0 {
		return
	}
	if cap(s.attn) < 4*attnC*attnN {
		s.attn = make([]float32, 4*attnC*attnN)
	}
	s.attn = s.attn[:cap(s.attn)]
	if n := min(attnN*attnN, max(attnChunk, attnN)); cap(s.sc) < n {
		s.sc = make([]float32, n)
	}
	s.sc = s.sc[:cap(s.sc)]
}

// attnChannels is the width of the mid block's attention, 0 without one.
func (m *UNetMidBlock2D) attnChannels() int {
	if len(m.Attentions) == 0 {
		return 0
	}
	return m.Attentions[0].C
}
