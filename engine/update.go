package engine

import (
	"fmt"
	"math"
	"time"

	"geca/engine/compute"
)

// Observe asks Update for what the visualizer shows. Magnitude, when its
// length is B·H·W, receives the L2 norm of the update applied to each cell
// (0 where the mask was 0). Attn, when its length is heads·9, receives the
// softmax weights of cell (AttnB, AttnI, AttnJ) in this update, head-major,
// slot k = 3a + b for the neighbour at (i+a−1, j+b−1); the weights are those of
// the attention the cell computed from the state before the update (computed
// for the observed cell even where its mask is 0).
type Observe struct {
	Magnitude           []float32
	AttnB, AttnI, AttnJ int
	Attn                []float32
}

// Updater applies the cell update rule f (docs/model.md §3) to a batch. It owns the
// scratch buffers and caches of one batch size and is not safe for concurrent
// use; the Model it came from may be shared.
//
// It does only the work the update needs, with results equal to computing
// every cell: the mask is drawn first and only cells whose mask is 1 compute
// a query, attention, MLP and final layer; cells whose channels did not change
// since the previous update (compared bit for bit, so any edit of the state
// between updates is seen) keep their embedding, keys and values. The adaLN
// modulation is kept while the conditioning is unchanged.
type Updater struct {
	m     *Model
	batch int

	// Dense computes every cell every update, as the official code does
	// (for tests and benchmarks; the result is the same).
	Dense bool

	// Profile, if not nil, accumulates where the time of each update goes.
	Profile *Profile

	n, d, cd, ud, mlp int

	// caches over all B·N cells
	snap      []float32 // the cell channels the caches were computed from
	snapValid bool
	emb       []float32 // (B·N)×D  cell embedding + positional code
	normA     []float32 // (B·N)×D  LN₁(emb) modulated
	kv        []float32 // (B·N)×2D keys | values

	// modulation cache
	condCopy []float32
	modT     []float32 // B×6D
	modF     []float32 // B×2D
	modValid bool

	// per-update row lists and scratch (rows ≤ B·N)
	dirty, active []int32
	maskBuf       []float32
	xg            []float32 // rows×cell_dim
	g1            []float32 // rows×D (shares o)
	ag            []float32 // rows×D
	kvg           []float32 // rows×2D (shares hid)
	q             []float32 // rows×D
	o             []float32 // rows×D
	h             []float32 // rows×D
	f             []float32 // rows×D
	hid           []float32 // rows×mlp
	u             []float32 // rows×update_dim
	siluC         []float32
	obsIdx        [1]int32
	obsQ          []float32
	obsO          []float32
	obsNorm       []float32

	embedK   compute.EmbedKernel
	gatherX  compute.GatherKernel
	gatherA  compute.GatherKernel
	scatterK compute.ScatterKernel
	attnK    compute.LocalAttentionKernel
	resid1   compute.ResidualNormKernel
	gelu     compute.BiasGELUKernel
	resid2   compute.ResidualNormKernel
	apply    compute.ApplyKernel

	// the device side when the model has an accelerator
	dev    DeviceUpdater
	devErr error
}

// Profile splits the time of updates between matrix products, the fused
// element-wise kernels and the local attention.
type Profile struct {
	Gemm, Elementwise, Attention time.Duration
	Updates, Rows                int // updates run, active rows computed
	last                         time.Time
}

func (p *Profile) start() {
	if p != nil {
		p.last = time.Now()
	}
}

const (
	profGemm = iota
	profElem
	profAttn
)

// mark charges the time since the previous mark to kind.
func (p *Profile) mark(kind int) {
	if p == nil {
		return
	}
	now := time.Now()
	d := now.Sub(p.last)
	p.last = now
	switch kind {
	case profGemm:
		p.Gemm += d
	case profElem:
		p.Elementwise += d
	case profAttn:
		p.Attention += d
	}
}

