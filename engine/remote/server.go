package remote

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"geca/engine"
	"geca/engine/sample"
	"geca/internal/membudget"
)

// Server serves the engine to clients: sampling runs, their frames and
// denoiser calls on the models the clients upload.
type Server struct {
	// Token, when not empty, must be presented by every client (compared in
	// constant time). A server on a network address must have one.
	Token string
	// Worker and Device describe the worker in the welcome (version line;
	// the device it computes on).
	Worker, Device string
	// Prepare, if set, is called on every model before first use (to put
	// it on a GPU).
	Prepare func(*engine.Model) error
	// Logf receives one line per connection event; nil is silent.
	Logf func(format string, a ...any)
	// MaxConns bounds the authenticated connections served at once (0: 8).
	// Connections that have not authenticated yet do not count: they have
	// their own bound, MaxPending, and HandshakeTimeout to say hello.
	MaxConns int
	// MaxPending bounds the connections not yet authenticated (0: 64);
	// more are closed at once.
	MaxPending int
	// HandshakeTimeout bounds the time to the hello (0: 5 s).
	HandshakeTimeout time.Duration
	// Heartbeat is the interval of the keep-alive messages sent while a
	// request runs (0: 2 s).
	Heartbeat time.Duration
	// WriteTimeout drops a client that takes no 64 KiB of what it is sent
	// within this time (0: 10 s); a client that stops reading holds the
	// compute lock at most this long, and only when its queue is full.
	WriteTimeout time.Duration
	// BodyTimeout bounds the time to receive a message once its first byte
	// arrived, plus one second per 256 KiB of it (0: 30 s).
	BodyTimeout time.Duration

	queueLimit int // bytes queued for one client (0: maxQueued); smaller in tests

	once    sync.Once
	models  *modelCache
	compute sync.Mutex // one request computes at a time: the device is shared
	conns   atomic.Int32
	pending atomic.Int32
	held    atomic.Int64 // estimated bytes of the samplers and uploads all connections hold
}

// Limits of one connection.
const (
	maxQueued      = 2 * MaxMessage // bytes waiting to be sent to one client
	maxModelsHeld  = 8              // models one connection refers to
	defaultMaxPend = 64
)

// MinTokenLen is the shortest token a worker listening on a network
// address (not loopback) accepts.
const MinTokenLen = 16

func (s *Server) handshakeTimeout() time.Duration {
	if s.HandshakeTimeout > 0 {
		return s.HandshakeTimeout
	}
	return 5 * time.Second
}

func (s *Server) writeTimeout() time.Duration {
	if s.WriteTimeout > 0 {
		return s.WriteTimeout
	}
	return 10 * time.Second
}

func (s *Server) bodyTimeout(size int) time.Duration {
	base := s.BodyTimeout
	if base <= 0 {
		base = 30 * time.Second
	}
	return base + time.Duration(size>>18)*time.Second
}

func (s *Server) maxPending() int {
	if s.MaxPending > 0 {
		return s.MaxPending
	}
	return defaultMaxPend
}

func (s *Server) init() {
	s.once.Do(func() { s.models = newModelCache(2) })
}

func (s *Server) logf(format string, a ...any) {
	if s.Logf != nil {
		s.Logf(format, a...)
	}
}

func (s *Server) maxConns() int {
	if s.MaxConns > 0 {
		return s.MaxConns
	}
	return 8
}

