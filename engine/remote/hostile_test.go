package remote

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"geca/engine"
	"geca/engine/sample"
	"geca/internal/membudget"
)

// The worker against peers that mean harm: real TCP on 127.0.0.1, every
// wait bounded.

const hostileToken = "a-token-long-enough-for-any-network"

// serve runs s on a loopback port until the test ends and returns the
// address.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if s.Token == "" {
		s.Token = hostileToken
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Serve(ctx, l); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the worker did not stop within 10 s")
		}
	})
	return l.Addr().String()
}

// raw is a client speaking the protocol by hand.
type raw struct {
	t *testing.T
	c net.Conn
}

// dialRaw connects and says hello with token and version; it does not read
// the answer.
func dialRaw(t *testing.T, addr, token string, version uint32) *raw {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &raw{t, c}
	r.send(tHello, &helloMsg{Magic: Magic, Version: version, Token: token, Client: "raw"})
	return r
}

// authed connects and reads the welcome.
func authed(t *testing.T, addr string) *raw {
	r := dialRaw(t, addr, hostileToken, Version)
	if typ, _ := r.read(); typ != tWelcome {
		t.Fatalf("answer to a good hello: %s", typ)
	}
	return r
}

func (r *raw) send(typ msgType, p payload) {
	r.t.Helper()
	r.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := writeMsg(r.c, typ, encode(p)); err != nil {
		r.t.Fatal(err)
	}
}

// read returns the next message that is not a heartbeat (or fails the test
// after 10 s).
func (r *raw) read() (msgType, []byte) {
	r.t.Helper()
	for {
		r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		typ, b, err := readMsg(r.c, MaxMessage, nil)
		if err != nil {
			r.t.Fatalf("reading the answer: %v", err)
		}
		if typ != tHeartbeat {
			return typ, b
		}
	}
}

// wantError reads an error answer that contains want.
func (r *raw) wantError(what, want string) {
	r.t.Helper()
	typ, b := r.read()
	var e errorMsg
	if typ != tError || decode(typ, b, &e) != nil || !strings.Contains(e.Msg, want) {
		r.t.Fatalf("%s: answer %s %q, want an error containing %q", what, typ, e.Msg, want)
	}
}

// upload sends model m (or its config cfg, with m's tensors) and returns the
// answer.
func (r *raw) upload(m *engine.Model, cfg engine.Config) (msgType, []byte) {
	js, _ := json.Marshal(cfg)
	names := m.Names()
	r.send(tLoadModel, &loadModelMsg{Config: string(js), Tensors: len(names)})
	for _, n := range names {
		t := m.Tensors()[n]
		r.send(tTensor, &tensorMsg{Name: n, Shape: t.Shape(), Data: t.Data().([]float32)})
	}
	return r.read()
}

func (r *raw) model(m *engine.Model) uint32 {
	typ, b := r.upload(m, m.Cfg)
	var mm modelMsg
	if typ != tModel || decode(typ, b, &mm) != nil || !mm.Found {
		r.t.Fatalf("upload answered %s", typ)
	}
	return mm.ID
}

// Connections that never authenticate neither count against the session
// limit nor stay long: with MaxConns 2 and ten silent sockets open, a
// client still gets in, and the silent ones are closed after the
// handshake timeout without a word.
func TestUnauthenticatedConnections(t *testing.T) {
	addr := serve(t, &Server{MaxConns: 2, HandshakeTimeout: 300 * time.Millisecond})
	var silent []net.Conn
	for range 10 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		silent = append(silent, c)
	}
	start := time.Now()
	c, err := Dial(context.Background(), addr, Options{Token: hostileToken})
	if err != nil {
		t.Fatalf("a client behind 10 silent sockets: %v", err)
	}
	defer c.Close()
	if _, err := c.LoadModel(testModel(t)); err != nil {
		t.Fatal(err)
	}
	for i, s := range silent {
		s.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := s.Read(make([]byte, 1))
		var ne net.Error
		if n != 0 || err == nil || (errors.As(err, &ne) && ne.Timeout()) {
			t.Fatalf("silent socket %d: read %d bytes, %v; want it closed by the worker", i, n, err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("silent sockets closed after %v", d)
	}
	// Two sessions are served, a third is told the worker is full.
	c2, err := Dial(context.Background(), addr, Options{Token: hostileToken})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := Dial(context.Background(), addr, Options{Token: hostileToken}); err == nil || !strings.Contains(err.Error(), "maximum number of connections") {
		t.Fatalf("a third session: %v", err)
	}
}

// Nothing is revealed before authentication, the protocol version included.
func TestAuthenticationFirst(t *testing.T) {
	addr := serve(t, &Server{})
	r := dialRaw(t, addr, "wrong", Version+7)
	typ, b := r.read()
	var e errorMsg
	if typ != tError || decode(typ, b, &e) != nil || e.Code != codeAuth || strings.Contains(e.Msg, "version") {
		t.Fatalf("a wrong token and version: %s %+v, want only an authentication error", typ, e)
	}
	r = dialRaw(t, addr, hostileToken, Version+7)
	typ, b = r.read()
	if typ != tError || decode(typ, b, &e) != nil || e.Code != codeVersion {
		t.Fatalf("the right token and another version: %s %+v", typ, e)
	}
}

// A worker on a network address refuses a short token; on loopback any
// token will do.
func TestShortTokenOnTheNetwork(t *testing.T) {
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Skip(err)
	}
	defer l.Close()
	err = (&Server{Token: "short"}).Serve(context.Background(), l)
	if err == nil || !strings.Contains(err.Error(), "at least") {
		t.Fatalf("Serve with a short token on %s: %v", l.Addr(), err)
	}
}

