package remote

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"geca/engine"
	"geca/engine/sample"
)

// ErrAuth is returned when the worker refuses the token.
var ErrAuth = errors.New("remote: authentication failed (wrong or missing token)")

// Error is a request that failed in the worker.
type Error struct{ Msg string }

func (e *Error) Error() string { return "worker: " + e.Msg }

// DefaultTimeout is how long a client waits for any message from a busy
// worker (it sends a heartbeat every 2 s while computing) before it gives
// the connection up.
const DefaultTimeout = 30 * time.Second

// Client is a connection to a worker. Requests are served one at a time; a
// Client may be shared by goroutines, a Sampler may not.
type Client struct {
	rwc io.ReadWriteCloser
	br  *bufio.Reader
	bw  *bufio.Writer

	wmu sync.Mutex // writes: requests and cancels
	seq uint64     // client messages sent after the hello (guarded by wmu)

	mu     sync.Mutex // one request at a time
	broken error      // set once the connection failed (guarded by mu)

	qmu    sync.Mutex
	closeQ []uint32 // samplers to drop, sent before the next request

	welcome welcomeMsg
	timeout time.Duration
	proc    *process
	label   string
}

// Options configure a client.
type Options struct {
	// Token authenticates to a worker that requires one.
	Token string
	// Timeout bounds the wait for any message from the worker (0:
	// DefaultTimeout).
	Timeout time.Duration
	// Client describes this end in the worker's log (e.g. its version).
	Client string
}

// NewClient speaks the protocol on rwc (for example a connection or a pair
// of pipes); it sends the hello and waits for the welcome.
func NewClient(rwc io.ReadWriteCloser, opt Options) (*Client, error) {
	c := &Client{rwc: rwc, br: bufio.NewReaderSize(rwc, 64<<10), bw: bufio.NewWriterSize(rwc, 64<<10),
		timeout: opt.Timeout, label: "worker"}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if err := c.handshake(opt); err != nil {
		rwc.Close()
		return nil, err
	}
	return c, nil
}

// Dial connects to a worker listening on addr (HOST:PORT).
func Dial(ctx context.Context, addr string, opt Options) (*Client, error) {
	d := net.Dialer{KeepAlive: 15 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect to worker %s: %w", addr, err)
	}
	c, err := NewClient(conn, opt)
	if err != nil {
		return nil, fmt.Errorf("worker %s: %w", addr, err)
	}
	c.label = "worker " + addr
	return c, nil
}

// Start runs a worker process (for example `geca-cuda worker`) that serves
// on its standard input and output, and connects to it. The worker's
// standard error goes to log (nil: discarded) and its last lines are kept
// for error messages. Closing the client ends the process.
func Start(name string, args []string, log io.Writer, opt Options) (*Client, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	p := &process{tail: &tailBuffer{max: 4096}, exited: make(chan struct{})}
	cmd := exec.Command(name, args...)
	cmd.Stdin, cmd.Stdout = inR, outW
	if log != nil {
		cmd.Stderr = io.MultiWriter(p.tail, log)
	} else {
		cmd.Stderr = p.tail
	}
	if err := cmd.Start(); err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("start worker: %w", err)
	}
	inR.Close()
	outW.Close()
	p.cmd = cmd
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	c, err := NewClient(&pipeConn{r: outR, w: inW}, opt)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("it ended before the handshake")
		}
		err = p.explain(err)
		p.stop()
		return nil, fmt.Errorf("worker %s: %w", name, err)
	}
	c.proc = p
	c.label = "worker " + name
	return c, nil
}

// pipeConn is a pair of pipes as one connection.
type pipeConn struct {
	r *os.File
	w *os.File
}

func (p *pipeConn) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p *pipeConn) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p *pipeConn) SetReadDeadline(t time.Time) error {
	return p.r.SetReadDeadline(t)
}
func (p *pipeConn) Close() error {
	e1 := p.w.Close()
	e2 := p.r.Close()
	return errors.Join(e1, e2)
}

// process is a worker started by Start.
type process struct {
	cmd    *exec.Cmd
	tail   *tailBuffer
	exited chan struct{}
	err    error // of Wait, once exited is closed
}

// explain adds the worker's fate and last words to a connection error.
func (p *process) explain(err error) error {
	select {
	case <-p.exited:
	case <-time.After(2 * time.Second):
		return err
	}
	status := "exited"
	if p.err != nil {
		status = p.err.Error()
	}
	if t := strings.Join(strings.Fields(p.tail.String()), " "); t != "" {
		return fmt.Errorf("%w (worker %s: %s)", err, status, t)
	}
	return fmt.Errorf("%w (worker %s)", err, status)
}