// NewUpdater returns an updater for states of batch size batch.
func (m *Model) NewUpdater(batch int) *Updater {
	if batch < 1 {
		batch = 1
	}
	if m.accel != nil {
		// The device holds the caches and scratch.
		c := m.Cfg
		u := &Updater{m: m, batch: batch, n: c.Cells(), d: c.EmbedDim, cd: c.CellDim(), ud: c.UpdateDim(), mlp: c.MLPDim,
			maskBuf: make([]float32, batch*c.Cells())}
		u.dev, u.devErr = m.accel.NewUpdater(m, batch)
		return u
	}
	c := m.Cfg
	n, d := c.Cells(), c.EmbedDim
	rows := batch * n
	u := &Updater{
		m: m, batch: batch, n: n, d: d, cd: c.CellDim(), ud: c.UpdateDim(), mlp: c.MLPDim,
		snap:     make([]float32, rows*c.CellDim()),
		emb:      make([]float32, rows*d),
		normA:    make([]float32, rows*d),
		kv:       make([]float32, rows*2*d),
		condCopy: make([]float32, batch*d),
		modT:     make([]float32, batch*BlockChunks*d),
		modF:     make([]float32, batch*FinalChunks*d),
		dirty:    make([]int32, 0, rows),
		active:   make([]int32, 0, rows),
		maskBuf:  make([]float32, rows),
		xg:       make([]float32, rows*c.CellDim()),
		ag:       make([]float32, rows*d),
		q:        make([]float32, rows*d),
		o:        make([]float32, rows*d),
		h:        make([]float32, rows*d),
		f:        make([]float32, rows*d),
		u:        make([]float32, rows*c.UpdateDim()),
		siluC:    make([]float32, batch*d),
		obsQ:     make([]float32, d),
		obsO:     make([]float32, d),
		obsNorm:  make([]float32, d),
	}
	// Scratch that is dead between phases is shared: the embedding product
	// with the attention output, the new keys/values with the MLP hidden layer.
	u.g1 = u.o
	big := make([]float32, rows*max(2*d, c.MLPDim))
	u.kvg, u.hid = big[:rows*2*d], big[:rows*c.MLPDim]
	return u
}

// Batch returns the batch size the updater was made for.
func (u *Updater) Batch() int { return u.batch }

// Reset drops every cache (the next update recomputes all cells).
func (u *Updater) Reset() {
	u.snapValid, u.modValid = false, false
	if u.dev != nil {
		u.dev.Reset()
	}
}

func finite(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }

// prepareMod recomputes the adaLN modulations when the conditioning changed.
func (u *Updater) prepareMod(c *Cond) error {
	if u.modValid {
		same := true
		for i, v := range c.C {
			if math.Float32bits(v) != math.Float32bits(u.condCopy[i]) {
				same = false
				break
			}
		}
		if same {
			return nil
		}
	}
	for i, v := range c.C {
		if !finite(v) {
			return fmt.Errorf("conditioning value %v at sample %d, channel %d is not finite", v, i/c.D, i%c.D)
		}
	}
	copy(u.condCopy, c.C)
	b, d := c.B, c.D
	compute.SiLUTo(u.siluC[:b*d], c.C)
	pw := u.m.packed()
	pw.adaT.Apply(u.modT[:b*BlockChunks*d], u.siluC[:b*d], b)
	pw.adaF.Apply(u.modF[:b*FinalChunks*d], u.siluC[:b*d], b)
	u.modValid = true
	u.snapValid = false // keys and values depend on the modulation
	return nil
}

