package engine

import (
	"math"

	"geca/engine/compute"
)

// The GeCA module tree as the official geca.py builds it, and its forward
// pass written the way the model is described (docs/model.md §3–§4): embed,
// add the positional code, modulate, 3x3 local attention, gated residual,
// MLP, gated residual, final layer, masked residual. It is generic over the
// element type: the trainer runs it in float32 (and float64 for its gradient
// checks) and keeps what it computes for its backward pass; the engine's fast
// path, the Updater, computes the same update fused and sparse, and a test
// holds both to the same results on the golden fixtures.

// Float is the element type of a module tree.
type Float = compute.Float

// Param is one tensor of the state dict: its description, its values and,
// when training, its gradient.
type Param[T Float] struct {
	ParamSpec
	W []T // the values, row-major in Shape
	G []T // the gradient (nil outside training)
}

// Linear is torch.nn.Linear: y = x·Wᵀ + b, W stored as Out rows of In values.
type Linear[T Float] struct {
	Weight *Param[T] // (Out, In)
	Bias   *Param[T] // (Out), or nil (to_qkv has none)
	In     int
	Out    int
}

// W returns the weight matrix (Out×In, row-major).
func (l *Linear[T]) W() []T { return l.Weight.W }

// B returns the bias, or nil.
func (l *Linear[T]) B() []T {
	if l.Bias == nil {
		return nil
	}
	return l.Bias.W
}

// Forward computes y = x·Wᵀ + b for rows rows of x.
func (l *Linear[T]) Forward(y, x []T, rows int) {
	in, out, w, bias := l.In, l.Out, l.W(), l.B()
	compute.ParallelFor(rows, LinearRowBlock, func(lo, hi int) {
		beta := T(0)
		if bias != nil {
			for r := lo; r < hi; r++ {
				copy(y[r*out:(r+1)*out], bias)
			}
			beta = 1
		}
		compute.GemmT(false, true, hi-lo, out, in, 1, x[lo*in:], in, w, in, beta, y[lo*out:], out)
	})
}

// LinearRowBlock is the smallest row range Linear.Forward (and the trainer's
// backward pass) splits a product into: each goroutine runs its own
// single-threaded product on a block of rows, which keeps all cores busy
// without the BLAS's threads fighting ours.
const LinearRowBlock = 512

// LayerNorm is torch.nn.LayerNorm over the last dimension, with the
// population variance. Weight and Bias are nil for the final layer's norm,
// which has no affine part.
type LayerNorm[T Float] struct {
	Weight *Param[T] // γ (Dim), or nil
	Bias   *Param[T] // β (Dim), or nil
	Dim    int
	Eps    float64
}

// W returns γ, or nil.
func (n *LayerNorm[T]) W() []T {
	if n.Weight == nil {
		return nil
	}
	return n.Weight.W
}

// B returns β, or nil.
func (n *LayerNorm[T]) B() []T {
	if n.Bias == nil {
		return nil
	}
	return n.Bias.W
}

// Normalize writes x̂ = (x − mean)/√(var + ε) of rows rows of x, and 1/√(var
// + ε) of each row. The affine part, γ·x̂ + β, is applied by Modulate with
// the modulation, as the block applies both in one pass.
func (n *LayerNorm[T]) Normalize(xhat, rstd, x []T, rows int) {
	d, eps := n.Dim, n.Eps
	compute.ParallelFor(rows, 64, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := x[r*d : (r+1)*d]
			var mean float64
			for _, v := range row {
				mean += float64(v)
			}
			mean /= float64(d)
			var v2 float64
			for _, v := range row {
				dv := float64(v) - mean
				v2 += dv * dv
			}
			rs := 1 / math.Sqrt(v2/float64(d)+eps)
			rstd[r] = T(rs)
			out := xhat[r*d : (r+1)*d]
			for k, v := range row {
				out[k] = T((float64(v) - mean) * rs)
			}
		}
	})
}

// TimestepEmbedder is t_embedder (docs/model.md §4.1).
type TimestepEmbedder[T Float] struct {
	MLP0, MLP2 Linear[T]
}