// GenerateToken returns a random 128-bit token in hex.
func GenerateToken() (string, error) {
	return randomHex(16)
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// tokenOK compares tokens in constant time (hashes first, so the time does
// not depend on the length either).
func tokenOK(want, got string) bool {
	a, b := sha256.Sum256([]byte(want)), sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// Serve accepts connections on l until ctx ends. A server listening on a
// network must have a Token, at least MinTokenLen long unless l is on a
// loopback address. Each connection first has HandshakeTimeout to
// authenticate, outside the MaxConns session limit (MaxPending such at
// once); then it counts as a session.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	if s.Token == "" {
		return errors.New("remote: a worker listening on a network address needs a token")
	}
	if l != nil && !IsLoopback(l.Addr()) && len(s.Token) < MinTokenLen {
		return fmt.Errorf("remote: a worker listening on %s (not loopback) needs a token of at least %d characters", l.Addr(), MinTokenLen)
	}
	s.init()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		if int(s.pending.Load()) >= s.maxPending() {
			// Nothing is said before a peer authenticates.
			s.logf("refused %s: %d connections are already authenticating", c.RemoteAddr(), s.maxPending())
			c.Close()
			continue
		}
		s.pending.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			peer := c.RemoteAddr().String()
			if err := s.serveConn(ctx, c, true); err != nil {
				s.logf("%s: %v", peer, err)
			} else {
				s.logf("%s: disconnected", peer)
			}
		}()
	}
}

// IsLoopback reports whether addr is a loopback address (127.0.0.0/8, ::1).
func IsLoopback(addr net.Addr) bool {
	h, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// ServeConn serves one client on rwc until it disconnects, ctx ends or the
// client breaks the protocol; rwc is closed on return. A clean disconnect
// returns nil.
func (s *Server) ServeConn(ctx context.Context, rwc io.ReadWriteCloser) error {
	return s.serveConn(ctx, rwc, false)
}

// serveConn is ServeConn; counted connections came through Serve: they are
// pending until they authenticate, then sessions within MaxConns.
func (s *Server) serveConn(ctx context.Context, rwc io.ReadWriteCloser, counted bool) error {
	s.init()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { rwc.Close() })
	defer stop()
	defer rwc.Close()

	c := &conn{s: s, rwc: rwc, samplers: map[uint32]*liveSampler{}, models: map[uint32]*engine.Model{}}
	limit := s.queueLimit
	if limit <= 0 {
		limit = maxQueued
	}
	c.out = newOutbox(rwc, limit, s.writeTimeout(), func() {
		cancel()
		c.cancelOp(0, true)
	})
	defer c.out.close(s.writeTimeout())
	defer c.release()
	br := bufio.NewReaderSize(rwc, 64<<10)
	err := c.handshake(br)
	if counted {
		s.pending.Add(-1)
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil // gone before saying hello
		}
		return err
	}
	if counted {
		if int(s.conns.Add(1)) > s.maxConns() {
			s.conns.Add(-1)
			_ = c.send(tError, encode(&errorMsg{Code: codeFailed, Msg: "the worker is serving the maximum number of connections"}))
			return fmt.Errorf("refused: %d connections already", s.maxConns())
		}
		defer s.conns.Add(-1)
	}
	if err := c.send(tWelcome, encode(&welcomeMsg{Version: Version, Worker: s.Worker, Device: s.Device})); err != nil {
		return err
	}

	reqs := make(chan inMsg)
	var readErr error
	go func() {
		defer close(reqs)
		var seq uint64
		for {
			t, b, err := c.readRequest(br)
			if err != nil {
				readErr = err
				c.cancelOp(0, true)
				return
			}
			if t == tCancel {
				var m seqMsg
				if decode(t, b, &m) == nil {
					c.cancelOp(m.Seq, false)
				}
				continue
			}
			seq++
			select {
			case reqs <- inMsg{t, b, seq}:
			case <-ctx.Done():
				return
			}
		}
	}()
	hb := s.Heartbeat
	if hb <= 0 {
		hb = 2 * time.Second
	}
	tick := time.NewTicker(hb)
	defer tick.Stop()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if c.busy.Load() {
					_ = c.send(tHeartbeat, nil)
				}
			}
		}
	}()

	for m := range reqs {
		if err := c.handle(ctx, m, reqs); err != nil {
			return err
		}
		if err := c.out.failed(); err != nil {
			return fmt.Errorf("sending: %w", err)
		}
	}
	if readErr == nil || errors.Is(readErr, io.EOF) || errors.Is(readErr, net.ErrClosed) || errors.Is(readErr, syscall.ECONNRESET) || ctx.Err() != nil {
		if err := c.out.failed(); err != nil && ctx.Err() == nil {
			return fmt.Errorf("sending: %w", err)
		}
		return nil
	}
	return readErr
}