// stop ends the process: it gets a moment to exit on its own (its input is
// closed), then it is killed.
func (p *process) stop() {
	select {
	case <-p.exited:
		return
	case <-time.After(3 * time.Second):
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

func (c *Client) handshake(opt Options) error {
	if err := c.writeHello(opt); err != nil {
		return err
	}
	t, b, err := c.read()
	if err != nil {
		return err
	}
	switch t {
	case tWelcome:
		if err := decode(t, b, &c.welcome); err != nil {
			return err
		}
		if c.welcome.Version != Version {
			return fmt.Errorf("worker speaks protocol version %d, this client %d", c.welcome.Version, Version)
		}
		return nil
	case tError:
		return responseError(t, b)
	default:
		return protoErr("expected a welcome, got a %s message", t)
	}
}

func (c *Client) writeHello(opt Options) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	h := helloMsg{Magic: Magic, Version: Version, Token: opt.Token, Client: opt.Client}
	if err := writeMsg(c.bw, tHello, encode(&h)); err != nil {
		return err
	}
	return c.bw.Flush()
}

// Worker is the worker's version line; Device says what it computes on.
func (c *Client) Worker() string { return c.welcome.Worker }
func (c *Client) Device() string { return c.welcome.Device }

// Close ends the connection (and the worker process Start began).
func (c *Client) Close() error {
	c.mu.Lock()
	if c.broken == nil {
		c.broken = errors.New("remote: client closed")
	}
	c.mu.Unlock()
	err := c.rwc.Close()
	if c.proc != nil {
		c.proc.stop()
	}
	return err
}

// write sends one message and returns its sequence number.
func (c *Client) write(t msgType, payload []byte) (uint64, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if t != tCancel {
		c.seq++
	}
	if err := writeMsg(c.bw, t, payload); err != nil {
		return 0, err
	}
	return c.seq, c.bw.Flush()
}

func (c *Client) read() (msgType, []byte, error) {
	if d, ok := c.rwc.(interface{ SetReadDeadline(time.Time) error }); ok {
		_ = d.SetReadDeadline(time.Now().Add(c.timeout))
	}
	t, b, err := readMsg(c.br, MaxMessage, nil)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("no answer from the %s for %v", c.label, c.timeout)
	}
	return t, b, err
}

// fail marks the connection broken (c.mu held).
func (c *Client) fail(err error) error {
	if errors.Is(err, io.EOF) {
		err = fmt.Errorf("the %s closed the connection", c.label)
	}
	if c.proc != nil {
		err = c.proc.explain(err)
	}
	c.broken = fmt.Errorf("remote: %w", err)
	c.rwc.Close()
	return c.broken
}

// Err reports whether the connection has failed.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broken
}

// request sends one message (after any queued closes) and returns the
// answer, passing frames that come first to onFrame. A cancelled ctx sends
// the worker a cancel for this request.
// answers receives what comes before the answer to a request (nil: dropped).
type answers struct {
	frame   func(*sample.Frame) // frames the run emits
	current func(*sample.Frame) // the frame at the position after a step
	data    func([]float32)
}

func (c *Client) request(ctx context.Context, t msgType, p payload, h *answers) (msgType, []byte, error) {
	if h == nil {
		h = &answers{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return 0, nil, c.broken
	}
	c.qmu.Lock()
	q := c.closeQ
	c.closeQ = nil
	c.qmu.Unlock()
	for _, id := range q {
		if _, err := c.write(tClose, encode(&idMsg{id})); err != nil {
			return 0, nil, c.fail(err)
		}
	}
	seq, err := c.write(t, encode(p))
	if err != nil {
		return 0, nil, c.fail(err)
	}
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { _, _ = c.write(tCancel, encode(&seqMsg{seq})) })
		defer stop()
	}
	for {
		rt, b, err := c.read()
		if err != nil {
			return 0, nil, c.fail(err)
		}
		switch rt {
		case tHeartbeat:
			continue
		case tFrame, tCurFrame:
			var f frameMsg
			if err := decode(rt, b, &f); err != nil {
				return 0, nil, c.fail(err)
			}
			if fn := h.frame; rt == tCurFrame {
				if h.current != nil {
					h.current(f.F)
				}
			} else if fn != nil {
				fn(f.F)
			}
			continue
		case tData:
			var d dataMsg
			if err := decode(rt, b, &d); err != nil {
				return 0, nil, c.fail(err)
			}
			if h.data != nil {
				h.data(d.Data)
			}
			continue
		}
		return rt, b, nil
	}
}