// Forward computes temb = MLP2(SiLU(MLP0(features))) for rows samples; h
// receives MLP0's output.
func (e *TimestepEmbedder[T]) Forward(temb, h, features []T, rows int) {
	e.MLP0.Forward(h, features, rows)
	s := make([]T, len(h))
	for i, v := range h[:rows*e.MLP0.Out] {
		s[i] = T(compute.SiLU64(float64(v)))
	}
	e.MLP2.Forward(temb, s, rows)
}

// LabelEmbedder is y_embedder (docs/model.md §4.2): two Linears with no
// activation between them.
type LabelEmbedder[T Float] struct {
	Table0, Table1 Linear[T]
}

// Forward computes yemb = Table1(Table0(y)) for rows samples; h receives
// Table0's output.
func (e *LabelEmbedder[T]) Forward(yemb, h, y []T, rows int) {
	e.Table0.Forward(h, y, rows)
	e.Table1.Forward(yemb, h, rows)
}

// Attention is transformer.layers.0.0: its input norm (a PreNorm in the
// official code, modulated here), the bias-free Q/K/V projection, the 3x3
// local attention and the output projection.
type Attention[T Float] struct {
	Norm  LayerNorm[T]
	ToQKV Linear[T]
	ToOut Linear[T]
	Heads int
	Grid  Config // the grid the 3x3 windows lie on (GridH, GridW)
}

// FeedForward is transformer.layers.0.1: its input norm and the MLP
// Net3(GELU(Net0(·))) with the exact GELU.
type FeedForward[T Float] struct {
	Norm       LayerNorm[T]
	Net0, Net3 Linear[T]
}

// Block is transformer: one block whose attention and MLP share the adaLN
// modulation AdaLN (BlockChunks chunks: ShiftAttn … GateMLP).
type Block[T Float] struct {
	Attn  Attention[T]
	FF    FeedForward[T]
	AdaLN Linear[T]
}

// FinalLayer is final_layer: LN_f (no affine part), modulated by its own
// AdaLN (FinalShift, FinalScale), then Linear to the update of C_out and
// C_h.
type FinalLayer[T Float] struct {
	Norm   LayerNorm[T]
	Linear Linear[T]
	AdaLN  Linear[T]
}

// GeCA is the module tree of the official GeCA class, with the positional
// code its cell embedding adds.
type GeCA[T Float] struct {
	Cfg Config

	TEmbedder       TimestepEmbedder[T]
	YEmbedder       LabelEmbedder[T]
	CellToEmbedding Linear[T]
	Transformer     Block[T]
	FinalLayer      FinalLayer[T]

	PE   []T         // (H·W)×D positional code (docs/model.md §2.2)
	List []*Param[T] // every tensor, in state-dict order
}

// NewGeCA builds the module tree of config c (which must be valid) from the
// description (Modules, Params). values returns the storage of each tensor
// (of its Size), in state-dict order.
func NewGeCA[T Float](c Config, values func(ParamSpec) []T) *GeCA[T] {
	g := &GeCA[T]{Cfg: c}
	params := Params(c)
	next := 0
	take := func() *Param[T] {
		p := &Param[T]{ParamSpec: params[next], W: values(params[next])}
		next++
		g.List = append(g.List, p)
		return p
	}
	for _, m := range Modules(c) {
		switch m.Kind {
		case KindLinear:
			l := g.Linear(m.Module)
			*l = Linear[T]{Weight: take(), In: m.In, Out: m.Out}
			if m.Bias {
				l.Bias = take()
			}
		case KindLayerNorm:
			n := g.Norm(m.Module)
			*n = LayerNorm[T]{Dim: m.In, Eps: m.Eps}
			if m.Bias {
				n.Weight, n.Bias = take(), take()
			}
		}
	}
	g.Transformer.Attn.Heads = c.Heads
	g.Transformer.Attn.Grid = Config{GridH: c.GridH, GridW: c.GridW}
	pe := PositionalCode(c)
	g.PE = make([]T, len(pe))
	for i, v := range pe {
		g.PE[i] = T(v)
	}
	return g
}