// Update applies one cell update f to st in place (docs/model.md §3): S ← S + m ⊙ U on
// the C_out and C_h channels. mask holds one 0/1 value per cell (B·H·W,
// cell-major like the state); nil updates every cell. obs may be nil.
func (u *Updater) Update(st *State, c *Cond, mask []float32, obs *Observe) error {
	cfg := u.m.Cfg
	if err := checkState(cfg, st); err != nil {
		return fmt.Errorf("update: %w", err)
	}
	if st.B != u.batch {
		return fmt.Errorf("update: state batch %d, updater made for batch %d", st.B, u.batch)
	}
	if err := c.check(st.B, cfg.EmbedDim); err != nil {
		return fmt.Errorf("update: %w", err)
	}
	rows := st.B * u.n
	if mask != nil {
		if len(mask) != rows {
			return fmt.Errorf("update: mask has %d values, want B·H·W = %d", len(mask), rows)
		}
		for i, v := range mask {
			if v != 0 && v != 1 {
				return fmt.Errorf("update: mask value %v at cell %d is not 0 or 1", v, i)
			}
		}
	}
	if obs != nil {
		if obs.Magnitude != nil && len(obs.Magnitude) != rows {
			return fmt.Errorf("update: observe magnitude has %d values, want B·H·W = %d", len(obs.Magnitude), rows)
		}
		if obs.Attn != nil {
			if len(obs.Attn) != cfg.Heads*9 {
				return fmt.Errorf("update: observe attention has %d values, want heads·9 = %d", len(obs.Attn), cfg.Heads*9)
			}
			if obs.AttnB < 0 || obs.AttnB >= st.B || obs.AttnI < 0 || obs.AttnI >= st.H || obs.AttnJ < 0 || obs.AttnJ >= st.W {
				return fmt.Errorf("update: observed cell (%d, %d, %d) outside the batch of %d grids of %dx%d", obs.AttnB, obs.AttnI, obs.AttnJ, st.B, st.H, st.W)
			}
		}
	}
	if u.devErr != nil {
		return fmt.Errorf("update: %w", u.devErr)
	}
	if u.dev != nil {
		if err := u.dev.Update(st, c, mask, obs, u.Dense); err != nil {
			return fmt.Errorf("update: %w", err)
		}
		return nil
	}
	if err := u.prepareMod(c); err != nil {
		return fmt.Errorf("update: %w", err)
	}
	u.Profile.start()

	// Which cells changed since the caches were computed.
	cd := u.cd
	u.dirty = u.dirty[:0]
	for cell := 0; cell < rows; cell++ {
		s := st.Data[cell*cd : (cell+1)*cd]
		if !u.Dense && u.snapValid && sameBits(s, u.snap[cell*cd:(cell+1)*cd]) {
			continue
		}
		for ch, v := range s {
			if !finite(v) {
				b, n := cell/u.n, cell%u.n
				return fmt.Errorf("update: state value %v at sample %d, cell (%d, %d), channel %d is not finite", v, b, n/st.W, n%st.W, ch)
			}
		}
		u.dirty = append(u.dirty, int32(cell))
	}
	// Which cells compute an update.
	u.active = u.active[:0]
	for cell := 0; cell < rows; cell++ {
		if u.Dense || mask == nil || mask[cell] != 0 {
			u.active = append(u.active, int32(cell))
		}
	}
	if u.Profile != nil {
		u.Profile.Updates++
		u.Profile.Rows += len(u.active)
	}
	u.Profile.mark(profElem) // mask, change detection
	u.refresh(st)
	if obs != nil && obs.Attn != nil {
		u.observeAttention(st, obs)
	}
	if obs != nil && obs.Magnitude != nil {
		clear(obs.Magnitude)
	}
	u.forward(st, mask, obs)
	return nil
}