// readRequest reads one client message: any wait for its first byte (an
// idle client), then the rest within the body timeout.
func (c *conn) readRequest(br *bufio.Reader) (msgType, []byte, error) {
	dl, _ := c.rwc.(interface{ SetReadDeadline(time.Time) error })
	if dl != nil {
		_ = dl.SetReadDeadline(time.Time{})
	}
	if _, err := br.Peek(1); err != nil {
		return 0, nil, err
	}
	if dl != nil {
		_ = dl.SetReadDeadline(time.Now().Add(c.s.bodyTimeout(0)))
		if h, err := br.Peek(4); err == nil {
			n := int(binary.BigEndian.Uint32(h))
			_ = dl.SetReadDeadline(time.Now().Add(c.s.bodyTimeout(min(n, MaxMessage))))
		}
	}
	t, b, err := readMsg(br, MaxMessage, nil)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("a message took longer than the body timeout to arrive: %w", err)
	}
	return t, b, err
}

type inMsg struct {
	t   msgType
	b   []byte
	seq uint64
}

// seqMsg names a request by its sequence number on the connection (every
// client message but hello and cancel counts, from 1).
type seqMsg struct{ Seq uint64 }

func (m *seqMsg) put(e *enc) { e.u64(m.Seq) }
func (m *seqMsg) get(d *dec) { m.Seq = d.u64() }

// conn is one client connection.
type conn struct {
	s   *Server
	rwc io.ReadWriteCloser
	out *outbox

	samplers map[uint32]*liveSampler
	models   map[uint32]*engine.Model
	next     uint32
	held     int64 // this connection's share of s.held

	busy atomic.Bool
	// the running request and its cancel function; a cancel that arrives
	// before its request starts is remembered in cancelled.
	opMu      sync.Mutex
	opSeq     uint64
	opCancel  context.CancelFunc
	cancelled uint64
}

// liveSampler is a sampler of the connection and the memory it is
// accounted for.
type liveSampler struct {
	*sample.Sampler
	bytes int64 // all it is accounted for
	snap  int64 // its snapshot budget
}

// send queues one message for the client (it never waits on the network
// unless the client's queue is full; see outbox).
func (c *conn) send(t msgType, payload []byte) error { return c.out.send(t, payload) }

// reserve accounts for bytes more held by this connection, refusing them
// when all connections together would pass the memory limit.
func (c *conn) reserve(what string, bytes int64) error {
	total := c.s.held.Add(bytes)
	if err := membudget.Check(what+" (with what the worker holds already)", total); err != nil {
		c.s.held.Add(-bytes)
		return err
	}
	c.held += bytes
	return nil
}

// unreserve gives back bytes reserved by this connection.
func (c *conn) unreserve(bytes int64) {
	c.s.held.Add(-bytes)
	c.held -= bytes
}

// release gives back everything the connection holds.
func (c *conn) release() {
	c.s.held.Add(-c.held)
	c.held = 0
	c.samplers = nil
	c.models = nil
}

func (c *conn) sendError(code uint8, err error) error {
	return c.send(tError, encode(&errorMsg{Code: code, Msg: err.Error()}))
}

// cancelOp cancels request seq (all: whatever runs).
func (c *conn) cancelOp(seq uint64, all bool) {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	if c.opCancel != nil && (all || c.opSeq == seq) {
		c.opCancel()
		return
	}
	if !all {
		c.cancelled = seq
	}
}