// Linear returns the Linear module m of the tree (the one place that says
// where each module of the description sits in the tree).
func (g *GeCA[T]) Linear(m Module) *Linear[T] {
	switch m {
	case TEmbedderMLP0:
		return &g.TEmbedder.MLP0
	case TEmbedderMLP2:
		return &g.TEmbedder.MLP2
	case YEmbedderTable0:
		return &g.YEmbedder.Table0
	case YEmbedderTable1:
		return &g.YEmbedder.Table1
	case CellToEmbedding:
		return &g.CellToEmbedding
	case TransformerAttnToQKV:
		return &g.Transformer.Attn.ToQKV
	case TransformerAttnToOut:
		return &g.Transformer.Attn.ToOut
	case TransformerFFNet0:
		return &g.Transformer.FF.Net0
	case TransformerFFNet3:
		return &g.Transformer.FF.Net3
	case TransformerAdaLN:
		return &g.Transformer.AdaLN
	case FinalLayerLinear:
		return &g.FinalLayer.Linear
	case FinalLayerAdaLN:
		return &g.FinalLayer.AdaLN
	}
	panic("engine: module " + m.Key() + " is not a Linear")
}

// Norm returns the LayerNorm module m of the tree.
func (g *GeCA[T]) Norm(m Module) *LayerNorm[T] {
	switch m {
	case TransformerAttnNorm:
		return &g.Transformer.Attn.Norm
	case TransformerFFNorm:
		return &g.Transformer.FF.Norm
	case FinalLayerNorm:
		return &g.FinalLayer.Norm
	}
	panic("engine: module " + m.Key() + " is not a LayerNorm")
}

// Modulation is a batch's adaLN modulation: chunk k of sample b is
// Vec[(b·Chunks + k)·Dim : … + Dim].
type Modulation[T Float] struct {
	Vec         []T
	Chunks, Dim int
}

// Chunk returns chunk k of sample b.
func (m Modulation[T]) Chunk(b, k int) []T {
	o := (b*m.Chunks + k) * m.Dim
	return m.Vec[o : o+m.Dim : o+m.Dim]
}

// Conditioning is what a denoiser call computes from (t, y) once
// (docs/model.md §4.1–§4.2, §3 steps 3 and 9), with the intermediate values
// the backward pass needs.
type Conditioning[T Float] struct {
	B        int
	Features []T // B×256 sinusoidal features of t
	TH       []T // B×D the timestep MLP's hidden layer, before SiLU
	TEmb     []T // B×D temb
	Y        []T // B×K the labels
	YH       []T // B×D the label embedding's hidden layer
	C        []T // B×D c = temb + yemb
	SiLUC    []T // B×D SiLU(c)
	Mod      []T // B×6D the block's modulation
	FinalMod []T // B×2D the final layer's modulation
}

// NewConditioning allocates the conditioning of b samples.
func NewConditioning[T Float](c Config, b int) *Conditioning[T] {
	d := c.EmbedDim
	mk := func(n int) []T { return make([]T, n) }
	return &Conditioning[T]{B: b, Features: mk(b * TimestepFeatures), TH: mk(b * d), TEmb: mk(b * d), Y: mk(b * c.NumClasses),
		YH: mk(b * d), C: mk(b * d), SiLUC: mk(b * d), Mod: mk(b * BlockChunks * d), FinalMod: mk(b * FinalChunks * d)}
}

// SetTimesteps writes the sinusoidal features of t (one per sample).
func (c *Conditioning[T]) SetTimesteps(t []int) {
	var f [TimestepFeatures]float32
	for i, ti := range t {
		TimestepCode(f[:], ti)
		for k, v := range f {
			c.Features[i*TimestepFeatures+k] = T(v)
		}
	}
}

// BlockMod is the block's modulation.
func (c *Conditioning[T]) BlockMod() Modulation[T] {
	return Modulation[T]{Vec: c.Mod, Chunks: BlockChunks, Dim: len(c.C) / c.B}
}

// FinalModulation is the final layer's modulation.
func (c *Conditioning[T]) FinalModulation() Modulation[T] {
	return Modulation[T]{Vec: c.FinalMod, Chunks: FinalChunks, Dim: len(c.C) / c.B}
}

