package cuda

import (
	"bytes"
	"fmt"
	"math"
	"runtime"
	"unsafe"

	"geca/engine"
)

// NewUpdater prepares the device side of an updater of m for batch grids
// (engine.Accelerator).
func (a *Accelerator) NewUpdater(m *engine.Model, batch int) (engine.DeviceUpdater, error) {
	cfg := m.Cfg
	u := &updater{a: a, m: m, cfg: cfg, batch: batch, n: cfg.Cells(), d: cfg.EmbedDim, cd: cfg.CellDim(),
		ud: cfg.UpdateDim(), mlp: cfg.MLPDim, heads: cfg.Heads}
	u.rows = batch * u.n
	err := a.drv.Do(func() error {
		a.reap()
		var err error
		if u.w, err = a.weights(m); err != nil {
			return err
		}
		u.own = &owned{}
		for _, x := range []struct {
			dst *buf
			n   int
		}{
			{&u.st, u.rows * u.cd}, {&u.emb, u.rows * u.d}, {&u.norm, u.rows * u.d}, {&u.kv, u.rows * 2 * u.d},
			{&u.cond, batch * u.d}, {&u.siluC, batch * u.d}, {&u.modT, batch * engine.BlockChunks * u.d}, {&u.modF, batch * engine.FinalChunks * u.d},
			{&u.out, u.rows * u.ud}, {&u.mag, u.rows}, {&u.lists, 2*u.rows + 1},
		} {
			b, err := a.alloc(x.n)
			if err != nil {
				a.release(u.own.ptrs)
				return err
			}
			u.own.ptrs = append(u.own.ptrs, b.p)
			*x.dst = b
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	u.mirror = make([]float32, u.rows*u.cd)
	u.condCopy = make([]float32, batch*u.d)
	u.hostOut = make([]float32, u.rows*u.ud)
	u.hostMag = make([]float32, u.rows)
	u.mark = make([]bool, u.rows)
	runtime.AddCleanup(u, func(o *owned) { a.release(o.ptrs) }, u.own)
	return u, nil
}

// updater is the device side of one engine.Updater.
type updater struct {
	a   *Accelerator
	m   *engine.Model
	w   *devModel
	cfg engine.Config

	batch, n, d, cd, ud, mlp, heads, rows int

	// on the device
	st, emb, norm, kv       buf // the grid; per cell: embedding, LN₁ modulated, keys|values
	cond, siluC, modT, modF buf
	out, mag                buf // per updated row: new channels, |update|
	lists, masks            buf // row lists; masks of a dense call
	own                     *owned

	// on the host
	mirror      []float32 // the grid as the device has it
	mirrorValid bool
	condCopy    []float32
	condValid   bool
	cacheValid  bool    // emb, norm, kv match the device grid except at prev
	prev        []int32 // cells the last update changed
	changed     []int32 // cells the host changed since (scratch)
	mark        []bool
	hostList    []int32
	hostOut     []float32
	hostMag     []float32
	bad         error // a non-finite value the device produced (in cell badCell)
	badCell     int32
}

// owned lists an updater's device buffers, freed after it is dropped.
type owned struct{ ptrs []Ptr }

// replace swaps buffer old (0: none) for new in the owned list.
func (o *owned) replace(old, new Ptr) {
	for i, p := range o.ptrs {
		if p == old && old != 0 {
			o.ptrs[i] = new
			return
		}
	}
	o.ptrs = append(o.ptrs, new)
}

func (u *updater) Reset() {
	u.mirrorValid, u.condValid, u.cacheValid, u.prev, u.bad = false, false, false, nil, nil
}

func finite(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }

// cellErr is the CPU engine's error for a non-finite channel value.
func (u *updater) cellErr(cell int, ch int, v float32) error {
	b, n := cell/u.n, cell%u.n
	return fmt.Errorf("state value %v at sample %d, cell (%d, %d), channel %d is not finite", v, b, n/u.cfg.GridW, n%u.cfg.GridW, ch)
}

func bitsEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 {
		return true
	}
	x := unsafe.Slice((*byte)(unsafe.Pointer(&a[0])), 4*len(a))
	y := unsafe.Slice((*byte)(unsafe.Pointer(&b[0])), 4*len(b))
	return bytes.Equal(x, y)
}

// prepare readies the device for an update (on the driver's thread): it
// frees what finished work released, sizes the scratch buffers, and brings
// the conditioning and the grid up to date with the host's, checking new
// values as the CPU engine does.
func (u *updater) prepare(st *engine.State, c *engine.Cond) error {
	a, w, d, b := u.a, u.w, u.d, u.batch
	a.reap()
	if err := a.ensureScratch(u.rows, u.d, u.mlp, u.ud, u.heads); err != nil {
		return err
	}
	if !u.condValid || !bitsEqual(c.C, u.condCopy) {
		for i, v := range c.C {
			if !finite(v) {
				return fmt.Errorf("conditioning value %v at sample %d, channel %d is not finite", v, i/c.D, i%c.D)
			}
		}
		copy(u.condCopy, c.C)
		if err := a.upload(u.cond, c.C); err != nil {
			return err
		}
		if err := a.drv.Launch(a.k.silu, [3]int{cdiv(b*d, 256), 1, 1}, [3]int{256, 1, 1},
			[]uint64{iarg(b * d), uint64(u.cond.p), uint64(u.siluC.p)}); err != nil {
			return err
		}
		ada, fada := &u.m.Transformer.AdaLN, &u.m.FinalLayer.AdaLN
		if err := a.gemm(b, ada.Out, d, u.siluC.p, d, 0, w.of(ada.Weight).p, d, u.modT.p, ada.Out, 0, w.of(ada.Bias).p, false); err != nil {
			return err
		}
		if err := a.gemm(b, fada.Out, d, u.siluC.p, d, 0, w.of(fada.Weight).p, d, u.modF.p, fada.Out, 0, w.of(fada.Bias).p, false); err != nil {
			return err
		}
		u.condValid = true
		u.cacheValid = false // keys and values depend on the modulation
	}
	// Cells the host changed (the caller may edit the grid between updates).
	cd := u.cd
	u.changed = u.changed[:0]
	if !u.mirrorValid || !bitsEqual(st.Data, u.mirror) {
		for cell := 0; cell < u.rows; cell++ {
			s := st.Data[cell*cd : (cell+1)*cd]
			if u.mirrorValid && bitsEqual(s, u.mirror[cell*cd:(cell+1)*cd]) {
				continue
			}
			for ch, v := range s {
				if !finite(v) {
					return u.cellErr(cell, ch, v)
				}
			}
			u.changed = append(u.changed, int32(cell))
		}
	}
	if len(u.changed) > 0 {
		if err := a.upload(u.st, st.Data); err != nil {
			return err
		}
		copy(u.mirror, st.Data)
		u.mirrorValid = true
		for _, cell := range u.changed {
			if cell == u.badCell {
				u.bad = nil // the host replaced the bad value (with a finite one)
			}
		}
	}
	return u.bad
}

// dirtyList appends the cells whose caches the next update must recompute.
func (u *updater) dirtyList(dst []int32, dense bool) []int32 {
	if dense || !u.cacheValid {
		for cell := 0; cell < u.rows; cell++ {
			dst = append(dst, int32(cell))
		}
		return dst
	}
	clear(u.mark)
	for _, lst := range [][]int32{u.changed, u.prev} {
		for _, c := range lst {
			if !u.mark[c] {
				u.mark[c] = true
				dst = append(dst, c)
			}
		}
	}
	return dst
}

// activeList appends the cells that compute an update.
func (u *updater) activeList(dst []int32, mask []float32, dense bool) []int32 {
	for cell := 0; cell < u.rows; cell++ {
		if dense || mask == nil || mask[cell] != 0 {
			dst = append(dst, int32(cell))
		}
	}
	return dst
}

// ensureLists sizes the device row lists and masks.
func (u *updater) ensureLists(n, masks int) error {
	a := u.a
	if n > u.lists.n {
		b, err := a.alloc(n)
		if err != nil {
			return err
		}
		_ = a.drv.Free(u.lists.p)
		u.own.replace(u.lists.p, b.p)
		u.lists = b
	}
	if masks > u.masks.n {
		b, err := a.alloc(masks)
		if err != nil {
			return err
		}
		if u.masks.p != 0 {
			_ = a.drv.Free(u.masks.p)
		}
		u.own.replace(u.masks.p, b.p)
		u.masks = b
	}
	return nil
}

// refresh queues the embedding, LN₁ and keys/values of the nd cells listed
// at dirty.
func (u *updater) refresh(dirty Ptr, nd int) error {
	if nd == 0 {
		return nil
	}
	a, w, s, d := u.a, u.w, &u.a.sc, u.d
	ce, at := &u.m.CellToEmbedding, &u.m.Transformer.Attn
	if err := a.gemm(nd, d, u.cd, u.st.p, u.cd, dirty, w.of(ce.Weight).p, u.cd, s.g.p, d, 0, 0, false); err != nil {
		return err
	}
	// The kernel reads shift and scale as the chunks ShiftAttn and ScaleAttn
	// of the block's modulation (geca_arch.h).
	if err := a.drv.Launch(a.k.embed, [3]int{nd, 1, 1}, [3]int{256, 1, 1}, []uint64{
		iarg(nd), uint64(dirty), iarg(u.n), iarg(d), uint64(s.g.p), uint64(w.of(ce.Bias).p), uint64(w.pe.p),
		uint64(u.emb.p), uint64(u.norm.p), uint64(s.ag.p), uint64(w.of(at.Norm.Weight).p), uint64(w.of(at.Norm.Bias).p),
		farg(float32(at.Norm.Eps)), uint64(u.modT.p), iarg(engine.BlockChunks * d)}); err != nil {
		return err
	}
	// Keys and values: rows D…3D of the QKV weight, scattered to the cells.
	return a.gemm(nd, 2*d, d, s.ag.p, d, 0, w.of(at.ToQKV.Weight).at(d*d), d, u.kv.p, 2*d, dirty, 0, false)
}

// attention queues the local attention of the rows listed at idx, whose
// queries are at q, into o; the weights of row obsRow go to obsP.
func (u *updater) attention(rows int, idx, q, o Ptr, obsRow int, obsP Ptr) error {
	a := u.a
	scale := float32(1 / math.Sqrt(float64(u.d/u.heads)))
	return a.drv.Launch(a.k.attn, [3]int{cdiv(rows*u.heads, 4), 1, 1}, [3]int{128, 1, 1}, []uint64{
		iarg(rows), uint64(idx), iarg(u.cfg.GridH), iarg(u.cfg.GridW), iarg(u.d), iarg(u.heads), farg(scale),
		uint64(q), uint64(u.kv.p), uint64(o), iarg(obsRow), uint64(obsP)})
}

// forward queues attention, MLP, final layer and the residual update of
// the na cells listed at active; new channel values go to out and the
// update norms to mag (both per row; 0: not wanted). mask (0: none)
// multiplies the update (dense mode).
func (u *updater) forward(active Ptr, na int, mask, out, mag Ptr) error {
	if na == 0 {
		return nil
	}
	a, w, s, d := u.a, u.w, &u.a.sc, u.d
	at, ff, fl := &u.m.Transformer.Attn, &u.m.Transformer.FF, &u.m.FinalLayer
	mod := func(c int) uint64 { return uint64(u.modT.at(c * d)) }
	fmod := func(c int) uint64 { return uint64(u.modF.at(c * d)) }
	// Queries: rows 0…D of the QKV weight.
	if err := a.gemm(na, d, d, u.norm.p, d, active, w.of(at.ToQKV.Weight).p, d, s.q.p, d, 0, 0, false); err != nil {
		return err
	}
	if err := u.attention(na, active, s.q.p, s.o.p, -1, 0); err != nil {
		return err
	}
	if err := a.gemm(na, d, d, s.o.p, d, 0, w.of(at.ToOut.Weight).p, d, s.t.p, d, 0, 0, false); err != nil {
		return err
	}
	// h = E + gate_msa·(attn + b);  f = LN₂(h)·(1 + scale_mlp) + shift_mlp
	if err := a.drv.Launch(a.k.resid, [3]int{na, 1, 1}, [3]int{256, 1, 1}, []uint64{
		iarg(na), uint64(active), iarg(u.n), iarg(d), uint64(u.emb.p), 1, uint64(s.t.p), uint64(w.of(at.ToOut.Bias).p),
		uint64(s.h.p), uint64(s.f.p), mod(engine.GateAttn), iarg(engine.BlockChunks * d),
		uint64(w.of(ff.Norm.Weight).p), uint64(w.of(ff.Norm.Bias).p), farg(float32(ff.Norm.Eps)),
		mod(engine.ShiftMLP), mod(engine.ScaleMLP), iarg(engine.BlockChunks * d)}); err != nil {
		return err
	}
	if err := a.gemm(na, u.mlp, d, s.f.p, d, 0, w.of(ff.Net0.Weight).p, d, s.hid.p, u.mlp, 0, w.of(ff.Net0.Bias).p, true); err != nil {
		return err
	}
	if err := a.gemm(na, d, u.mlp, s.hid.p, u.mlp, 0, w.of(ff.Net3.Weight).p, u.mlp, s.t.p, d, 0, 0, false); err != nil {
		return err
	}
	// h += gate_mlp·(mlp + b);  f = LN_f(h)·(1 + scale) + shift (final adaLN)
	if err := a.drv.Launch(a.k.resid, [3]int{na, 1, 1}, [3]int{256, 1, 1}, []uint64{
		iarg(na), uint64(active), iarg(u.n), iarg(d), uint64(s.h.p), 0, uint64(s.t.p), uint64(w.of(ff.Net3.Bias).p),
		uint64(s.h.p), uint64(s.f.p), mod(engine.GateMLP), iarg(engine.BlockChunks * d), 0, 0,
		farg(float32(fl.Norm.Eps)), fmod(engine.FinalShift), fmod(engine.FinalScale), iarg(engine.FinalChunks * d)}); err != nil {
		return err
	}
	if err := a.gemm(na, u.ud, d, s.f.p, d, 0, w.of(fl.Linear.Weight).p, d, s.u.p, u.ud, 0, 0, false); err != nil {
		return err
	}
	return a.drv.Launch(a.k.apply, [3]int{cdiv(na, 4), 1, 1}, [3]int{128, 1, 1}, []uint64{
		iarg(na), uint64(active), uint64(u.st.p), iarg(u.cd), iarg(u.cfg.InChannels), iarg(u.ud), uint64(s.u.p),
		uint64(w.of(fl.Linear.Bias).p), uint64(mask), uint64(out), uint64(mag)})
}

// observe queues the attention weights of one cell (from the caches, before
// the update) into the scratch obsP.
func (u *updater) observe(idx Ptr) error {
	a, w, s, d := u.a, u.w, &u.a.sc, u.d
	if err := a.gemm(1, d, d, u.norm.p, d, idx, w.of(u.m.Transformer.Attn.ToQKV.Weight).p, d, s.obsQ.p, d, 0, 0, false); err != nil {
		return err
	}
	return u.attention(1, idx, s.obsQ.p, s.obsO.p, 0, s.obsP.p)
}

// Update is one cell update (engine.DeviceUpdater).
func (u *updater) Update(st *engine.State, c *engine.Cond, mask []float32, obs *engine.Observe, dense bool) error {
	a := u.a
	return a.drv.Do(func() error {
		if err := u.prepare(st, c); err != nil {
			return err
		}
		lst := u.dirtyList(u.hostList[:0], dense)
		nd := len(lst)
		lst = u.activeList(lst, mask, dense)
		na := len(lst) - nd
		obsCell := -1
		if obs != nil && obs.Attn != nil {
			obsCell = (obs.AttnB*u.cfg.GridH+obs.AttnI)*u.cfg.GridW + obs.AttnJ
			lst = append(lst, int32(obsCell))
		}
		u.hostList = lst
		if err := u.ensureLists(len(lst), 0); err != nil {
			return err
		}
		if err := a.uploadInts(u.lists, lst); err != nil {
			return err
		}
		var maskP Ptr
		if dense && mask != nil {
			if err := u.ensureLists(0, len(mask)); err != nil {
				return err
			}
			if err := a.upload(u.masks, mask); err != nil {
				return err
			}
			maskP = u.masks.p
		}
		if err := u.refresh(u.lists.p, nd); err != nil {
			return err
		}
		if obsCell >= 0 {
			if err := u.observe(u.lists.at(nd + na)); err != nil {
				return err
			}
		}
		var magP Ptr
		if obs != nil && obs.Magnitude != nil {
			magP = u.mag.p
		}
		if err := u.forward(u.lists.at(nd), na, maskP, u.out.p, magP); err != nil {
			return err
		}
		// Results: the new channels of the updated cells, the norms, the
		// observed weights.
		out := u.hostOut[:na*u.ud]
		if err := a.download(out, u.out); err != nil {
			return err
		}
		if obsCell >= 0 {
			if err := a.download(obs.Attn, a.sc.obsP); err != nil {
				return err
			}
		}
		if magP != 0 {
			clear(obs.Magnitude)
			if err := a.download(u.hostMag[:na], u.mag); err != nil {
				return err
			}
		}
		active := lst[nd : nd+na]
		off := u.cfg.InChannels
		for r, cell := range active {
			src := out[r*u.ud : (r+1)*u.ud]
			base := int(cell)*u.cd + off
			copy(st.Data[base:base+u.ud], src)
			copy(u.mirror[base:base+u.ud], src)
			if magP != 0 {
				obs.Magnitude[cell] = u.hostMag[r]
			}
			if u.bad == nil {
				for i, v := range src {
					if !finite(v) {
						// The CPU engine stops at the next update, which sees it.
						u.bad, u.badCell = u.cellErr(int(cell), off+i, v), cell
						break
					}
				}
			}
		}
		u.prev = append(u.prev[:0], active...)
		u.cacheValid = true
		return nil
	})
}

// Updates runs len(masks) updates: the row lists of all of them go to the
// device at once, the grid comes back once (engine.DeviceUpdater).
func (u *updater) Updates(st *engine.State, c *engine.Cond, masks [][]float32, dense bool) error {
	if len(masks) == 0 {
		return nil
	}
	a := u.a
	return a.drv.Do(func() error {
		if err := u.prepare(st, c); err != nil {
			return err
		}
		type span struct{ dirty, nd, active, na int }
		spans := make([]span, len(masks))
		lst := u.hostList[:0]
		var prev []int32
		for k, m := range masks {
			sp := span{dirty: len(lst)}
			if k == 0 {
				lst = u.dirtyList(lst, dense)
			} else if dense {
				lst = u.activeList(lst, nil, true)
			} else {
				lst = append(lst, prev...)
			}
			sp.nd = len(lst) - sp.dirty
			sp.active = len(lst)
			lst = u.activeList(lst, m, dense)
			sp.na = len(lst) - sp.active
			prev = lst[sp.active:]
			spans[k] = sp
		}
		u.hostList = lst
		if err := u.ensureLists(len(lst), 0); err != nil {
			return err
		}
		if err := a.uploadInts(u.lists, lst); err != nil {
			return err
		}
		if dense {
			if err := u.ensureLists(0, len(masks)*u.rows); err != nil {
				return err
			}
			for k, m := range masks {
				if m != nil {
					if err := a.drv.HtoD(u.masks.at(k*u.rows), f32p(m), 4*u.rows); err != nil {
						return err
					}
				}
			}
		}
		for k, sp := range spans {
			if err := u.refresh(u.lists.at(sp.dirty), sp.nd); err != nil {
				return err
			}
			var maskP Ptr
			if dense && masks[k] != nil {
				maskP = u.masks.at(k * u.rows)
			}
			if err := u.forward(u.lists.at(sp.active), sp.na, maskP, 0, 0); err != nil {
				return err
			}
		}
		last := spans[len(spans)-1]
		u.prev = append(u.prev[:0], lst[last.active:last.active+last.na]...)
		u.cacheValid = true
		if err := a.download(st.Data, u.st); err != nil {
			u.mirrorValid = false
			return err
		}
		copy(u.mirror, st.Data)
		for i, v := range st.Data {
			if !finite(v) {
				u.bad, u.badCell = u.cellErr(i/u.cd, i%u.cd, v), int32(i/u.cd)
				return fmt.Errorf("the call produced a non-finite value: %w", u.bad)
			}
		}
		return nil
	})
}

var _ engine.DeviceUpdater = (*updater)(nil)