// responseError turns an error message into an error.
func responseError(t msgType, b []byte) error {
	var e errorMsg
	if err := decode(t, b, &e); err != nil {
		return err
	}
	return codeError(e.Code, e.Msg)
}

func codeError(code uint8, msg string) error {
	switch code {
	case codeDone:
		return sample.ErrDone
	case codeCanceled:
		return context.Canceled
	case codeAuth:
		return ErrAuth
	}
	return &Error{Msg: msg}
}

// expect decodes an answer of type want into p; an error message becomes
// an error, anything else breaks the connection.
func (c *Client) expect(t msgType, b []byte, want msgType, p payload) error {
	if t == tError {
		return responseError(t, b)
	}
	if t != want {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.fail(protoErr("expected a %s message, got a %s message", want, t))
	}
	if err := decode(t, b, p); err != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.fail(err)
	}
	return nil
}

// ---- models ---------------------------------------------------------------------

// Model is a model held by the worker.
type Model struct {
	c   *Client
	id  uint32
	Cfg engine.Config
}

// LoadModel gives the worker a model: nothing is sent when the worker
// already holds one with the same config and weights.
func (c *Client) LoadModel(m *engine.Model) (*Model, error) {
	h, err := modelHash(m)
	if err != nil {
		return nil, err
	}
	t, b, err := c.request(context.Background(), tModelQuery, &modelQueryMsg{Hash: h}, nil)
	if err != nil {
		return nil, err
	}
	var mm modelMsg
	if err := c.expect(t, b, tModel, &mm); err != nil {
		return nil, err
	}
	if !mm.Found {
		if mm, err = c.upload(m); err != nil {
			return nil, err
		}
	}
	return &Model{c: c, id: mm.ID, Cfg: m.Cfg}, nil
}

func (c *Client) upload(m *engine.Model) (modelMsg, error) {
	cfg, err := json.Marshal(m.Cfg)
	if err != nil {
		return modelMsg{}, err
	}
	names := m.Names()
	ts := m.Tensors()
	msgs := make([]*tensorMsg, len(names))
	for i, n := range names {
		t := ts[n]
		data, ok := t.Data().([]float32)
		if !ok {
			return modelMsg{}, fmt.Errorf("tensor %s is not float32", n)
		}
		msgs[i] = &tensorMsg{Name: n, Shape: append([]int(nil), t.Shape()...), Data: data}
	}
	c.mu.Lock()
	if c.broken != nil {
		c.mu.Unlock()
		return modelMsg{}, c.broken
	}
	// The load message and its tensors go out as one request.
	if _, err := c.write(tLoadModel, encode(&loadModelMsg{Config: string(cfg), Tensors: len(msgs)})); err != nil {
		defer c.mu.Unlock()
		return modelMsg{}, c.fail(err)
	}
	for _, tm := range msgs {
		if _, err := c.write(tTensor, encode(tm)); err != nil {
			defer c.mu.Unlock()
			return modelMsg{}, c.fail(err)
		}
	}
	var rt msgType
	var b []byte
	for {
		if rt, b, err = c.read(); err != nil {
			defer c.mu.Unlock()
			return modelMsg{}, c.fail(err)
		}
		if rt != tHeartbeat {
			break
		}
	}
	c.mu.Unlock()
	var mm modelMsg
	err = c.expect(rt, b, tModel, &mm)
	return mm, err
}

// Denoise runs one denoiser call in the worker (see the package function
// Denoise) and returns the resulting grid.
func (m *Model) Denoise(st *engine.State, t []int, y [][]float32, M int, rate float32, seed uint64, masks []float32) (*engine.State, error) {
	rt, b, err := m.c.request(context.Background(), tCall, &callMsg{Model: m.id, State: st, T: t, Y: y, M: M, Rate: rate, Seed: seed, Masks: masks}, nil)
	if err != nil {
		return nil, err
	}
	var g gridMsg
	if err := m.c.expect(rt, b, tGrid, &g); err != nil {
		return nil, err
	}
	if g.State == nil {
		return nil, &Error{Msg: "no grid in the answer"}
	}
	return g.State, nil
}

// ---- samplers -------------------------------------------------------------------

// Sampler is a sampling run in the worker, with the operations of
// sample.Sampler (both are a sample.Stepper). Accessors answer from the status of the last request;
// every other method is one round trip. Not safe for concurrent use.
type Sampler struct {
	c         *Client
	id        uint32
	n         int
	ddim      bool
	timesteps []int
	sigma     []float64
	st        statusMsg

	observer   func(*sample.Frame)
	cellFrames bool
}