// Condition computes c = temb(t) + yemb(y) and both modulations from
// c.Features (SetTimesteps) and the labels y (B×K multi-hot floats).
func (g *GeCA[T]) Condition(c *Conditioning[T], y []T) {
	b := c.B
	copy(c.Y, y)
	g.TEmbedder.Forward(c.TEmb, c.TH, c.Features, b)
	g.YEmbedder.Forward(c.C, c.YH, c.Y, b)
	for i := range c.C {
		c.C[i] += c.TEmb[i]
		c.SiLUC[i] = T(compute.SiLU64(float64(c.C[i])))
	}
	g.Transformer.AdaLN.Forward(c.Mod, c.SiLUC, b)
	g.FinalLayer.AdaLN.Forward(c.FinalMod, c.SiLUC, b)
}

// Rows is a set of rows of a batch of states (row r = b·N + n is cell n of
// sample b), in ascending order: every row (Idx nil) or the cells that
// update. Start[b] is the position of sample b's first row, Start[B] the
// count.
//
// Only the cells that update need the attention output, the MLP and the
// final layer (the update of the others is multiplied by 0); every cell
// needs its keys and values, so the embedding, LN₁ and Q/K/V run on all
// rows. With the official update rate 0.5 this halves most of the work.
type Rows struct {
	Idx   []int32
	Start []int
	N     int // cells per sample
}

// AllRows is every row of b samples of n cells.
func AllRows(b, n int) Rows {
	rs := Rows{Start: make([]int, b+1), N: n}
	for i := range rs.Start {
		rs.Start[i] = i * n
	}
	return rs
}

// Count is the number of rows.
func (rs *Rows) Count() int { return rs.Start[len(rs.Start)-1] }

// Row returns the i-th row.
func (rs *Rows) Row(i int) int {
	if rs.Idx == nil {
		return i
	}
	return int(rs.Idx[i])
}

// Activations is what one cell update computes (docs/model.md §3) that a
// backward pass needs. Cheap element-wise results (the modulated
// LayerNorm outputs' inputs, the GELU) are kept or recomputed as the
// backward pass prefers. X, XHat1, RStd1, A1 and QKV cover every row; the
// rest the active rows only, in the order of Active.
type Activations[T Float] struct {
	X                   []T // R×Cd the state before the update
	XHat1, XHat2, XHatF []T // normalised inputs of LN₁, LN₂, LN_f
	RStd1, RStd2, RStdF []T // their 1/√(var + ε)
	A1, A2, AF          []T // modulated norms: the inputs of Q/K/V, the MLP and the final linear
	QKV                 []T // R×3D
	P                   []T // heads×9 attention weights per active row
	O                   []T // the attention's output, heads merged
	Attn                []T // its output projection
	H                   []T // the MLP's hidden layer before GELU
	Phi                 []T // Φ(H), so that GELU(H) = H·Φ(H) and its derivative need no second erf
	Y                   []T // the MLP's output

	Active Rows    // the rows that update
	Pos    []int32 // row → position in Active, or −1
}

// NewActivations allocates the activations of an update of b samples.
func NewActivations[T Float](c Config, b int) *Activations[T] {
	r, d, mlp := b*c.Cells(), c.EmbedDim, c.MLPDim
	mk := func(n int) []T { return make([]T, n) }
	return &Activations[T]{
		X: mk(r * c.CellDim()), XHat1: mk(r * d), XHat2: mk(r * d), XHatF: mk(r * d),
		RStd1: mk(r), RStd2: mk(r), RStdF: mk(r), A1: mk(r * d), A2: mk(r * d), AF: mk(r * d),
		QKV: mk(r * 3 * d), P: mk(r * c.Heads * 9), O: mk(r * d), Attn: mk(r * d),
		H: mk(r * mlp), Phi: mk(r * mlp), Y: mk(r * d),
		Active: Rows{Idx: make([]int32, 0, r), Start: make([]int, b+1), N: c.Cells()}, Pos: make([]int32, r),
	}
}

// SetActive records which rows update (mask ≠ 0; nil: all).
func (a *Activations[T]) SetActive(mask []T) {
	act, n := &a.Active, a.Active.N
	act.Idx = act.Idx[:0]
	b := len(act.Start) - 1
	for s := 0; s < b; s++ {
		act.Start[s] = len(act.Idx)
		for r := s * n; r < (s+1)*n; r++ {
			if mask == nil || mask[r] != 0 {
				a.Pos[r] = int32(len(act.Idx))
				act.Idx = append(act.Idx, int32(r))
			} else {
				a.Pos[r] = -1
			}
		}
	}
	act.Start[b] = len(act.Idx)
}