func sameBits(a, b []float32) bool {
	b = b[:len(a)]
	for i, v := range a {
		if math.Float32bits(v) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

const grain = 8 // rows per parallel block, at least

// refresh recomputes embedding, normalised input, keys and values of the
// dirty cells and records their channels.
func (u *Updater) refresh(st *State) {
	nd := len(u.dirty)
	if nd == 0 {
		return
	}
	m, d, cd := u.m, u.d, u.cd
	g := &u.gatherX
	*g = compute.GatherKernel{Src: st.Data, Dst: u.xg, Idx: u.dirty, Width: cd}
	compute.Parallel(nd, 64, g)
	u.Profile.mark(profElem)
	sc := &u.scatterK
	*sc = compute.ScatterKernel{Src: u.xg, Dst: u.snap, Idx: u.dirty, Width: cd}
	compute.Parallel(nd, 64, sc)
	u.Profile.mark(profElem)
	pw := m.packed()
	pw.cellEmb.Apply(u.g1, u.xg, nd)
	u.Profile.mark(profGemm)
	e := &u.embedK
	an := &m.Transformer.Attn.Norm
	*e = compute.EmbedKernel{G: u.g1, Bias: m.CellToEmbedding.B(), PE: m.PE, Idx: u.dirty, N: u.n, D: d,
		E: u.emb, A: u.normA, AG: u.ag, Gamma: an.W(), Beta: an.B(), Eps: float32(an.Eps),
		Mod: compute.Mod{Vec: u.modT, Stride: BlockChunks * d, Dim: d}, ShiftC: ShiftAttn, ScaleC: ScaleAttn}
	compute.Parallel(nd, grain, e)
	u.Profile.mark(profElem)
	// Keys and values: rows D…3D of the QKV weight.
	pw.kv.Apply(u.kvg, u.ag, nd)
	u.Profile.mark(profGemm)
	*sc = compute.ScatterKernel{Src: u.kvg, Dst: u.kv, Idx: u.dirty, Width: 2 * d}
	compute.Parallel(nd, 64, sc)
	u.Profile.mark(profElem)
	u.snapValid = true
}

// forward runs attention, MLP and final layer for the active cells and adds
// their update to the state.
func (u *Updater) forward(st *State, mask []float32, obs *Observe) {
	na := len(u.active)
	if na == 0 {
		return
	}
	m, d := u.m, u.d
	at, ff, fl := &m.Transformer.Attn, &m.Transformer.FF, &m.FinalLayer
	ga := &u.gatherA
	*ga = compute.GatherKernel{Src: u.normA, Dst: u.ag, Idx: u.active, Width: d}
	compute.Parallel(na, 64, ga)
	u.Profile.mark(profElem)
	pw := m.packed()
	pw.q.Apply(u.q, u.ag, na)
	u.Profile.mark(profGemm)
	ak := &u.attnK
	*ak = compute.LocalAttentionKernel{Q: u.q, KV: u.kv, Out: u.o, Idx: u.active, H: st.H, W: st.W, D: d, Heads: m.Cfg.Heads, ObsRow: -1}
	compute.Parallel(na, grain, ak)
	u.Profile.mark(profAttn)
	pw.out.Apply(u.q, u.o, na)
	u.Profile.mark(profGemm)
	modT := compute.Mod{Vec: u.modT, Stride: BlockChunks * d, Dim: d}
	r1 := &u.resid1
	*r1 = compute.ResidualNormKernel{Base: u.emb, BaseIdx: true, T: u.q, Bias: at.ToOut.B(), H: u.h, F: u.f, Idx: u.active, N: u.n, D: d,
		Gate: modT, GateC: GateAttn, Gamma: ff.Norm.W(), Beta: ff.Norm.B(), Eps: float32(ff.Norm.Eps), NormMod: modT, ShiftC: ShiftMLP, ScaleC: ScaleMLP}
	compute.Parallel(na, grain, r1)
	u.Profile.mark(profElem)
	mlp := u.mlp
	pw.net0.Apply(u.hid, u.f, na)
	u.Profile.mark(profGemm)
	gk := &u.gelu
	*gk = compute.BiasGELUKernel{X: u.hid, Bias: ff.Net0.B(), W: mlp}
	compute.Parallel(na, grain, gk)
	u.Profile.mark(profElem)
	pw.net3.Apply(u.q, u.hid, na)
	u.Profile.mark(profGemm)
	r2 := &u.resid2
	*r2 = compute.ResidualNormKernel{Base: u.h, BaseIdx: false, T: u.q, Bias: ff.Net3.B(), H: u.h, F: u.f, Idx: u.active, N: u.n, D: d,
		Gate: modT, GateC: GateMLP, Eps: float32(fl.Norm.Eps), NormMod: compute.Mod{Vec: u.modF, Stride: FinalChunks * d, Dim: d},
		ShiftC: FinalShift, ScaleC: FinalScale}
	compute.Parallel(na, grain, r2)
	u.Profile.mark(profElem)
	ud := u.ud
	pw.final.Apply(u.u, u.f, na)
	u.Profile.mark(profGemm)
	ap := &u.apply
	*ap = compute.ApplyKernel{U: u.u, Bias: fl.Linear.B(), S: st.Data, Idx: u.active, C: u.cd, Off: m.Cfg.InChannels, UW: ud}
	if u.Dense {
		ap.Mask = mask
	}
	if obs != nil && obs.Magnitude != nil {
		ap.Mag = obs.Magnitude
	}
	compute.Parallel(na, 64, ap)
	u.Profile.mark(profElem)
}

// observeAttention computes the attention weights of the observed cell from
// the caches (whether or not the cell is active this update).
func (u *Updater) observeAttention(st *State, obs *Observe) {
	m, d := u.m, u.d
	cell := (obs.AttnB*st.H+obs.AttnI)*st.W + obs.AttnJ
	u.obsIdx[0] = int32(cell)
	m.packed().q.Apply(u.obsQ, u.normA[cell*d:(cell+1)*d], 1)
	k := compute.LocalAttentionKernel{Q: u.obsQ, KV: u.kv, Out: u.obsO, Idx: u.obsIdx[:], H: st.H, W: st.W, D: d,
		Heads: m.Cfg.Heads, ObsRow: 0, ObsP: obs.Attn}
	k.Run(0, 1)
}

// Call runs M updates with the same conditioning (one denoiser call,
// docs/model.md §4.4), drawing one mask of B·H·W uniforms per update from
// masks (none when rate >= 1). each, if not nil, is called after every update with its index
// (0-based) and the state; an error from it stops the call.
func (u *Updater) Call(st *State, c *Cond, M int, rate float32, masks Stream, each func(m int, st *State) error) error {
	if M < 0 {
		return fmt.Errorf("call: M = %d is negative", M)
	}
	if st == nil {
		return fmt.Errorf("call: state is nil")
	}
	rows := st.B * st.H * st.W
	if rows > len(u.maskBuf) {
		return fmt.Errorf("call: state batch %d, updater made for batch %d", st.B, u.batch)
	}
	if u.dev != nil && each == nil && M > 0 {
		return u.deviceCall(st, c, M, rate, masks)
	}
	for i := 0; i < M; i++ {
		var mask []float32
		if rate < 1 {
			mask = u.maskBuf[:rows]
			if err := DrawMask(mask, rate, masks); err != nil {
				return fmt.Errorf("call: update %d: %w", i, err)
			}
		} else if !(rate >= 1) {
			return fmt.Errorf("call: update rate %v out of range (0, 1]", rate)
		}
		if err := u.Update(st, c, mask, nil); err != nil {
			return fmt.Errorf("call: update %d: %w", i, err)
		}
		if each != nil {
			if err := each(i, st); err != nil {
				return err
			}
		}
	}
	return nil
}

// deviceCall is Call on the device without a callback: all M masks are drawn
// first (the same draws, in the same order, as update by update) and the
// updates run with one copy of the state each way.
func (u *Updater) deviceCall(st *State, c *Cond, M int, rate float32, masks Stream) error {
	if u.devErr != nil {
		return fmt.Errorf("call: %w", u.devErr)
	}
	if err := checkState(u.m.Cfg, st); err != nil {
		return fmt.Errorf("call: %w", err)
	}
	if st.B != u.batch {
		return fmt.Errorf("call: state batch %d, updater made for batch %d", st.B, u.batch)
	}
	if err := c.check(st.B, u.m.Cfg.EmbedDim); err != nil {
		return fmt.Errorf("call: %w", err)
	}
	rows := st.B * st.H * st.W
	ms := make([][]float32, M)
	switch {
	case rate < 1:
		buf := make([]float32, M*rows)
		for i := range ms {
			ms[i] = buf[i*rows : (i+1)*rows]
			if err := DrawMask(ms[i], rate, masks); err != nil {
				return fmt.Errorf("call: update %d: %w", i, err)
			}
		}
	case !(rate >= 1):
		return fmt.Errorf("call: update rate %v out of range (0, 1]", rate)
	}
	if err := u.dev.Updates(st, c, ms, u.Dense); err != nil {
		return fmt.Errorf("call: %w", err)
	}
	return nil
}