// begin starts request seq: it takes the compute lock, marks the connection
// busy (heartbeats) and returns the request's context.
func (c *conn) begin(ctx context.Context, seq uint64) (context.Context, func()) {
	c.s.compute.Lock()
	c.busy.Store(true)
	opCtx, cancel := context.WithCancel(ctx)
	c.opMu.Lock()
	c.opSeq, c.opCancel = seq, cancel
	if c.cancelled == seq {
		cancel()
	}
	c.opMu.Unlock()
	return opCtx, func() {
		c.opMu.Lock()
		c.opSeq, c.opCancel = 0, nil
		c.opMu.Unlock()
		cancel()
		c.busy.Store(false)
		c.s.compute.Unlock()
	}
}

// handshake reads the client's hello and authenticates it: the token is
// checked before anything else is answered (the protocol version
// included), and the peer has HandshakeTimeout to send it.
func (c *conn) handshake(br *bufio.Reader) error {
	if d, ok := c.rwc.(interface{ SetReadDeadline(time.Time) error }); ok {
		_ = d.SetReadDeadline(time.Now().Add(c.s.handshakeTimeout()))
		defer d.SetReadDeadline(time.Time{})
	}
	t, b, err := readMsg(br, maxHello, nil)
	if err != nil {
		var pe *ProtocolError
		var he *headerError
		if errors.As(err, &pe) || errors.As(err, &he) {
			_ = c.sendError(codeFailed, fmt.Errorf("not a geca worker client: %w", err))
		}
		return fmt.Errorf("handshake: %w", err)
	}
	var h helloMsg
	if t != tHello {
		err = protoErr("expected a hello, got a %s message", t)
	} else {
		err = decode(t, b, &h)
	}
	if err != nil {
		_ = c.sendError(codeFailed, err)
		return fmt.Errorf("handshake: %w", err)
	}
	if c.s.Token != "" && !tokenOK(c.s.Token, h.Token) {
		_ = c.sendError(codeAuth, errors.New("authentication failed: wrong or missing token"))
		return errors.New("handshake: refused a peer with a wrong or missing token")
	}
	if h.Version != Version {
		err := fmt.Errorf("protocol version %d, this worker speaks %d (use the same geca version on both ends)", h.Version, Version)
		_ = c.sendError(codeVersion, err)
		return fmt.Errorf("handshake: %w", err)
	}
	c.s.logf("client %q connected", h.Client)
	return nil
}

// handle serves one request. It returns an error only when the connection
// must close (the client broke the protocol). A request that panics is
// answered with an error, and the connection goes on: whatever a peer
// sends, the worker keeps serving the others (the compute lock is released
// by the request's own deferred call first).
func (c *conn) handle(ctx context.Context, m inMsg, reqs <-chan inMsg) (err error) {
	defer func() {
		if p := recover(); p != nil {
			c.s.logf("internal error serving a %s request: %v\n%s", m.t, p, debug.Stack())
			err = c.sendError(codeFailed, fmt.Errorf("internal error serving a %s request: %v", m.t, p))
		}
	}()
	switch m.t {
	case tModelQuery:
		var q modelQueryMsg
		if err := decode(m.t, m.b, &q); err != nil {
			return c.sendError(codeFailed, err)
		}
		md := c.s.models.get(q.Hash)
		if md == nil {
			return c.send(tModel, encode(&modelMsg{}))
		}
		id, err := c.addModel(md)
		if err != nil {
			return c.sendError(codeFailed, err)
		}
		return c.send(tModel, encode(&modelMsg{ID: id, Found: true}))
	case tLoadModel:
		return c.loadModel(ctx, m, reqs)
	case tClose:
		var q idMsg
		if err := decode(m.t, m.b, &q); err == nil {
			c.dropSampler(q.ID)
		}
		return nil // no reply
	case tCall:
		return c.call(ctx, m)
	case tNewSampler, tBranch, tStep, tSet, tSetState, tCurrent, tResult:
		return c.samplerOp(ctx, m)
	default:
		return c.sendError(codeFailed, protoErr("unexpected %s message from a client", m.t))
	}
}