// Workspace is scratch an update needs and does not keep.
type Workspace[T Float] struct {
	E0 []T // R×D the embedding of every cell
	E  []T // R×D the residual stream of the active cells
	G  []T // R×mlp GELU(H)
	U  []T // R×update_dim the update of the active cells
}

// NewWorkspace allocates the scratch of an update of b samples.
func NewWorkspace[T Float](c Config, b int) *Workspace[T] {
	r := b * c.Cells()
	return &Workspace[T]{E0: make([]T, r*c.EmbedDim), E: make([]T, r*c.EmbedDim), G: make([]T, r*c.MLPDim), U: make([]T, r*c.UpdateDim())}
}

// Forward is one denoiser call (docs/model.md §4.4), as GeCA.forward
// computes it: the conditioning of the timesteps t and labels y (B×K), then
// one cell update per mask (B·N values in {0, 1}; nil: every cell) of the
// states s (B·N cells of CellDim channels, cell-major), in place. It keeps
// nothing for a backward pass (the trainer's Net does); the fast path,
// Updater.Call, computes the same.
func (g *GeCA[T]) Forward(s []T, t []int, y []T, masks [][]T) {
	b := len(t)
	c := NewConditioning[T](g.Cfg, b)
	c.SetTimesteps(t)
	g.Condition(c, y)
	a, ws := NewActivations[T](g.Cfg, b), NewWorkspace[T](g.Cfg, b)
	for _, mask := range masks {
		copy(a.X, s)
		g.Update(a, ws, c, mask, s)
	}
}

// Update is one cell update (docs/model.md §3) of the state a.X into next:
// the cells with mask 1 (nil: all) add the update to their C_out and C_h.
// a keeps what the update computed.
func (g *GeCA[T]) Update(a *Activations[T], ws *Workspace[T], c *Conditioning[T], mask []T, next []T) {
	cfg := g.Cfg
	r, d := c.B*cfg.Cells(), cfg.EmbedDim
	a.SetActive(mask)
	// Steps 1–2: embed every cell (all are keys) and add the positional code.
	e0 := ws.E0[:r*d]
	g.CellToEmbedding.Forward(e0, a.X, r)
	g.addPositional(e0, r)
	// Steps 4–8: the block, on the cells that update (step 3, the modulation,
	// is part of the conditioning c).
	e := g.Transformer.Forward(a, ws, c, e0)
	// Step 9: the final layer.
	g.FinalLayer.Forward(ws.U, a, c, e)
	// Steps 10–11: the masked residual; C_in is kept.
	applyUpdate(next, a.X, ws.U, mask, &a.Active, cfg.CellDim(), cfg.InChannels, cfg.UpdateDim())
}

// addPositional adds the positional code to rows rows of embeddings.
func (g *GeCA[T]) addPositional(e []T, rows int) {
	d, n := g.Cfg.EmbedDim, g.Cfg.Cells()
	compute.ParallelFor(rows, 256, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			pe := g.PE[(r%n)*d : (r%n+1)*d]
			row := e[r*d : (r+1)*d]
			for k := range row {
				row[k] += pe[k]
			}
		}
	})
}

// Forward is the block (steps 4–8) on the embedded cells e0 (every row):
//
//	E = E0 + gate_attn ⊙ Attention(modulate(LN₁(E0), shift_attn, scale_attn))
//	E = E + gate_mlp ⊙ MLP(modulate(LN₂(E), shift_mlp, scale_mlp))
//
// for the active rows, whose E it returns (in ws.E, in the order of
// a.Active).
func (b *Block[T]) Forward(a *Activations[T], ws *Workspace[T], c *Conditioning[T], e0 []T) []T {
	mod, act := c.BlockMod(), &a.Active
	d := b.Attn.Norm.Dim
	b.Attn.Forward(a, mod, e0)
	e := ws.E
	compute.ParallelFor(act.Count(), 256, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			r := act.Row(i)
			copy(e[i*d:(i+1)*d], e0[r*d:(r+1)*d])
		}
	})
	GatedResidual(e, a.Attn, mod, GateAttn, act)
	b.FF.Forward(a, ws, mod, e)
	GatedResidual(e, a.Y, mod, GateMLP, act)
	return e
}

