package app

import (
	"fmt"
	"slices"
	"testing"

	"geca/assets"
)

// The controller on the real sampler (demo model, random weights): history,
// exact rewinds, setting branches, CFG, damage and the final frame.
func TestModelEngineRun(t *testing.T) {
	eng, err := NewDemoEngine(3)
	if err != nil {
		t.Fatal(err)
	}
	s := DefaultSettings(eng.Config())
	s.Steps, s.M = "4", 3
	c, err := NewController(eng, s)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ { // into step 1
		if err := c.StepUpdate(); err != nil {
			t.Fatal(err)
		}
	}
	p := c.Panes()[0]
	if p.K != 1 || p.U != 2 {
		t.Fatalf("at %d.%d after 6 steps, want 1.2", p.K, p.U)
	}
	main := p.Run
	tl := c.Timeline(main)
	if f := tl[0].Frames[0]; f.Index != 0 || f.T != 999 || f.Sigma < 0.99 || len(f.Reached) != eng.Config().Cells() {
		t.Errorf("first frame: index %d, t %d, sigma %v", f.Index, f.T, f.Sigma)
	}
	if tl[1].Frames[0].T >= tl[0].Frames[0].T {
		t.Error("t does not decrease")
	}
	// a rewind to a recorded position replays it bit for bit
	smp, err := c.sampleAt(main, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer smp.Close()
	f, err := smp.StepUpdate()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.State.Data, tl[0].Frames[2].State.Data) || !slices.Equal(f.X0, tl[0].Frames[2].X0) {
		t.Error("replay from a rewind differs from the recorded frame")
	}
	// CFG on from step 1: the grid batch doubles (conditional, unconditional)
	cfgScale := float32(2)
	if err := c.ChangeSetting(Change{CFG: &cfgScale}); err != nil {
		t.Fatal(err)
	}
	fr, err := c.PaneFrame(0)
	if err != nil {
		t.Fatal(err)
	}
	if fr.State.B != 2 || fr.Index != 1 || fr.Update != 0 {
		t.Errorf("CFG branch starts at %d.%d with %d grids", fr.Index, fr.Update, fr.State.B)
	}
	if err := c.StepUpdate(); err != nil {
		t.Fatal(err)
	}
	// damage and undo on the real sampler
	if err := c.Damage([][2]int{{16, 16}}, 2, BrushErase); err != nil {
		t.Fatal(err)
	}
	fr, _ = c.PaneFrame(0)
	if cell := fr.State.Cell(0, 16, 16); slices.ContainsFunc(cell[eng.Config().InChannels:], func(v float32) bool { return v != 0 }) {
		t.Error("erased cell keeps values")
	}
	if err := c.StepUpdate(); err != nil {
		t.Fatal(err)
	}
	if err := c.Undo(); err != nil {
		t.Fatal(err)
	}
	// run to the end: the final frame carries the sample
	for i := 0; i < 100 && !c.AllDone(); i++ {
		if err := c.StepUpdate(); err != nil {
			t.Fatal(err)
		}
	}
	fr, _ = c.PaneFrame(0)
	if !fr.Done || fr.Index != 3 || fr.Sigma != 0 {
		t.Fatalf("final frame %d.%d done %v sigma %v", fr.Index, fr.Update, fr.Done, fr.Sigma)
	}
	if err := c.StepUpdate(); err != nil {
		t.Errorf("stepping past the end: %v", err)
	}
}

// Exports of compare mode put the panes side by side with their labels.
func TestExportFrameCompare(t *testing.T) {
	c, _ := newTestController(t)
	if err := c.SetCompare(CompareMode{Kind: CompareM, Ms: []int{2, 5}}); err != nil {
		t.Fatal(err)
	}
	r := NewRunner(newFakeEngine(), c, nil, nil)
	sn := r.Snapshot()
	one, err := exportFrame(sn, 0, 0, [3]int{}, []*Frame{sn.Panes[0].Frame}, []string{""})
	if err != nil {
		t.Fatal(err)
	}
	sc := exportScale(sn.Cfg.GridW, sn.Cfg.GridH)
	if b := one.Bounds(); b.Dx() != sc*sn.Cfg.GridW || b.Dy() != sc*sn.Cfg.GridH {
		t.Errorf("single export %v, want %dx upscale", b, sc)
	}
	two, err := exportFrame(sn, 0, 0, [3]int{}, []*Frame{sn.Panes[0].Frame, sn.Panes[1].Frame}, []string{"M=2", "M=5"})
	if err != nil {
		t.Fatal(err)
	}
	if b := two.Bounds(); b.Dx() <= 2*sc*sn.Cfg.GridW || b.Dy() <= sc*sn.Cfg.GridH {
		t.Errorf("compare export %v is not two labelled tiles", b)
	}
	if _, err := exportFrame(sn, 0, 0, [3]int{}, []*Frame{nil}, nil); err == nil {
		t.Error("no error for a missing frame")
	}
}

// The window opens the built-in model at the guidance it is measured with;
// other models start without guidance.
func TestStartSettings(t *testing.T) {
	eng, err := DefaultEngine()
	if err != nil {
		t.Fatal(err)
	}
	if s, d := StartSettings(eng), assets.DefaultSampler; s.CFG != d.CFG || s.Steps != d.Steps || !s.GHG || s.M != 8 {
		t.Errorf("built-in model starts at %+v, want the measured defaults %+v and its M", s, d)
	}
	demo, err := NewDemoEngine(1)
	if err != nil {
		t.Fatal(err)
	}
	if s := StartSettings(demo); s.CFG != 1 {
		t.Errorf("demo model starts at CFG %v, want 1 (off)", s.CFG)
	}
}

// The x₀ view's legend says what the colours are, in words.
func TestImageLegend(t *testing.T) {
	for _, c := range []struct {
		latent, preview, decoded bool
		want                     string
	}{
		{false, false, false, "black −1 … white +1"},
		{true, true, false, "latent channels mapped to RGB by a fixed linear preview (not a VAE decode)"},
		{true, false, false, "the first three latent channels as RGB"},
		{true, true, true, "RGB decoded by the VAE"},
	} {
		t.Run(fmt.Sprintf("latent=%v,preview=%v,decoded=%v", c.latent, c.preview, c.decoded), func(t *testing.T) {
			if got := imageLegend(c.latent, c.preview, c.decoded); got != c.want {
				t.Errorf("legend %v %v %v: %q", c.latent, c.preview, c.decoded, got)
			}
		})
	}
}