func (c *conn) addModel(md *engine.Model) (uint32, error) {
	for id, have := range c.models {
		if have == md {
			return id, nil
		}
	}
	if len(c.models) >= maxModelsHeld {
		return 0, fmt.Errorf("%d models are in use on this connection; reconnect to use others", maxModelsHeld)
	}
	if err := c.reserve("model "+md.Cfg.Name, engine.ModelBytes(md.Cfg)); err != nil {
		return 0, err
	}
	c.next++
	c.models[c.next] = md
	return c.next, nil
}

// loadModel reads an upload: the config, then exactly the announced number
// of tensor messages (all of them are read even after an error, so the
// stream stays in step), and answers once.
func (c *conn) loadModel(ctx context.Context, m inMsg, reqs <-chan inMsg) error {
	var lm loadModelMsg
	if err := decode(m.t, m.b, &lm); err != nil {
		// The count is unknown: the tensors that follow cannot be skipped.
		_ = c.sendError(codeFailed, err)
		return err
	}
	var fail error
	var cfg engine.Config
	if err := json.Unmarshal([]byte(lm.Config), &cfg); err != nil {
		fail = fmt.Errorf("model config: %w", err)
	} else if err := cfg.Validate(); err != nil {
		fail = err
	}
	tensors := make([]*tensorMsg, 0, min(lm.Tensors, 64))
	var total int64
	for i := 0; i < lm.Tensors; i++ {
		tm, ok := <-reqs
		if !ok {
			return errors.New("connection closed during a model upload")
		}
		if tm.t != tTensor {
			err := protoErr("model upload: tensor %d of %d expected, got a %s message", i+1, lm.Tensors, tm.t)
			_ = c.sendError(codeFailed, err)
			return err
		}
		if fail != nil {
			continue
		}
		var t tensorMsg
		if err := decode(tm.t, tm.b, &t); err != nil {
			fail = err
			continue
		}
		total += 4 * int64(len(t.Data))
		if total > MaxModelBytes {
			fail = fmt.Errorf("model upload exceeds %d GiB", MaxModelBytes>>30)
			tensors = nil
			continue
		}
		if err := membudget.Check("a model upload (with what the worker holds already)", c.s.held.Load()+total); err != nil {
			fail = err
			tensors = nil
			continue
		}
		tensors = append(tensors, &t)
	}
	if fail != nil {
		return c.sendError(codeFailed, fail)
	}
	_, done := c.begin(ctx, m.seq)
	defer done()
	md, err := c.buildModel(cfg, tensors)
	if err != nil {
		return c.sendError(codeFailed, err)
	}
	id, err := c.addModel(md)
	if err != nil {
		return c.sendError(codeFailed, err)
	}
	return c.send(tModel, encode(&modelMsg{ID: id, Found: true}))
}

func (c *conn) buildModel(cfg engine.Config, msgs []*tensorMsg) (*engine.Model, error) {
	ts, err := modelTensors(msgs)
	if err != nil {
		return nil, err
	}
	md, err := engine.NewModel(cfg, ts)
	if err != nil {
		return nil, err
	}
	h, err := modelHash(md)
	if err != nil {
		return nil, err
	}
	if have := c.s.models.get(h); have != nil {
		return have, nil
	}
	if c.s.Prepare != nil {
		if err := c.s.Prepare(md); err != nil {
			return nil, err
		}
	}
	c.s.models.put(h, md)
	return md, nil
}

func (c *conn) model(id uint32) (*engine.Model, error) {
	md, ok := c.models[id]
	if !ok {
		return nil, fmt.Errorf("no model %d on this connection", id)
	}
	return md, nil
}

func (c *conn) sampler(id uint32) (*sample.Sampler, error) {
	s, ok := c.samplers[id]
	if !ok {
		return nil, fmt.Errorf("no sampler %d on this connection", id)
	}
	return s.Sampler, nil
}

// samplerBytes estimates what a sampler of n samples of a model of config
// cfg holds, with snapshots of at most snap bytes: a run under guidance
// (the worst case: guidance can be switched on later), the grid kept
// before each timestep, and its snapshots.
func samplerBytes(cfg engine.Config, n int, snap int64) int64 {
	return membudget.Sum(engine.RunBytes(cfg, n, true), engine.StateBytes(2*n, cfg.GridH, cfg.GridW, cfg.CellDim()), max(snap, 0))
}