// Forward computes the attention of the active rows (steps 4–7 without the
// residual): A1 = modulate(LN₁(E0)) and Q/K/V of every row (all are keys and
// values), then the 3x3 local attention and the output projection of the
// active rows, into a.Attn.
func (at *Attention[T]) Forward(a *Activations[T], mod Modulation[T], e0 []T) {
	all := AllRows(len(a.Active.Start)-1, a.Active.N)
	rows, active := all.Count(), a.Active.Count()
	at.Norm.Normalize(a.XHat1, a.RStd1, e0, rows)
	Modulate(a.A1, a.XHat1, &at.Norm, mod, ShiftAttn, ScaleAttn, &all)
	at.ToQKV.Forward(a.QKV, a.A1, rows)
	at.LocalAttention(a)
	at.ToOut.Forward(a.Attn, a.O, active)
}

// Forward computes the MLP of the active rows of the residual stream e
// (step 8 without the residual): Y = Net3(GELU(Net0(modulate(LN₂(e))))).
func (f *FeedForward[T]) Forward(a *Activations[T], ws *Workspace[T], mod Modulation[T], e []T) {
	act := &a.Active
	n, mlp := act.Count(), f.Net0.Out
	f.Norm.Normalize(a.XHat2, a.RStd2, e, n)
	Modulate(a.A2, a.XHat2, &f.Norm, mod, ShiftMLP, ScaleMLP, act)
	f.Net0.Forward(a.H, a.A2, n)
	GELU(ws.G[:n*mlp], a.Phi[:n*mlp], a.H[:n*mlp])
	f.Net3.Forward(a.Y, ws.G, n)
}

// Forward computes the update U = Linear(modulate(LN_f(e), shift, scale)) of
// the active rows of the residual stream e (step 9).
func (fl *FinalLayer[T]) Forward(u []T, a *Activations[T], c *Conditioning[T], e []T) {
	act := &a.Active
	n := act.Count()
	fl.Norm.Normalize(a.XHatF, a.RStdF, e, n)
	Modulate(a.AF, a.XHatF, &fl.Norm, c.FinalModulation(), FinalShift, FinalScale, act)
	fl.Linear.Forward(u, a.AF, n)
}

// Modulate writes a = (x̂·γ + β)·(1 + scale) + shift for the rows of rs (γ,
// β: norm's affine part, if it has one), with shift and scale the chunks
// shiftC and scaleC of each row's sample.
func Modulate[T Float](a, xhat []T, norm *LayerNorm[T], mod Modulation[T], shiftC, scaleC int, rs *Rows) {
	d, n := mod.Dim, rs.N
	g, beta := norm.W(), norm.B()
	compute.ParallelFor(rs.Count(), 64, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			b := rs.Row(i) / n
			shift, scale := mod.Chunk(b, shiftC), mod.Chunk(b, scaleC)
			xh := xhat[i*d : (i+1)*d]
			out := a[i*d : (i+1)*d]
			for k := 0; k < d; k++ {
				v := xh[k]
				if g != nil {
					v = v*g[k] + beta[k]
				}
				out[k] = v*(1+scale[k]) + shift[k]
			}
		}
	})
}

// GatedResidual does e += gate ⊙ x for the rows of rs, gate being chunk
// gateC of each row's sample.
func GatedResidual[T Float](e, x []T, mod Modulation[T], gateC int, rs *Rows) {
	d, n := mod.Dim, rs.N
	compute.ParallelFor(rs.Count(), 256, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			g := mod.Chunk(rs.Row(i)/n, gateC)
			er, xr := e[i*d:(i+1)*d], x[i*d:(i+1)*d]
			for k := range er {
				er[k] += g[k] * xr[k]
			}
		}
	})
}