// NewSampler starts a run (sample.New) in the worker. Options.Streams
// cannot cross the connection and must be nil.
func (m *Model) NewSampler(opt sample.Options) (*Sampler, error) {
	if opt.Streams != nil {
		return nil, errors.New("remote: replay streams cannot be sent to a worker")
	}
	t, b, err := m.c.request(context.Background(), tNewSampler, &newSamplerMsg{Model: m.id, Opt: opt}, nil)
	if err != nil {
		return nil, err
	}
	return m.c.newSampler(t, b)
}

func (c *Client) newSampler(t msgType, b []byte) (*Sampler, error) {
	var sm samplerMsg
	if err := c.expect(t, b, tSampler, &sm); err != nil {
		return nil, err
	}
	s := &Sampler{c: c, id: sm.ID, n: sm.N, ddim: sm.DDIM, timesteps: sm.Timesteps, sigma: sm.Sigma, st: sm.Status}
	// A sampler dropped without Close is closed in the worker too.
	runtime.AddCleanup(s, func(id uint32) { c.queueClose(id) }, s.id)
	return s, nil
}

func (c *Client) queueClose(id uint32) {
	c.qmu.Lock()
	c.closeQ = append(c.closeQ, id)
	c.qmu.Unlock()
}

// Close drops the run in the worker (with the next request).
func (s *Sampler) Close() { s.c.queueClose(s.id) }

// status handles the status answer that ends every sampler request.
func (s *Sampler) status(t msgType, b []byte) error {
	var st statusMsg
	if err := s.c.expect(t, b, tStatus, &st); err != nil {
		return err
	}
	s.st = st
	if st.OpErr != "" {
		return codeError(st.OpCode, st.OpErr)
	}
	return nil
}

func (s *Sampler) do(ctx context.Context, t msgType, p payload, h *answers) error {
	rt, b, err := s.c.request(ctx, t, p, h)
	if err != nil {
		return err
	}
	return s.status(rt, b)
}

// Len is the number of timesteps of the run.
func (s *Sampler) Len() int { return len(s.timesteps) }

// N is the number of samples.
func (s *Sampler) N() int { return s.n }

// DDIM reports whether the run uses DDIM steps.
func (s *Sampler) DDIM() bool { return s.ddim }

// TimestepOf is the original timestep of respaced index i (−1 outside).
func (s *Sampler) TimestepOf(i int) int {
	if i < 0 || i >= len(s.timesteps) {
		return -1
	}
	return s.timesteps[i]
}

// Sigma is sqrt(1 − ᾱ) at respaced index i (the noise level of x_t).
func (s *Sampler) Sigma(i int) float64 {
	if i < 0 || i >= len(s.sigma) {
		return 0
	}
	return s.sigma[i]
}

// Index, Timestep, UpdatesDone, Done, M, GHG, CFG and UpdateRate are those
// of sample.Sampler, as of the last request.
func (s *Sampler) Index() int          { return s.st.Index }
func (s *Sampler) Timestep() int       { return s.TimestepOf(s.st.Index) }
func (s *Sampler) UpdatesDone() int    { return s.st.UpdatesDone }
func (s *Sampler) Done() bool          { return s.st.Index < 0 }
func (s *Sampler) M() int              { return s.st.M }
func (s *Sampler) GHG() bool           { return s.st.GHG }
func (s *Sampler) CFG() float32        { return s.st.CFG }
func (s *Sampler) UpdateRate() float32 { return s.st.Rate }

// Err is the sticky error of the run (as of the last request).
func (s *Sampler) Err() error {
	if s.st.Err == "" {
		return nil
	}
	return &Error{Msg: s.st.Err}
}

func (s *Sampler) set(key uint8, a, b, c int, f float32) error {
	return s.do(context.Background(), tSet, &setMsg{ID: s.id, Key: key, A: a, B: b, C: c, F: f}, nil)
}

func b2i(v bool) int {
	if v {
		return 1
	}
	return 0
}

// SetM, SetUpdateRate, SetCFG, SetGHG, SetMeasure, WatchCell and
// UnwatchCell are those of sample.Sampler (each also reports a failed
// connection).
func (s *Sampler) SetM(m int) error              { return s.set(setM, m, 0, 0, 0) }
func (s *Sampler) SetUpdateRate(r float32) error { return s.set(setRate, 0, 0, 0, r) }
func (s *Sampler) SetCFG(scale float32) error    { return s.set(setCFG, 0, 0, 0, scale) }
func (s *Sampler) SetGHG(on bool) error          { return s.set(setGHG, b2i(on), 0, 0, 0) }
func (s *Sampler) SetMeasure(on bool) error      { return s.set(setMeasure, b2i(on), 0, 0, 0) }
func (s *Sampler) WatchCell(b, i, j int) error   { return s.set(setWatch, b, i, j, 0) }
func (s *Sampler) UnwatchCell() error            { return s.set(setUnwatch, 0, 0, 0, 0) }

