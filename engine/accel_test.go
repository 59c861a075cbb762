package engine

import (
	"errors"
	"math"
	"strings"
	"testing"

	"geca/internal/numcheck"
)

// cpuAccel is an accelerator that computes on a twin model without one: the
// seam must pass everything through unchanged.
type cpuAccel struct {
	twin  *Model
	calls int // Updates calls
	fail  error
}

func (a *cpuAccel) Name() string { return "test" }
func (a *cpuAccel) NewUpdater(m *Model, batch int) (DeviceUpdater, error) {
	if a.fail != nil {
		return nil, a.fail
	}
	return &cpuDev{a: a, u: a.twin.NewUpdater(batch)}, nil
}

type cpuDev struct {
	a *cpuAccel
	u *Updater
}

func (d *cpuDev) Update(st *State, c *Cond, mask []float32, obs *Observe, dense bool) error {
	d.u.Dense = dense
	return d.u.Update(st, c, mask, obs)
}

func (d *cpuDev) Updates(st *State, c *Cond, masks [][]float32, dense bool) error {
	d.a.calls++
	d.u.Dense = dense
	for _, m := range masks {
		if err := d.u.Update(st, c, m, nil); err != nil {
			return err
		}
	}
	return nil
}

func (d *cpuDev) Reset() { d.u.Reset() }

func TestAcceleratorSeam(t *testing.T) {
	cfg := tinyConfig()
	m, err := NewRandomModel(cfg, 7, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	twin, _ := NewRandomModel(cfg, 7, 0.5)
	acc := &cpuAccel{twin: twin}
	c, err := m.Condition([]int{10, 900}, [][]float32{make([]float32, cfg.NumClasses), ones(cfg.NumClasses)})
	if err != nil {
		t.Fatal(err)
	}
	st0 := randomState(cfg, 2, 1)

	want := st0.Clone()
	if err := m.NewUpdater(2).Call(want, c, 5, 0.5, NewStream(3, StreamMask), nil); err != nil {
		t.Fatal(err)
	}
	m.SetAccelerator(acc)
	if m.Accelerator() != acc {
		t.Fatal("accelerator not set")
	}
	// One device call for a whole Call without callback, with the same masks.
	got := st0.Clone()
	if err := m.NewUpdater(2).Call(got, c, 5, 0.5, NewStream(3, StreamMask), nil); err != nil {
		t.Fatal(err)
	}
	if acc.calls != 1 {
		t.Fatalf("%d device calls, want 1", acc.calls)
	}
	for i := range want.Data {
		if math.Float32bits(got.Data[i]) != math.Float32bits(want.Data[i]) {
			t.Fatalf("value %d: %v through the seam, %v on the CPU", i, got.Data[i], want.Data[i])
		}
	}
	// With a callback, update by update.
	got = st0.Clone()
	n := 0
	if err := m.NewUpdater(2).Call(got, c, 5, 0.5, NewStream(3, StreamMask), func(int, *State) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 5 || acc.calls != 1 || numcheck.RelErr(got.Data, want.Data) != 0 {
		t.Fatalf("update by update: %d callbacks, %d device calls, error %g", n, acc.calls, numcheck.RelErr(got.Data, want.Data))
	}
	// Argument checks happen before the device.
	u := m.NewUpdater(2)
	if err := u.Update(st0.Clone(), c, make([]float32, 3), nil); err == nil || !strings.Contains(err.Error(), "mask has 3 values") {
		t.Fatalf("short mask: %v", err)
	}
	if err := u.Call(randomState(cfg, 1, 2), c, 2, 0.5, NewStream(3, StreamMask), nil); err == nil {
		t.Fatal("wrong batch accepted")
	}
	// A device that cannot make an updater reports it on use.
	m.SetAccelerator(&cpuAccel{fail: errors.New("out of device memory")})
	if err := m.NewUpdater(2).Update(st0.Clone(), c, nil, nil); err == nil || !strings.Contains(err.Error(), "out of device memory") {
		t.Fatalf("failing device: %v", err)
	}
	m.SetAccelerator(nil)
}