// GELU writes dst = GELU(x) = x·Φ(x) with the exact (erf) form, and phi =
// Φ(x). float32 uses the engine's float32 erf (compute.Erf), so that
// training and sampling evaluate the same GELU.
func GELU[T Float](dst, phi, x []T) {
	if xf, ok := any(x).([]float32); ok {
		df, pf := any(dst).([]float32), any(phi).([]float32)
		compute.ParallelFor(len(xf), 4096, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				p := 0.5 * (1 + compute.Erf(xf[i]*(1/math.Sqrt2)))
				pf[i] = p
				df[i] = xf[i] * p
			}
		})
		return
	}
	compute.ParallelFor(len(x), 4096, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			p := 0.5 * (1 + math.Erf(float64(x[i])/math.Sqrt2))
			phi[i] = T(p)
			dst[i] = T(float64(x[i]) * p)
		}
	})
}

// Neighbour returns the row in slot k of row r's 3x3 window (k = 3a + b:
// row offset a − 1, column offset b − 1; docs/model.md §3 step 6), or −1
// outside the grid.
func (c Config) Neighbour(r, k int) int {
	n := c.Cells()
	cell := r % n
	i, j := cell/c.GridW+k/3-1, cell%c.GridW+k%3-1
	if i < 0 || i >= c.GridH || j < 0 || j >= c.GridW {
		return -1
	}
	return r - cell + i*c.GridW + j
}

// LocalAttention is the 3x3 local attention (docs/model.md §3 step 6) of the active
// rows, from a.QKV into a.P (the weights) and a.O: every cell attends to the
// 9 cells of its window, itself included; slots outside the grid hold a
// zero key and value, so they take part in the softmax with logit 0.
func (at *Attention[T]) LocalAttention(a *Activations[T]) {
	d, heads := at.Norm.Dim, at.Heads
	hd := d / heads
	grid := at.Grid
	scale := 1 / math.Sqrt(float64(hd))
	f32 := compute.IsF32[T]()
	compute.ParallelFor(a.Active.Count(), 64, func(lo, hi int) {
		var logit [9]float64
		var nb [9]int
		for i := lo; i < hi; i++ {
			r := a.Active.Row(i)
			for k := 0; k < 9; k++ {
				nb[k] = grid.Neighbour(r, k)
			}
			for h := 0; h < heads; h++ {
				q := a.QKV[r*3*d+h*hd : r*3*d+h*hd+hd]
				mx := math.Inf(-1)
				for k := 0; k < 9; k++ {
					var s float64
					if nb[k] >= 0 {
						kv := a.QKV[nb[k]*3*d+d+h*hd : nb[k]*3*d+d+h*hd+hd]
						for j := range q {
							s += float64(q[j]) * float64(kv[j])
						}
					}
					logit[k] = s * scale
					mx = max(mx, logit[k])
				}
				var sum float64
				for k := 0; k < 9; k++ {
					if f32 {
						logit[k] = float64(compute.Exp32(float32(logit[k] - mx)))
					} else {
						logit[k] = math.Exp(logit[k] - mx)
					}
					sum += logit[k]
				}
				pr := a.P[(i*heads+h)*9 : (i*heads+h)*9+9]
				o := a.O[i*d+h*hd : i*d+h*hd+hd]
				clear(o)
				for k := 0; k < 9; k++ {
					pk := logit[k] / sum
					pr[k] = T(pk)
					if nb[k] < 0 {
						continue
					}
					v := a.QKV[nb[k]*3*d+2*d+h*hd : nb[k]*3*d+2*d+h*hd+hd]
					for j := range o {
						o[j] += T(pk) * v[j]
					}
				}
			}
		}
	})
}

// applyUpdate writes next = x with the update u of the active rows, times
// their mask value, added to channels [off, off + uw) of their cells.
func applyUpdate[T Float](next, x, u, mask []T, act *Rows, cd, off, uw int) {
	copy(next[:len(x)], x)
	compute.ParallelFor(act.Count(), 256, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			r := act.Row(i)
			m := T(1)
			if mask != nil {
				m = mask[r]
			}
			dst := next[r*cd+off : r*cd+off+uw]
			up := u[i*uw : (i+1)*uw]
			for k := range dst {
				dst[k] += m * up[k]
			}
		}
	})
}