// SetObserver installs fn to receive frames, as sample.Sampler's: the
// worker sends them during the stepping requests.
func (s *Sampler) SetObserver(fn func(*sample.Frame), cellFrames bool) {
	s.observer, s.cellFrames = fn, cellFrames
}

func (s *Sampler) step(ctx context.Context, kind uint8, arg int, current func(*sample.Frame)) error {
	q := &stepMsg{ID: s.id, Kind: kind, Arg: arg, Current: current != nil}
	if s.observer != nil && kind != stepRewind {
		q.CellFrames, q.StepFrames = s.cellFrames, true
	}
	return s.do(ctx, tStep, q, &answers{frame: s.observer, current: current})
}

// StepUpdateCurrent is StepUpdate followed by Current, in one round trip.
func (s *Sampler) StepUpdateCurrent() (*sample.Frame, error) {
	var f *sample.Frame
	if err := s.step(context.Background(), stepUpdate, 0, func(fr *sample.Frame) { f = fr }); err != nil {
		return nil, err
	}
	if f == nil {
		return nil, &Error{Msg: "no frame in the answer"}
	}
	return f, nil
}

// StepUpdate, StepTimestep, RunTo, RunToEnd and Rewind are those of
// sample.Sampler.
func (s *Sampler) StepUpdate() error                        { return s.step(context.Background(), stepUpdate, 0, nil) }
func (s *Sampler) StepTimestep(ctx context.Context) error   { return s.step(ctx, stepTimestep, 0, nil) }
func (s *Sampler) RunTo(ctx context.Context, idx int) error { return s.step(ctx, stepRunTo, idx, nil) }
func (s *Sampler) RunToEnd(ctx context.Context) error       { return s.RunTo(ctx, -1) }
func (s *Sampler) Rewind(ctx context.Context, idx int) error {
	return s.step(ctx, stepRewind, idx, nil)
}

// SetState replaces the grids at the current position (sample.Sampler.SetState).
func (s *Sampler) SetState(st *engine.State) error {
	if st == nil {
		return errors.New("sample: state is nil")
	}
	return s.do(context.Background(), tSetState, &setStateMsg{ID: s.id, State: st}, nil)
}

// Current returns the frame at the current position.
func (s *Sampler) Current() (*sample.Frame, error) {
	var f *sample.Frame
	err := s.do(context.Background(), tCurrent, &idMsg{s.id}, &answers{frame: func(fr *sample.Frame) { f = fr }})
	if err != nil {
		return nil, err
	}
	if f == nil {
		return nil, &Error{Msg: "no frame in the answer"}
	}
	return f, nil
}

// Result returns the final samples (N, C_in, H, W) once the run is done.
func (s *Sampler) Result() ([]float32, error) {
	var x []float32
	rt, b, err := s.c.request(context.Background(), tResult, &idMsg{s.id}, &answers{data: func(d []float32) { x = d }})
	if err != nil {
		return nil, err
	}
	if err := s.status(rt, b); err != nil {
		return nil, err
	}
	if x == nil {
		return nil, &Error{Msg: "no data in the answer"}
	}
	return x, nil
}

// Branch returns an independent copy of the run in the worker (its observer
// and watched cell are not copied, as with sample.Sampler.Branch).
func (s *Sampler) Branch() (*Sampler, error) {
	t, b, err := s.c.request(context.Background(), tBranch, &idMsg{s.id}, nil)
	if err != nil {
		return nil, err
	}
	return s.c.newSampler(t, b)
}

// Fork is Branch as a sample.Stepper.
func (s *Sampler) Fork() (sample.Stepper, error) {
	b, err := s.Branch()
	if err != nil {
		return nil, err
	}
	return b, nil
}

// SnapshotBytes is the memory the run's snapshots hold in the worker (as of
// the last request).
func (s *Sampler) SnapshotBytes() int64 { return s.st.SnapBytes }

var _ sample.Stepper = (*Sampler)(nil)

// Stdio is the process's standard input and output as one connection, for
// a worker serving its parent over pipes. Nothing else may write to
// standard output while it is in use.
func Stdio() io.ReadWriteCloser { return stdio{os.Stdin, os.Stdout} }

type stdio struct{ in, out *os.File }

func (s stdio) Read(b []byte) (int, error)  { return s.in.Read(b) }
func (s stdio) Write(b []byte) (int, error) { return s.out.Write(b) }
func (s stdio) Close() error                { return errors.Join(s.in.Close(), s.out.Close()) }
