package remote

import (
	"geca/engine"
	"geca/engine/sample"
)

// The payloads of the messages. Each has put (encode) and get (decode); get
// checks sizes and ranges, the handlers check meaning.

const (
	maxStr     = 1 << 20 // bytes of a string field (a config JSON, an error)
	maxGridDim = 1 << 16 // any one dimension of a grid
)

// Error codes of tError.
const (
	codeFailed   uint8 = iota // the request failed (the message says why)
	codeCanceled              // the client cancelled it
	codeAuth                  // the token was wrong or missing
	codeVersion               // the protocol versions differ
	codeDone                  // the run is finished (sample.ErrDone)
)

type helloMsg struct {
	Magic   string
	Version uint32
	Token   string
	Client  string // the client's own description (version), for the worker's log
}

func (m *helloMsg) put(e *enc) { e.str(m.Magic); e.u32(m.Version); e.str(m.Token); e.str(m.Client) }
func (m *helloMsg) get(d *dec) {
	m.Magic = d.str(64, "magic")
	if d.err == nil && m.Magic != Magic {
		d.fail("magic %q is not %q", m.Magic, Magic)
	}
	m.Version = d.u32()
	m.Token = d.str(1024, "token")
	m.Client = d.str(1024, "client")
}

type welcomeMsg struct {
	Version uint32
	Worker  string // the worker's version line
	Device  string // what the worker computes on, e.g. "CUDA: NVIDIA H200 (...)" or "CPU: 16 cores, OpenBLAS"
}

func (m *welcomeMsg) put(e *enc) { e.u32(m.Version); e.str(m.Worker); e.str(m.Device) }
func (m *welcomeMsg) get(d *dec) {
	m.Version = d.u32()
	m.Worker = d.str(4096, "worker")
	m.Device = d.str(4096, "device")
}

type errorMsg struct {
	Code uint8
	Msg  string
}

func (m *errorMsg) put(e *enc) { e.u8(m.Code); e.str(m.Msg) }
func (m *errorMsg) get(d *dec) { m.Code = d.u8(); m.Msg = d.str(maxStr, "error") }

type idMsg struct{ ID uint32 } // branch, close, current, result, model query answer

func (m *idMsg) put(e *enc) { e.u32(m.ID) }
func (m *idMsg) get(d *dec) { m.ID = d.u32() }

type modelQueryMsg struct{ Hash [32]byte }

func (m *modelQueryMsg) put(e *enc) { e.b = append(e.b, m.Hash[:]...) }
func (m *modelQueryMsg) get(d *dec) { copy(m.Hash[:], d.take(32, "hash")) }

type modelMsg struct {
	ID    uint32
	Found bool
}

func (m *modelMsg) put(e *enc) { e.u32(m.ID); e.bool(m.Found) }
func (m *modelMsg) get(d *dec) { m.ID = d.u32(); m.Found = d.bool() }

type loadModelMsg struct {
	Config  string // engine.Config as JSON
	Tensors int
}

func (m *loadModelMsg) put(e *enc) { e.str(m.Config); e.i32(m.Tensors) }
func (m *loadModelMsg) get(d *dec) {
	m.Config = d.str(maxStr, "config")
	m.Tensors = d.i32()
	if d.err == nil && (m.Tensors < 1 || m.Tensors > maxTensors) {
		d.fail("%d tensors, want 1 to %d", m.Tensors, maxTensors)
	}
}

type tensorMsg struct {
	Name  string
	Shape []int
	Data  []float32
}

func (m *tensorMsg) put(e *enc) { e.str(m.Name); e.ints(m.Shape); e.f32s(m.Data) }
func (m *tensorMsg) get(d *dec) {
	m.Name = d.str(1024, "tensor name")
	m.Shape = d.ints("shape")
	if d.err == nil && len(m.Shape) > maxDims {
		d.fail("tensor %s has %d dimensions", m.Name, len(m.Shape))
	}
	size := 1
	for _, s := range m.Shape {
		if s < 0 || s > MaxMessage {
			d.fail("tensor %s has dimension %d", m.Name, s)
			return
		}
		size *= s
		if size > MaxMessage {
			d.fail("tensor %s of shape %v is too large", m.Name, m.Shape)
			return
		}
	}
	m.Data = d.f32s("tensor data")
	if d.err == nil && len(m.Data) != size {
		d.fail("tensor %s has %d values for shape %v", m.Name, len(m.Data), m.Shape)
	}
}

func putOptions(e *enc, o *sample.Options) {
	e.str(o.Steps)
	e.i32(o.DiffusionSteps)
	e.str(o.Method)
	e.f32(o.Eta)
	e.i32(o.M)
	e.bool(o.GHG)
	e.f32(o.CFG)
	e.f32(o.UpdateRate)
	e.u32(uint32(len(o.Labels)))
	for _, y := range o.Labels {
		e.f32s(y)
	}
	e.i32(o.N)
	e.u64(o.Seed)
	e.i64(o.SnapshotBytes)
	e.bool(o.ClipX0)
}