// checkSampler refuses a new sampler (or branch) of n samples of cfg that
// the worker cannot hold, and reserves its memory otherwise.
func (c *conn) checkSampler(cfg engine.Config, n int, snap int64) (int64, error) {
	if len(c.samplers) >= maxSamplers {
		return 0, fmt.Errorf("%d samplers open on this connection; close some", maxSamplers)
	}
	if err := engine.CheckRun(cfg, n, true); err != nil {
		return 0, err
	}
	b := samplerBytes(cfg, n, snap)
	if err := c.reserve(fmt.Sprintf("a sampler of %d sample(s)", n), b); err != nil {
		return 0, err
	}
	return b, nil
}

func (c *conn) addSampler(s *sample.Sampler, bytes, snap int64) uint32 {
	c.next++
	c.samplers[c.next] = &liveSampler{s, bytes, snap}
	return c.next
}

func (c *conn) dropSampler(id uint32) {
	if s, ok := c.samplers[id]; ok {
		c.unreserve(s.bytes)
		delete(c.samplers, id)
	}
}

// snapshotCap bounds the snapshot memory a client may ask for one sampler.
func snapshotCap() int64 { return membudget.Limit() / 8 }

func errCode(err error) uint8 {
	switch {
	case errors.Is(err, sample.ErrDone):
		return codeDone
	case errors.Is(err, context.Canceled):
		return codeCanceled
	}
	return codeFailed
}

func statusOf(s *sample.Sampler, err error) *statusMsg {
	st := &statusMsg{Index: s.Index(), UpdatesDone: s.UpdatesDone(), M: s.M(), GHG: s.GHG(), CFG: s.CFG(), Rate: s.UpdateRate(),
		SnapBytes: s.SnapshotBytes()}
	if e := s.Err(); e != nil {
		st.Err = e.Error()
	}
	if err != nil {
		st.OpCode, st.OpErr = errCode(err), err.Error()
	}
	return st
}

func infoOf(id uint32, s *sample.Sampler) *samplerMsg {
	sc := s.Schedule()
	m := &samplerMsg{ID: id, N: s.N(), DDIM: s.DDIM(), Status: *statusOf(s, nil)}
	m.Timesteps = make([]int, s.Len())
	m.Sigma = make([]float64, s.Len())
	for i := range m.Timesteps {
		m.Timesteps[i] = sc.Timestep(i)
		if i < len(sc.SqrtOneMinusAlphasCumprod) {
			m.Sigma[i] = sc.SqrtOneMinusAlphasCumprod[i]
		}
	}
	return m
}

// samplerRequest decodes request m into q and looks up the sampler that
// id (reading q) names.
func (c *conn) samplerRequest(m inMsg, q payload, id func() uint32) (*sample.Sampler, error) {
	if err := decode(m.t, m.b, q); err != nil {
		return nil, err
	}
	return c.sampler(id())
}

