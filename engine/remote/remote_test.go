package remote

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"geca/engine"
	"geca/engine/sample"
)

// The test binary doubles as a worker: with GECA_TEST_WORKER=pipe it serves
// its standard input and output, as `geca worker` does.
func TestMain(m *testing.M) {
	if os.Getenv("GECA_TEST_WORKER") == "pipe" {
		rwc := Stdio()
		os.Stdout = os.Stderr
		s := &Server{Worker: "test worker", Device: "CPU (test)"}
		if err := s.ServeConn(context.Background(), rwc); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func testModel(t testing.TB) *engine.Model {
	t.Helper()
	cfg := engine.Config{Name: "tiny", GridH: 6, GridW: 5, InChannels: 2, HiddenChannels: 4, EmbedDim: 16, Heads: 2,
		MLPDim: 32, NumClasses: 3, M: 3, UpdateRate: 0.5}
	m, err := engine.NewRandomModel(cfg, 3, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func testOptions() sample.Options {
	return sample.Options{Steps: "6", GHG: true, CFG: 1.5, Labels: [][]float32{{0, 1, 0}, {1, 0, 1}}, Seed: 11}
}

// startPipe runs the test binary as a worker over pipes.
func startPipe(t *testing.T) *Client {
	t.Helper()
	t.Setenv("GECA_TEST_WORKER", "pipe")
	c, err := Start(os.Args[0], []string{"-test.run=^$"}, nil, Options{Client: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// startTCP serves on a loopback port and dials it.
func startTCP(t *testing.T, token string) (*Client, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{Token: "secret-token", Worker: "test worker", Device: "CPU (test)"}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Serve(ctx, l); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	addr := l.Addr().String()
	if token == "" {
		return nil, addr
	}
	c, err := Dial(context.Background(), addr, Options{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, addr
}

func sameBits(t *testing.T, what string, a, b []float32) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d values, want %d", what, len(a), len(b))
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			t.Fatalf("%s: value %d is %v, want %v", what, i, a[i], b[i])
		}
	}
}

func sameFrame(t *testing.T, what string, got, want *sample.Frame) {
	t.Helper()
	if got.Kind != want.Kind || got.TimestepIndex != want.TimestepIndex || got.T != want.T || got.Update != want.Update ||
		got.M != want.M || got.N != want.N || got.CFG != want.CFG || got.Done != want.Done || got.Timesteps != want.Timesteps {
		t.Fatalf("%s: frame header %+v, want %+v", what, *got, *want)
	}
	if (got.State == nil) != (want.State == nil) {
		t.Fatalf("%s: state presence differs", what)
	}
	if got.State != nil {
		if got.State.B != want.State.B || got.State.H != want.State.H || got.State.W != want.State.W || got.State.C != want.State.C {
			t.Fatalf("%s: state shape differs", what)
		}
		sameBits(t, what+" state", got.State.Data, want.State.Data)
	}
	sameBits(t, what+" x_t", got.Xt, want.Xt)
	sameBits(t, what+" x0", got.X0, want.X0)
	sameBits(t, what+" x_prev", got.XPrev, want.XPrev)
	sameBits(t, what+" magnitude", got.Magnitude, want.Magnitude)
	sameBits(t, what+" attention", got.Attn, want.Attn)
}

// runToEnd runs s to its end through the Stepper interface, watching cell
// (1, 2, 3), and returns every frame and the result.
func runToEnd(t *testing.T, s sample.Stepper) ([]*sample.Frame, []float32) {
	t.Helper()
	var frames []*sample.Frame
	s.SetObserver(func(f *sample.Frame) { frames = append(frames, f) }, true)
	if err := s.WatchCell(1, 2, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.RunToEnd(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !s.Done() || s.Index() != -1 {
		t.Fatalf("run not done: index %d", s.Index())
	}
	x, err := s.Result()
	if err != nil {
		t.Fatal(err)
	}
	return frames, x
}

// checkSampleMatches runs the same sample locally and through c, both as a
// sample.Stepper, and wants every frame and the result bit for bit.
func checkSampleMatches(t *testing.T, c *Client) {
	m := testModel(t)
	opt := testOptions()
	local, err := sample.New(m, opt)
	if err != nil {
		t.Fatal(err)
	}
	rm, err := c.LoadModel(m)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rm.NewSampler(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	for i := range local.Len() {
		if rs.TimestepOf(i) != local.TimestepOf(i) || rs.Sigma(i) != local.Sigma(i) {
			t.Fatalf("index %d: remote timestep %d σ %g, local %d σ %g", i, rs.TimestepOf(i), rs.Sigma(i), local.TimestepOf(i), local.Sigma(i))
		}
	}
	if rs.Len() != local.Len() || rs.N() != local.N() || rs.DDIM() != local.DDIM() {
		t.Fatalf("remote run: %d timesteps, N %d; local %d, %d", rs.Len(), rs.N(), local.Len(), local.N())
	}
	lf, want := runToEnd(t, local)
	rf, got := runToEnd(t, rs)
	sameBits(t, "result", got, want)
	if len(rf) != len(lf) {
		t.Fatalf("%d frames, want %d", len(rf), len(lf))
	}
	for i := range lf {
		sameFrame(t, fmt.Sprintf("frame %d", i), rf[i], lf[i])
	}
	if rs.SnapshotBytes() != local.SnapshotBytes() || local.SnapshotBytes() == 0 {
		t.Fatalf("snapshots hold %d bytes in the worker, %d here", rs.SnapshotBytes(), local.SnapshotBytes())
	}
	if _, err := rs.Current(); err != nil {
		t.Fatal(err)
	}
	if err := rs.StepUpdate(); !errors.Is(err, sample.ErrDone) {
		t.Fatalf("step after the end: %v, want sample.ErrDone", err)
	}
}

func TestSampleOverPipeMatchesLocal(t *testing.T) {
	c := startPipe(t)
	if c.Device() != "CPU (test)" || c.Worker() != "test worker" {
		t.Fatalf("welcome: worker %q, device %q", c.Worker(), c.Device())
	}
	checkSampleMatches(t, c)
}

func TestSampleOverTCPMatchesLocal(t *testing.T) {
	c, _ := startTCP(t, "secret-token")
	checkSampleMatches(t, c)
	// A second upload of the same model is answered from the worker's cache.
	if _, err := c.LoadModel(testModel(t)); err != nil {
		t.Fatal(err)
	}
}

// The interactive operations the viewer uses, one by one, against a local
// twin.
func TestSteppingBranchEditRewind(t *testing.T) {
	c := startPipe(t)
	m := testModel(t)
	opt := testOptions()
	local, err := sample.New(m, opt)
	if err != nil {
		t.Fatal(err)
	}
	rm, err := c.LoadModel(m)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rm.NewSampler(opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []sample.Stepper{local, rs} {
		if err := s.SetMeasure(true); err != nil {
			t.Fatal(err)
		}
	}
	compare := func(what string) {
		t.Helper()
		lf, err := local.Current()
		if err != nil {
			t.Fatal(err)
		}
		rf, err := rs.Current()
		if err != nil {
			t.Fatal(err)
		}
		sameFrame(t, what, rf, lf)
		if rs.Index() != local.Index() || rs.UpdatesDone() != local.UpdatesDone() || rs.M() != local.M() {
			t.Fatalf("%s: remote at %d/%d M %d, local %d/%d M %d", what, rs.Index(), rs.UpdatesDone(), rs.M(), local.Index(), local.UpdatesDone(), local.M())
		}
	}
	step := func(n int) {
		t.Helper()
		for i := range n {
			if err := local.StepUpdate(); err != nil {
				t.Fatal(err)
			}
			if i%2 == 0 {
				if err := rs.StepUpdate(); err != nil {
					t.Fatal(err)
				}
				continue
			}
			rf, err := rs.StepUpdateCurrent()
			if err != nil {
				t.Fatal(err)
			}
			lf, err := local.Current()
			if err != nil {
				t.Fatal(err)
			}
			sameFrame(t, "step and current", rf, lf)
		}
	}
	step(2)
	compare("after 2 updates")
	if err := local.SetM(5); err != nil {
		t.Fatal(err)
	}
	if err := rs.SetM(5); err != nil {
		t.Fatal(err)
	}
	if err := local.SetCFG(2); err != nil {
		t.Fatal(err)
	}
	if err := rs.SetCFG(2); err != nil {
		t.Fatal(err)
	}
	step(7)
	compare("after settings")
	lb := local.Branch()
	rb, err := rs.Branch()
	if err != nil {
		t.Fatal(err)
	}
	// Damage the branch.
	st := lb.State()
	for i := range st.Data[:len(st.Data)/3] {
		st.Data[i] = 0.25
	}
	if err := lb.SetState(st); err != nil {
		t.Fatal(err)
	}
	if err := rb.SetState(st); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if err := lb.StepUpdate(); err != nil {
			t.Fatal(err)
		}
		if err := rb.StepUpdate(); err != nil {
			t.Fatal(err)
		}
	}
	lf, _ := lb.Current()
	rf, err := rb.Current()
	if err != nil {
		t.Fatal(err)
	}
	sameFrame(t, "damaged branch", rf, lf)
	rb.Close()
	// The original run is untouched by its branch.
	compare("original after branching")
	// Rewind to the start and replay.
	top := local.Len() - 1
	if err := local.Rewind(context.Background(), top); err != nil {
		t.Fatal(err)
	}
	if err := rs.Rewind(context.Background(), top); err != nil {
		t.Fatal(err)
	}
	compare("rewound")
	if err := rs.Rewind(context.Background(), -5); err == nil {
		t.Fatal("rewind to -5 worked")
	}
	if err := rs.SetM(-1); err == nil || !strings.Contains(err.Error(), "M = -1") {
		t.Fatalf("SetM(-1): %v", err)
	}
	step(3)
	compare("replayed")
}

func TestCancel(t *testing.T) {
	c := startPipe(t)
	rm, err := c.LoadModel(testModel(t))
	if err != nil {
		t.Fatal(err)
	}
	opt := testOptions()
	opt.Steps = "200"
	rs, err := rm.NewSampler(opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	rs.SetObserver(func(f *sample.Frame) {
		if n++; n == 5 {
			cancel()
		}
	}, true)
	err = rs.RunToEnd(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v", err)
	}
	if rs.Done() || rs.Index() == rs.Len()-1 && rs.UpdatesDone() == 0 {
		t.Fatalf("cancelled run at index %d, %d updates", rs.Index(), rs.UpdatesDone())
	}
	// The connection and the run go on.
	rs.SetObserver(nil, false)
	if err := rs.StepTimestep(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestDenoiseMatchesLocal(t *testing.T) {
	c := startPipe(t)
	m := testModel(t)
	cfg := m.Cfg
	st := engine.NewState(2, cfg.GridH, cfg.GridW, cfg.CellDim())
	for i := range st.Data {
		st.Data[i] = float32(math.Sin(float64(i)))
	}
	ts := []int{10, 500}
	ys := [][]float32{{1, 0, 0}, {0, 0, 0}}
	want, err := Denoise(m, st.Clone(), ts, ys, 4, 0.5, 9, nil)
	if err != nil {
		t.Fatal(err)
	}
	rm, err := c.LoadModel(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := rm.Denoise(st.Clone(), ts, ys, 4, 0.5, 9, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameBits(t, "denoised grid", got.Data, want.Data)
	if _, err := rm.Denoise(st.Clone(), ts, ys[:1], 4, 0.5, 9, nil); err == nil {
		t.Fatal("one label for two grids worked")
	}
}

func TestTokenRefused(t *testing.T) {
	_, addr := startTCP(t, "")
	for _, tok := range []string{"", "wrong", "secret-token-"} {
		t.Run(tok, func(t *testing.T) {
			_, err := Dial(context.Background(), addr, Options{Token: tok})
			if !errors.Is(err, ErrAuth) {
				t.Fatalf("token %q: %v, want ErrAuth", tok, err)
			}
		})
	}
	if err := (&Server{}).Serve(context.Background(), nil); err == nil {
		t.Fatal("a network server without a token started")
	}
}

// A peer that does not speak the protocol gets an error and is dropped.
func TestBadPeers(t *testing.T) {
	_, addr := startTCP(t, "")
	try := func(what string, send []byte) {
		t.Helper()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		conn.Write(send)
		typ, b, err := readMsg(conn, MaxMessage, nil)
		if err != nil {
			t.Fatalf("%s: no answer: %v", what, err)
		}
		if typ != tError {
			t.Fatalf("%s: answer %s, want an error", what, typ)
		}
		var e errorMsg
		if err := decode(typ, b, &e); err != nil {
			t.Fatal(err)
		}
		// Then the worker closes the connection.
		if _, _, err := readMsg(conn, MaxMessage, nil); err == nil {
			t.Fatalf("%s: connection still open", what)
		}
	}
	big := []byte{0x10, 0, 0, 0, byte(tHello)} // 256 MiB announced before authentication
	try("oversized hello", big)
	try("text", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	var e enc
	(&helloMsg{Magic: "NOPE", Version: Version}).put(&e)
	var buf strings.Builder
	writeMsg(&buf, tHello, e.b)
	try("bad magic", []byte(buf.String()))
	e = enc{}
	(&helloMsg{Magic: Magic, Version: Version + 1, Token: "secret-token"}).put(&e)
	buf.Reset()
	writeMsg(&buf, tHello, e.b)
	try("newer version", []byte(buf.String()))
}

// A worker that dies mid-run is an error, not a hang.
func TestKilledWorker(t *testing.T) {
	c := startPipe(t)
	rm, err := c.LoadModel(testModel(t))
	if err != nil {
		t.Fatal(err)
	}
	opt := testOptions()
	opt.Steps = "1000"
	opt.M = 50
	rs, err := rm.NewSampler(opt)
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	var once sync.Once
	rs.SetObserver(func(*sample.Frame) { once.Do(func() { close(started) }) }, true)
	done := make(chan error, 1)
	go func() { done <- rs.RunToEnd(context.Background()) }()
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("no frame within 20 s")
	}
	if err := c.proc.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("run with a killed worker: %v", err)
		}
		t.Log(err)
	case <-time.After(20 * time.Second):
		t.Fatal("the run hangs after its worker was killed")
	}
	if err := rs.StepUpdate(); err == nil {
		t.Fatal("step on a dead worker worked")
	}
}

// A worker that cannot start (or prints instead of speaking the protocol)
// says why.
func TestWorkerThatFails(t *testing.T) {
	_, err := Start("/bin/sh", []string{"-c", "echo 'no CUDA device' >&2; exit 3"}, nil, Options{})
	if err == nil || !strings.Contains(err.Error(), "no CUDA device") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("failing worker: %v", err)
	}
	_, err = Start("/bin/sh", []string{"-c", "echo 'Error in initialization'; sleep 1"}, nil, Options{})
	if err == nil || !strings.Contains(err.Error(), "Error") {
		t.Fatalf("chatty worker: %v", err)
	}
	if _, err := Start("/nonexistent/geca-cuda", nil, nil, Options{}); err == nil {
		t.Fatal("a missing worker binary started")
	}
}