func getOptions(d *dec) sample.Options {
	var o sample.Options
	o.Steps = d.str(4096, "steps")
	o.DiffusionSteps = d.i32()
	o.Method = d.str(64, "method")
	o.Eta = d.f32()
	o.M = d.i32()
	o.GHG = d.bool()
	o.CFG = d.f32()
	o.UpdateRate = d.f32()
	n := d.count(5, "labels") // each label is at least a presence byte and a count
	if n > 0 {
		o.Labels = make([][]float32, n)
		for i := range o.Labels {
			o.Labels[i] = d.f32s("label")
		}
	}
	o.N = d.i32()
	o.Seed = d.u64()
	o.SnapshotBytes = d.i64()
	o.ClipX0 = d.bool()
	return o
}

type newSamplerMsg struct {
	Model uint32
	Opt   sample.Options
}

func (m *newSamplerMsg) put(e *enc) { e.u32(m.Model); putOptions(e, &m.Opt) }
func (m *newSamplerMsg) get(d *dec) { m.Model = d.u32(); m.Opt = getOptions(d) }

// statusMsg is a sampler's position and requested settings, sent after
// every request on it so the client answers accessors without asking.
type statusMsg struct {
	Index       int // current timestep index, −1 when finished
	UpdatesDone int
	M           int
	GHG         bool
	CFG         float32
	Rate        float32
	Err         string // the sticky error of the run, "" if none
	OpCode      uint8  // how the request failed (error codes), when OpErr is set
	OpErr       string // the request's error, "" when it succeeded
	SnapBytes   int64  // the memory the run's snapshots hold
}

func (m *statusMsg) put(e *enc) {
	e.i32(m.Index)
	e.i32(m.UpdatesDone)
	e.i32(m.M)
	e.bool(m.GHG)
	e.f32(m.CFG)
	e.f32(m.Rate)
	e.str(m.Err)
	e.u8(m.OpCode)
	e.str(m.OpErr)
	e.i64(m.SnapBytes)
}

func (m *statusMsg) get(d *dec) {
	m.Index = d.i32()
	m.UpdatesDone = d.i32()
	m.M = d.i32()
	m.GHG = d.bool()
	m.CFG = d.f32()
	m.Rate = d.f32()
	m.Err = d.str(maxStr, "status error")
	m.OpCode = d.u8()
	m.OpErr = d.str(maxStr, "request error")
	m.SnapBytes = d.i64()
}

type samplerMsg struct {
	ID        uint32
	N         int
	DDIM      bool
	Timesteps []int     // original timestep of each respaced index
	Sigma     []float64 // sqrt(1 − ᾱ) of each respaced index
	Status    statusMsg
}

func (m *samplerMsg) put(e *enc) {
	e.u32(m.ID)
	e.i32(m.N)
	e.bool(m.DDIM)
	e.ints(m.Timesteps)
	e.f64s(m.Sigma)
	m.Status.put(e)
}

func (m *samplerMsg) get(d *dec) {
	m.ID = d.u32()
	m.N = d.i32()
	m.DDIM = d.bool()
	m.Timesteps = d.ints("timesteps")
	m.Sigma = d.f64s("sigma")
	m.Status.get(d)
	if d.err == nil && len(m.Sigma) != len(m.Timesteps) {
		d.fail("%d sigmas for %d timesteps", len(m.Sigma), len(m.Timesteps))
	}
}

// Step kinds.
const (
	stepUpdate   uint8 = 1 + iota // one cell update (or the timestep's diffusion step)
	stepTimestep                  // the rest of the timestep
	stepRunTo                     // up to timestep index Arg
	stepRewind                    // back to timestep index Arg
)

type stepMsg struct {
	ID         uint32
	Kind       uint8
	Arg        int
	CellFrames bool // send a frame after every cell update
	StepFrames bool // send a frame after every timestep
	Current    bool // then send the frame at the new position (as Current)
}

func (m *stepMsg) put(e *enc) {
	e.u32(m.ID)
	e.u8(m.Kind)
	e.i32(m.Arg)
	e.bool(m.CellFrames)
	e.bool(m.StepFrames)
	e.bool(m.Current)
}

func (m *stepMsg) get(d *dec) {
	m.ID = d.u32()
	m.Kind = d.u8()
	m.Arg = d.i32()
	m.CellFrames = d.bool()
	m.StepFrames = d.bool()
	m.Current = d.bool()
	if d.err == nil && (m.Kind < stepUpdate || m.Kind > stepRewind) {
		d.fail("step kind %d", m.Kind)
	}
}

// Setting keys.
const (
	setM uint8 = 1 + iota
	setRate
	setCFG
	setGHG
	setMeasure
	setWatch
	setUnwatch
)

type setMsg struct {
	ID      uint32
	Key     uint8
	A, B, C int
	F       float32
}

func (m *setMsg) put(e *enc) {
	e.u32(m.ID)
	e.u8(m.Key)
	e.i32(m.A)
	e.i32(m.B)
	e.i32(m.C)
	e.f32(m.F)
}
func (m *setMsg) get(d *dec) {
	m.ID = d.u32()
	m.Key = d.u8()
	m.A, m.B, m.C = d.i32(), d.i32(), d.i32()
	m.F = d.f32()
	if d.err == nil && (m.Key < setM || m.Key > setUnwatch) {
		d.fail("setting key %d", m.Key)
	}
}