// samplerOp serves the requests on a sampler. Each ends with a status
// message (carrying the request's error, if any), after any frames or data.
func (c *conn) samplerOp(ctx context.Context, m inMsg) error {
	opCtx, done := c.begin(ctx, m.seq)
	defer done()
	switch m.t {
	case tNewSampler:
		var q newSamplerMsg
		if err := decode(m.t, m.b, &q); err != nil {
			return c.sendError(codeFailed, err)
		}
		md, err := c.model(q.Model)
		if err != nil {
			return c.sendError(codeFailed, err)
		}
		opt := q.Opt
		// The snapshot memory is the client's to choose, within a share of
		// the limit; it is accounted for with the run.
		switch {
		case opt.SnapshotBytes == 0:
			opt.SnapshotBytes = min(sample.DefaultSnapshotBytes, snapshotCap())
		case opt.SnapshotBytes > snapshotCap():
			opt.SnapshotBytes = snapshotCap()
		}
		n := opt.N
		if n == 0 {
			n = len(opt.Labels)
		}
		if n < 1 || n > engine.MaxBatch/2 {
			return c.sendError(codeFailed, fmt.Errorf("sample: N = %d out of range [1, %d]", n, engine.MaxBatch/2))
		}
		bytes, err := c.checkSampler(md.Cfg, n, opt.SnapshotBytes)
		if err != nil {
			return c.sendError(codeFailed, err)
		}
		s, err := sample.New(md, opt)
		if err != nil {
			c.unreserve(bytes)
			return c.sendError(codeFailed, err)
		}
		return c.send(tSampler, encode(infoOf(c.addSampler(s, bytes, opt.SnapshotBytes), s)))
	case tBranch:
		var q idMsg
		s, err := c.samplerRequest(m, &q, func() uint32 { return q.ID })
		if err != nil {
			return c.sendError(codeFailed, err)
		}
		snap := c.samplers[q.ID].snap
		bytes, err := c.checkSampler(s.Model().Cfg, s.N(), snap)
		if err != nil {
			return c.sendError(codeFailed, err)
		}
		b := s.Branch()
		return c.send(tSampler, encode(infoOf(c.addSampler(b, bytes, snap), b)))
	case tStep:
		var q stepMsg
		s, err := c.samplerRequest(m, &q, func() uint32 { return q.ID })
		if err != nil {
			return c.sendError(codeFailed, err)
		}
		if q.CellFrames || q.StepFrames {
			s.SetObserver(func(f *sample.Frame) {
				if f.Kind == sample.FrameTimestep && !q.StepFrames {
					return
				}
				_ = c.send(tFrame, encode(&frameMsg{f}))
			}, q.CellFrames)
			defer s.SetObserver(nil, false)
		}
		switch q.Kind {
		case stepUpdate:
			err = s.StepUpdate()
		case stepTimestep:
			err = s.StepTimestep(opCtx)
		case stepRunTo:
			err = s.RunTo(opCtx, q.Arg)
		case stepRewind:
			err = s.Rewind(opCtx, q.Arg)
		}
		if err == nil && q.Current {
			var f *sample.Frame
			if f, err = s.Current(); err == nil {
				if err := c.send(tCurFrame, encode(&frameMsg{f})); err != nil {
					return err
				}
			}
		}
		return c.send(tStatus, encode(statusOf(s, err)))
	case tSet:
		var q setMsg
		s, err := c.samplerRequest(m, &q, func() uint32 { return q.ID })
		if err != nil {
			return c.sendError(codeFailed, err)
		}
		switch q.Key {
		case setM:
			err = s.SetM(q.A)
		case setRate:
			err = s.SetUpdateRate(q.F)
		case setCFG:
			err = s.SetCFG(q.F)
		case setGHG:
			err = s.SetGHG(q.A != 0)
		case setMeasure:
			err = s.SetMeasure(q.A != 0)
		case setWatch:
			err = s.WatchCell(q.A, q.B, q.C)
		case setUnwatch:
			err = s.UnwatchCell()
		}
		return c.send(tStatus, encode(statusOf(s, err)))
	case tSetState:
		var q setStateMsg
		s, err := c.samplerRequest(m, &q, func() uint32 { return q.ID })
		if err != nil {
			return c.sendError(codeFailed, err)
		}
		return c.send(tStatus, encode(statusOf(s, s.SetState(q.State))))
	case tCurrent, tResult:
		var q idMsg
		s, err := c.samplerRequest(m, &q, func() uint32 { return q.ID })
		if err != nil {
			return c.sendError(codeFailed, err)
		}
		if m.t == tCurrent {
			var f *sample.Frame
			if f, err = s.Current(); err == nil {
				if err := c.send(tFrame, encode(&frameMsg{f})); err != nil {
					return err
				}
			}
		} else {
			var x []float32
			if x, err = s.Result(); err == nil {
				if err := c.send(tData, encode(&dataMsg{x})); err != nil {
					return err
				}
			}
		}
		return c.send(tStatus, encode(statusOf(s, err)))
	}
	return nil
}

