package app

import (
	"context"
	"math"
	"net"
	"testing"
	"time"

	"geca/engine"
	"geca/engine/remote"
)

// startWorker serves a CPU worker on one end of an in-memory pipe and
// returns a client on the other.
func startWorker(t *testing.T) (*remote.Client, net.Conn) {
	t.Helper()
	a, z := net.Pipe()
	srv := &remote.Server{Worker: "test", Device: "CPU (test)"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.ServeConn(ctx, a) }()
	t.Cleanup(func() { cancel(); <-done })
	c, err := remote.NewClient(z, remote.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, a
}

func tinyEngine(t *testing.T) *ModelEngine {
	t.Helper()
	cfg := engine.Config{Name: "tiny", GridH: 8, GridW: 8, InChannels: 1, HiddenChannels: 4, EmbedDim: 16, Heads: 2,
		MLPDim: 32, NumClasses: 3, M: 3, UpdateRate: 0.5}
	m, err := engine.NewRandomModel(cfg, 5, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	return &ModelEngine{Model: m, Label: "tiny"}
}

func sameFrames(t *testing.T, what string, got, want *Frame) {
	t.Helper()
	if got.Index != want.Index || got.Update != want.Update || got.T != want.T || got.M != want.M || got.Sigma != want.Sigma ||
		got.Done != want.Done || got.AttnCell != want.AttnCell {
		t.Fatalf("%s: frame %d.%d (t %d, M %d, sigma %v), want %d.%d (t %d, M %d, sigma %v)", what, got.Index, got.Update, got.T, got.M,
			got.Sigma, want.Index, want.Update, want.T, want.M, want.Sigma)
	}
	for _, p := range []struct {
		name string
		a, b []float32
	}{{"state", got.State.Data, want.State.Data}, {"x0", got.X0, want.X0}, {"xt", got.Xt, want.Xt},
		{"magnitude", got.Magnitude, want.Magnitude}, {"attention", got.Attn, want.Attn}} {
		if len(p.a) != len(p.b) {
			t.Fatalf("%s: %s has %d values, want %d", what, p.name, len(p.a), len(p.b))
		}
		for i := range p.a {
			if math.Float32bits(p.a[i]) != math.Float32bits(p.b[i]) {
				t.Fatalf("%s: %s[%d] = %v, want %v", what, p.name, i, p.a[i], p.b[i])
			}
		}
	}
}

// localAndRemote are the tiny model in this process and in a worker, and
// the settings both run with.
func localAndRemote(t *testing.T) (*ModelEngine, *RemoteEngine, Settings) {
	t.Helper()
	c, _ := startWorker(t)
	local := tinyEngine(t)
	rem, err := NewRemoteEngine(local, c, "CPU worker (test)")
	if err != nil {
		t.Fatal(err)
	}
	return local, rem, Settings{Steps: "4", M: 3, GHG: true, CFG: 1.5, Rate: 0.5, Labels: []int{1}, Seed: 3}
}

func mustController(t *testing.T, eng Engine, s Settings) *Controller {
	t.Helper()
	c, err := NewController(eng, s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The viewer's controller on a worker shows exactly what it shows on the
// local engine: stepping, a setting change that branches, the watched cell.
func TestRemoteEngineMatchesLocal(t *testing.T) {
	local, rem, s := localAndRemote(t)
	lc, rc := mustController(t, local, s), mustController(t, rem, s)
	compare := func(what string) {
		t.Helper()
		lf, err := lc.PaneFrame(0)
		if err != nil {
			t.Fatal(err)
		}
		rf, err := rc.PaneFrame(0)
		if err != nil {
			t.Fatal(err)
		}
		sameFrames(t, what, rf, lf)
	}
	compare("start")
	lc.Select(3, 4)
	rc.Select(3, 4)
	for i := range 5 {
		if err := lc.StepUpdate(); err != nil {
			t.Fatal(err)
		}
		if err := rc.StepUpdate(); err != nil {
			t.Fatal(err)
		}
		compare("step " + string(rune('0'+i)))
	}
	m := 5
	if err := lc.ChangeSetting(Change{M: &m}); err != nil {
		t.Fatal(err)
	}
	if err := rc.ChangeSetting(Change{M: &m}); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		lc.StepUpdate()
		if err := rc.StepUpdate(); err != nil {
			t.Fatal(err)
		}
	}
	compare("after M change")
	if err := lc.Seek(0, 1); err != nil {
		t.Fatal(err)
	}
	if err := rc.Seek(0, 1); err != nil {
		t.Fatal(err)
	}
	compare("seek back")

	r := NewRunner(rem, rc, nil, nil)
	if d := r.Snapshot().Device; d != "CPU worker (test)" {
		t.Fatalf("snapshot device %q", d)
	}
	if d := NewRunner(local, lc, nil, nil).Snapshot().Device; d != "" {
		t.Fatalf("local engine device %q, want none", d)
	}
}

// A worker that goes away is an error in the viewer, not a hang.
func TestRemoteEngineLost(t *testing.T) {
	c, serverEnd := startWorker(t)
	rem, err := NewRemoteEngine(tinyEngine(t), c, "worker")
	if err != nil {
		t.Fatal(err)
	}
	ctrl, err := NewController(rem, Settings{Steps: "4", M: 3, GHG: true, CFG: 1, Rate: 0.5, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	serverEnd.Close()
	done := make(chan error, 1)
	go func() { done <- ctrl.StepUpdate() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("step on a lost worker worked")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("step on a lost worker hangs")
	}
}