func putState(e *enc, st *engine.State) {
	if st == nil {
		e.u8(0)
		return
	}
	e.u8(1)
	e.i32(st.B)
	e.i32(st.H)
	e.i32(st.W)
	e.i32(st.C)
	e.f32s(st.Data)
}

func getState(d *dec) *engine.State {
	switch p := d.u8(); {
	case d.err != nil, p == 0:
		return nil
	case p != 1:
		d.fail("grid presence byte %d", p)
		return nil
	}
	b, h, w, c := d.i32(), d.i32(), d.i32(), d.i32()
	for _, v := range []int{b, h, w, c} {
		if d.err == nil && (v < 1 || v > maxGridDim) {
			d.fail("grid of shape (%d, %d, %d, %d)", b, c, h, w)
		}
	}
	data := d.f32s("grid")
	if d.err != nil {
		return nil
	}
	if int64(b)*int64(h)*int64(w)*int64(c) != int64(len(data)) {
		d.fail("grid of shape (%d, %d, %d, %d) has %d values", b, c, h, w, len(data))
		return nil
	}
	return &engine.State{B: b, H: h, W: w, C: c, Data: data}
}

type setStateMsg struct {
	ID    uint32
	State *engine.State
}

func (m *setStateMsg) put(e *enc) { e.u32(m.ID); putState(e, m.State) }
func (m *setStateMsg) get(d *dec) {
	m.ID = d.u32()
	m.State = getState(d)
	if d.err == nil && m.State == nil {
		d.fail("no grid")
	}
}

type frameMsg struct{ F *sample.Frame }

func (m *frameMsg) put(e *enc) {
	f := m.F
	e.u8(uint8(f.Kind))
	e.i32(f.TimestepIndex)
	e.i32(f.Timesteps)
	e.i32(f.T)
	e.i32(f.Update)
	e.i32(f.M)
	e.i32(f.N)
	e.bool(f.CFG)
	putState(e, f.State)
	e.f32s(f.Xt)
	e.f32s(f.X0)
	e.f32s(f.XPrev)
	e.f32s(f.Magnitude)
	e.f32s(f.Attn)
	e.bool(f.Done)
}

func (m *frameMsg) get(d *dec) {
	f := &sample.Frame{}
	k := d.u8()
	if d.err == nil && k > uint8(sample.FrameTimestep) {
		d.fail("frame kind %d", k)
	}
	f.Kind = sample.FrameKind(k)
	f.TimestepIndex = d.i32()
	f.Timesteps = d.i32()
	f.T = d.i32()
	f.Update = d.i32()
	f.M = d.i32()
	f.N = d.i32()
	f.CFG = d.bool()
	f.State = getState(d)
	f.Xt = d.f32s("x_t")
	f.X0 = d.f32s("x0")
	f.XPrev = d.f32s("x_prev")
	f.Magnitude = d.f32s("magnitude")
	f.Attn = d.f32s("attention")
	f.Done = d.bool()
	m.F = f
}

type dataMsg struct{ Data []float32 }

func (m *dataMsg) put(e *enc) { e.f32s(m.Data) }
func (m *dataMsg) get(d *dec) { m.Data = d.f32s("data") }

// callMsg is one denoiser call on a given grid (geca denoise): M updates
// with masks drawn from Seed's mask stream at Rate, or the given Masks
// (M × B·H·W, cell-major), or every cell when Rate is 1.
type callMsg struct {
	Model uint32
	State *engine.State
	T     []int
	Y     [][]float32
	M     int
	Rate  float32
	Seed  uint64
	Masks []float32
}

func (m *callMsg) put(e *enc) {
	e.u32(m.Model)
	putState(e, m.State)
	e.ints(m.T)
	e.u32(uint32(len(m.Y)))
	for _, y := range m.Y {
		e.f32s(y)
	}
	e.i32(m.M)
	e.f32(m.Rate)
	e.u64(m.Seed)
	e.f32s(m.Masks)
}

func (m *callMsg) get(d *dec) {
	m.Model = d.u32()
	m.State = getState(d)
	m.T = d.ints("timesteps")
	n := d.count(5, "labels")
	m.Y = make([][]float32, n)
	for i := range m.Y {
		m.Y[i] = d.f32s("label")
	}
	m.M = d.i32()
	m.Rate = d.f32()
	m.Seed = d.u64()
	m.Masks = d.f32s("masks")
	if d.err == nil && m.State == nil {
		d.fail("no grid")
	}
}

type gridMsg struct{ State *engine.State }

func (m *gridMsg) put(e *enc) { putState(e, m.State) }
func (m *gridMsg) get(d *dec) { m.State = getState(d) }

// payload is any message body.
type payload interface {
	put(e *enc)
	get(d *dec)
}

func encode(p payload) []byte {
	var e enc
	p.put(&e)
	return e.b
}

// decode fills p from a message of type t and checks that all of it was read.
func decode(t msgType, b []byte, p payload) error {
	d := dec{b: b, t: t}
	p.get(&d)
	return d.end()
}