// call runs one denoiser call (geca denoise).
func (c *conn) call(ctx context.Context, m inMsg) error {
	_, done := c.begin(ctx, m.seq)
	defer done()
	var q callMsg
	if err := decode(m.t, m.b, &q); err != nil {
		return c.sendError(codeFailed, err)
	}
	md, err := c.model(q.Model)
	if err != nil {
		return c.sendError(codeFailed, err)
	}
	if q.State != nil {
		if err := checkGrid(md.Cfg, q.State); err != nil {
			return c.sendError(codeFailed, err)
		}
		if err := c.reserve("a denoiser call", engine.UpdaterBytes(md.Cfg, q.State.B)); err != nil {
			return c.sendError(codeFailed, err)
		}
		defer c.unreserve(engine.UpdaterBytes(md.Cfg, q.State.B))
	}
	st, err := Denoise(md, q.State, q.T, q.Y, q.M, q.Rate, q.Seed, q.Masks)
	if err != nil {
		return c.sendError(codeFailed, err)
	}
	return c.send(tGrid, encode(&gridMsg{st}))
}

// checkGrid reports a grid that is not made of the cells of model cfg.
func checkGrid(cfg engine.Config, st *engine.State) error {
	if st.H != cfg.GridH || st.W != cfg.GridW || st.C != cfg.CellDim() {
		return fmt.Errorf("denoise: the grid is %dx%d cells of %d channels, but model %s takes %dx%d cells of C_in+C_out+C_h = %d channels",
			st.H, st.W, st.C, cfg.Name, cfg.GridH, cfg.GridW, cfg.CellDim())
	}
	return nil
}

// Denoise runs one denoiser call of M updates on st in place and returns
// it: the conditioning of timesteps t and labels y; masks (M·B·H·W 0/1,
// cell-major) when given, else masks drawn from the mask stream of seed at
// rate (every cell when rate >= 1). It is what `geca denoise` computes,
// locally or in a worker.
func Denoise(md *engine.Model, st *engine.State, t []int, y [][]float32, M int, rate float32, seed uint64, masks []float32) (*engine.State, error) {
	if st == nil {
		return nil, errors.New("denoise: no grid")
	}
	cfg := md.Cfg
	if err := checkGrid(cfg, st); err != nil {
		return nil, err
	}
	if err := engine.CheckCall(cfg, st.B); err != nil {
		return nil, fmt.Errorf("denoise: %w", err)
	}
	if len(t) != st.B || len(y) != st.B {
		return nil, fmt.Errorf("denoise: %d timesteps and %d labels for %d grids", len(t), len(y), st.B)
	}
	if M < 0 || M > engine.MaxM {
		return nil, fmt.Errorf("denoise: M = %d out of range [0, %d]", M, engine.MaxM)
	}
	if !(rate > 0 && rate <= 1) {
		return nil, fmt.Errorf("denoise: update rate %v out of range (0, 1]", rate)
	}
	cond, err := md.Condition(t, y)
	if err != nil {
		return nil, err
	}
	cells := st.B * st.H * st.W
	u := md.NewUpdater(st.B)
	switch {
	case masks != nil:
		if int64(len(masks)) != int64(M)*int64(cells) {
			return nil, fmt.Errorf("denoise: %d mask values, want M·B·H·W = %d", len(masks), M*cells)
		}
		for i := 0; i < M; i++ {
			if err := u.Update(st, cond, masks[i*cells:(i+1)*cells], nil); err != nil {
				return nil, fmt.Errorf("mask %d: %w", i, err)
			}
		}
	case rate >= 1:
		err = u.Call(st, cond, M, 1, nil, nil)
	default:
		err = u.Call(st, cond, M, rate, engine.NewStream(seed, engine.StreamMask), nil)
	}
	if err != nil {
		return nil, err
	}
	return st, nil
}