// Requests sized to exhaust memory are refused with an error reply, cheaply,
// and the worker goes on serving: a model declaring a 4096x4096 grid, a
// denoiser call on a batch the grid does not fit, one whose updater passes
// the limit, a process of 2^31-1 steps, 100000 samples.
func TestOversizedRequests(t *testing.T) {
	defer membudget.Set(0)
	membudget.Set(256 << 20)
	addr := serve(t, &Server{})
	m := testModel(t)
	r := authed(t, addr)
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)

	big := m.Cfg
	big.GridH, big.GridW = 4096, 4096
	typ, body := r.upload(m, big)
	var e errorMsg
	if typ != tError || decode(typ, body, &e) != nil || !strings.Contains(e.Msg, "memory limit") || !strings.Contains(e.Msg, "4096x4096") {
		t.Fatalf("a 4096x4096 grid: %s %q", typ, e.Msg)
	}
	id := r.model(m)
	cfg := m.Cfg

	// A batch of 1x1 grids: the grid is checked before anything is sized.
	tiny := &engine.State{B: 65536, H: 1, W: 1, C: 1, Data: make([]float32, 65536)}
	ts, ys := make([]int, 65536), make([][]float32, 65536)
	for i := range ys {
		ys[i] = make([]float32, cfg.NumClasses)
	}
	r.send(tCall, &callMsg{Model: id, State: tiny, T: ts, Y: ys, M: 2, Rate: 1})
	r.wantError("65536 grids of 1x1 cells", "model tiny takes 6x5 cells")

	// Grids that fit the model, but whose updater passes the limit.
	const nb = 24000
	st := engine.NewState(nb, cfg.GridH, cfg.GridW, cfg.CellDim())
	ts, ys = make([]int, nb), ys[:nb]
	r.send(tCall, &callMsg{Model: id, State: st, T: ts, Y: ys, M: 2, Rate: 1})
	r.wantError("a call on 24000 grids", "memory limit")

	for _, c := range []struct {
		opt  sample.Options
		want string
	}{
		{sample.Options{Steps: "10", DiffusionSteps: 1<<31 - 1, N: 1}, "out of range"},
		{sample.Options{Steps: "10", N: 100000}, "out of range"},
		{sample.Options{Steps: "10", N: 30000}, "memory limit"},
		{sample.Options{Steps: "10", N: 1, SnapshotBytes: 1 << 60, M: 1 << 30}, "out of range"},
	} {
		r.send(tNewSampler, &newSamplerMsg{Model: id, Opt: c.opt})
		r.wantError("sampler options", c.want)
	}
	runtime.ReadMemStats(&b)
	if d := b.TotalAlloc - a.TotalAlloc; d > 1<<30 {
		t.Errorf("refusing the requests allocated %d MB", d>>20)
	}
	// Still serving.
	r.send(tNewSampler, &newSamplerMsg{Model: id, Opt: testOptions()})
	if typ, _ := r.read(); typ != tSampler {
		t.Fatalf("a normal sampler after the refusals: %s", typ)
	}
}

// A request that panics is answered with an error and the worker serves on
// (here the hook that readies models panics).
func TestPanicBecomesAnError(t *testing.T) {
	var once sync.Once
	addr := serve(t, &Server{Prepare: func(*engine.Model) error {
		once.Do(func() { panic("boom") })
		return nil
	}})
	c, err := Dial(context.Background(), addr, Options{Token: hostileToken})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.LoadModel(testModel(t)); err == nil || !strings.Contains(err.Error(), "internal error") || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("the request that panicked: %v", err)
	}
	rm, err := c.LoadModel(testModel(t))
	if err != nil {
		t.Fatalf("the next request: %v", err)
	}
	if _, err := rm.NewSampler(testOptions()); err != nil {
		t.Fatal(err)
	}
}

// A client that asks for a frame after every update and stops reading does
// not freeze the worker: its frames are queued outside the compute lock,
// and once its queue is full and it takes nothing for the write timeout it
// is dropped. Another client is served meanwhile.
func TestSlowReaderDoesNotFreezeTheWorker(t *testing.T) {
	s := &Server{WriteTimeout: 300 * time.Millisecond, queueLimit: 1 << 20}
	addr := serve(t, s)
	m := testModel(t)
	r := authed(t, addr)
	if tc, ok := r.c.(*net.TCPConn); ok {
		tc.SetReadBuffer(4 << 10)
	}
	id := r.model(m)
	opt := testOptions()
	opt.Steps, opt.M = "1000", 40
	r.send(tNewSampler, &newSamplerMsg{Model: id, Opt: opt})
	typ, b := r.read()
	var sm samplerMsg
	if typ != tSampler || decode(typ, b, &sm) != nil {
		t.Fatalf("new sampler: %s", typ)
	}
	// Every update's frame, for the whole run; never read.
	r.send(tStep, &stepMsg{ID: sm.ID, Kind: stepRunTo, Arg: -1, CellFrames: true, StepFrames: true})

	start := time.Now()
	c, err := Dial(context.Background(), addr, Options{Token: hostileToken})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rm, err := c.LoadModel(m)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rm.NewSampler(testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.StepTimestep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("the second client waited %v", d)
	}
	// The reader that stalled has been dropped (or finished, if its frames
	// all fitted in the buffers): either way the worker is free.
	deadline := time.Now().Add(20 * time.Second)
	for s.conns.Load() > 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := s.conns.Load(); n > 1 {
		t.Fatalf("%d sessions still open: the stalled reader was not dropped", n)
	}
}
