package app

import (
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gioui.org/io/key"

	"geca/assets"
	"geca/internal/guitest"
)

// Each test here drives the window through keys and clicks and checks one
// bookkeeping promise: what the window shows is what was computed, labelled
// exactly, and nothing is lost silently.

// fakeHarness is the window on the fake engine (fast, deterministic).
func fakeHarness(t *testing.T, steps string, w, h int) (*harness, *fakeEngine) {
	guitest.RequireRenderer(t)
	eng := newFakeEngine()
	s := defaultTestSettings()
	s.Steps = steps
	return newHarnessSize(t, eng, s, w, h), eng
}

// A fast run to the end shows its final state and "finished" without any
// further input: the last play step is published whatever the throttle.
func TestGUIFastRunShowsItsEnd(t *testing.T) {
	h, _ := fakeHarness(t, "50", 1280, 800)
	h.start()
	h.click("max")
	h.key(key.NameSpace, 0)
	h.waitFor("the final frame on screen", 10*time.Second, func() bool {
		s := h.shown()
		return !s.Playing && allDone(s)
	})
	h.win.Frame(h.ui.Layout)
	p := h.shown().Panes[0]
	if p.K != 49 || p.U != p.Frame.M || !p.Frame.Done {
		t.Errorf("window shows step %d, update %d (done %v), want the last", p.K+1, p.U, p.Frame.Done)
	}
	if _, ok := h.win.Find("Play"); !ok {
		t.Errorf("the run button does not offer Play at the end: %q", h.win.Descriptions())
	}
	if got := playState(h.shown(), true); got != "finished" {
		t.Errorf("status says %q at the end", got)
	}
}

// Messages win the status line's space at the default window size, even
// with a long device line.
func TestGUIMessagesAreVisible(t *testing.T) {
	guitest.RequireRenderer(t)
	eng, err := NewDemoEngine(1)
	if err != nil {
		t.Fatal(err)
	}
	eng.DeviceInfo = "cpu (cuda was asked for: no GPU worker geca-cuda next to geca, on PATH or in $GECA_CUDA_WORKER; computing on the CPU with OpenBLAS and 2 threads)"
	s := DefaultSettings(eng.Config())
	s.Steps = "10"
	h := newHarness(t, eng, s)
	// an export's confirmation, with its whole path
	h.key("P", 0)
	h.waitJobs()
	if m := h.message(); !strings.HasPrefix(m, "wrote ") || !strings.HasSuffix(m, ".png") {
		t.Errorf("after an export the status says %q", m)
	}
	img := h.shot("message-export")
	green := guitest.Count(img, image.Rect(0, 780, 1280, 800), colorRGBA(colGreen), 40)
	if green < 300 {
		t.Errorf("the export message has %d green pixels: not drawn in full", green)
	}
	// a bad label, typed in the labels field
	h.typeInto("e.g. 3,7", "99")
	if m, isErr := h.message(), h.ui.msg.err; !isErr || !strings.Contains(m, "label 99 out of range") {
		t.Errorf("a bad label shows %q (error %v)", m, isErr)
	}
	// Enter in an empty checkpoint field (Esc leaves the labels field, O
	// puts the keyboard in the path field)
	h.key(key.NameEscape, 0)
	h.key("O", 0)
	h.frame()
	h.key(key.NameReturn, 0)
	if m := h.message(); m != "type a checkpoint path first" {
		t.Errorf("an empty path shows %q", m)
	}
	if tr := h.ui.Truncated(); len(tr) > 0 {
		t.Errorf("cut off: %q", tr)
	}
}

// A pane's label describes the run it shows, and panes stay in lock-step
// when the branch list puts another run into one.
func TestGUICompareLabelsFollowTheRun(t *testing.T) {
	h := tallDemoHarness(t)
	h.key("K", 0) // compare M = 6, 12, 24 from here
	for i := 0; i < 6; i++ {
		h.key(key.NameRightArrow, 0)
	}
	s := h.snap()
	var m24, main RunInfo
	for _, r := range s.Runs {
		switch r.Label {
		case "M=24 @ step 1":
			m24 = r
		case "main":
			main = r
		}
	}
	h.click(runRow(m24)) // into the active pane, the M=6 one
	s = h.snap()
	if p := s.Panes[0]; p.Label != "M=24" || p.Settings.M != 24 || p.K != s.Panes[1].K || p.U != s.Panes[1].U {
		t.Errorf("pane 0 after showing #%d: label %q, M %d, at %d.%d; pane 1 at %d.%d", m24.ID, p.Label, p.Settings.M, p.K, p.U, s.Panes[1].K, s.Panes[1].U)
	}
	h.click(runRow(main)) // the main run had stopped where compare began: it catches up
	s = h.snap()
	if p := s.Panes[0]; p.Label != "M=12" || p.Settings.M != 12 || p.K != s.Panes[1].K || p.U != s.Panes[1].U {
		t.Errorf("pane 0 after showing main: label %q, M %d, at %d.%d; pane 1 at %d.%d", p.Label, p.Settings.M, p.K, p.U, s.Panes[1].K, s.Panes[1].U)
	}
	h.key(key.NameRightArrow, 0)
	s = h.snap()
	if s.Panes[0].U != s.Panes[1].U || s.Panes[0].K != s.Panes[1].K {
		t.Errorf("panes out of step after a step: %d.%d and %d.%d", s.Panes[0].K, s.Panes[0].U, s.Panes[1].K, s.Panes[1].U)
	}
}

// Branch labels count as the window does: steps from 1, updates from 0.
func TestGUIBranchLabelsCountLikeTheWindow(t *testing.T) {
	h := tallDemoHarness(t)
	h.key("]", 0) // at step 1, update 0
	if l := h.snap().Panes[0].RunLabel; l != "M=13 @ step 1" {
		t.Errorf("M change at the first step labelled %q", l)
	}
	h.key("T", 0)
	for i := 0; i < 3; i++ {
		h.key(key.NameRightArrow, 0)
	}
	if p := h.snap().Panes[0]; p.K != 1 || p.U != 3 {
		t.Fatalf("at %d.%d", p.K, p.U)
	}
	h.key("B", 0)
	c := h.ui.CellCentre(0, 16, 16)
	h.drag(c, c)
	s := h.snap()
	if l := s.Panes[0].RunLabel; l != "damage @ step 2, update 3" {
		t.Errorf("damage at step 2, update 3 labelled %q", l)
	}
	if _, ok := h.win.Find(runRow(s.Runs[len(s.Runs)-1])); !ok {
		t.Errorf("no branch row %q", runRow(s.Runs[len(s.Runs)-1]))
	}
}

// The VAE field loads a VAE (its own errors, named), the built-in model
// can have one, an opened checkpoint starts with its own settings, and the
// models opened before stay, with their history.
func TestGUIModelsAndVAE(t *testing.T) {
	h := tallDemoHarness(t)
	h.r.vaeLoader = func(path string) (LatentDecoder, error) {
		if strings.Contains(path, "missing") {
			return nil, errors.New("vae: stat " + path + ": no such file or directory")
		}
		return nil, nil
	}
	bad := filepath.Join(t.TempDir(), "missing.safetensors")
	h.typeInto("checkpoint path, Enter", bad)
	if e := h.snap().Error; !strings.Contains(e, "missing.safetensors") {
		t.Fatalf("checkpoint error %q", e)
	}
	h.typeInto("VAE folder or file, Enter", "/nowhere/missing-vae")
	if e := h.snap().Error; !strings.Contains(e, "missing-vae") || strings.Contains(e, "missing.safetensors") {
		t.Errorf("a bad VAE shows %q: not its own error", e)
	}
	h.key(key.NameEscape, 0)
	h.typeInto("VAE folder or file, Enter", "/vae/sd-vae-ft-ema")
	if m := h.message(); !strings.Contains(m, "sd-vae-ft-ema loaded") || h.snap().VAE != "sd-vae-ft-ema" || h.snap().Error != "" {
		t.Errorf("a VAE on the built-in model: message %q, VAE %q, error %q", m, h.snap().VAE, h.snap().Error)
	}
	// M far from the demo model's 12, some history, then a checkpoint
	h.typeInto("M updates", "64")
	h.key("T", 0)
	demoRuns := len(h.snap().Runs)
	if h.snap().Settings.M != 64 {
		t.Fatalf("typed M=64, runs at M %d", h.snap().Settings.M)
	}
	good := filepath.Join(t.TempDir(), "fmnist.safetensors")
	if err := assets.FashionMNIST.Write(good); err != nil {
		t.Fatal(err)
	}
	h.typeInto("checkpoint path, Enter", good)
	s := h.snap()
	if s.Error != "" || !strings.HasPrefix(s.Model, "fmnist.safetensors") || s.Cfg.GridH != 28 {
		t.Fatalf("after opening %s: model %q, error %q", good, s.Model, s.Error)
	}
	if s.Settings.M != 8 || s.Settings.Rate != 0.5 || len(s.Models) != 2 || s.Stamp.Hash == "" {
		t.Errorf("the checkpoint starts at M %d, rate %v (want its 8, 0.5); %d models; hash %q", s.Settings.M, s.Settings.Rate, len(s.Models), s.Stamp.Hash)
	}
	// back to the first model: its runs are all there
	h.click(s.Models[0].Name)
	s = h.snap()
	if s.Cfg.GridH != 32 || len(s.Runs) != demoRuns || s.Settings.M != 64 || s.Panes[0].K != 1 {
		t.Errorf("back on the first model: %dx%d grid, %d runs (had %d), M %d, step %d", s.Cfg.GridH, s.Cfg.GridW, len(s.Runs), demoRuns, s.Settings.M, s.Panes[0].K+1)
	}
}

// The steps buttons start a new run and keep the old one.
func TestGUIStepsButtonsKeepTheRun(t *testing.T) {
	h := tallDemoHarness(t)
	for i := 0; i < 3; i++ {
		h.key("T", 0)
	}
	old := h.snap().Panes[0]
	h.click("25")
	s := h.snap()
	if p := s.Panes[0]; p.Settings.Steps != "25" || p.K != 0 || p.RunLabel != "25 DDPM steps" || len(s.Runs) != 2 {
		t.Fatalf("after 25: steps %q at step %d, label %q, %d runs", p.Settings.Steps, p.K+1, p.RunLabel, len(s.Runs))
	}
	if m := h.message(); !strings.Contains(m, "earlier runs stay") {
		t.Errorf("message %q", m)
	}
	h.click(runRow(s.Runs[0]))
	if p := h.snap().Panes[0]; p.RunID != old.RunID || len(p.Timeline) != len(old.Timeline) || p.Timeline[3] != old.Timeline[3] {
		t.Errorf("the 10-step run came back with %d timesteps (had %d)", len(p.Timeline), len(old.Timeline))
	}
}

// A quick drag of the brush damages every cell on its way.
func TestGUIBrushDrawsLines(t *testing.T) {
	h := demoHarness(t)
	for i := 0; i < 6; i++ {
		h.key(key.NameRightArrow, 0)
	}
	h.typeInto("radius", "0.5")
	h.key("B", 0)
	h.drag(h.ui.CellCentre(0, 10, 4), h.ui.CellCentre(0, 13, 27)) // one move event
	s := h.snap()
	cin := s.Cfg.InChannels
	st := s.Panes[0].Frame.State
	for j := 4; j <= 27; j++ {
		i := 10 + (3*(j-4)+11)/23 // the line's row at column j
		cell := st.Cell(0, i, j)
		if slices.ContainsFunc(cell[cin:], func(x float32) bool { return x != 0 }) {
			t.Errorf("cell (%d, %d) on the stroke was not erased", i, j)
		}
	}
	if !slices.ContainsFunc(st.Cell(0, 20, 16)[cin:], func(x float32) bool { return x != 0 }) {
		t.Error("a cell off the stroke was erased")
	}
}

// A GIF of the run is written in the background with its progress shown,
// whole, with a sidecar, and the confirmation is visible.
func TestGUIGIFExportInTheBackground(t *testing.T) {
	h, _ := fakeHarness(t, "30", 1280, 800)
	for i := 0; i < 30; i++ {
		h.key("T", 0)
	}
	gate := make(chan struct{})
	h.ui.opt.ExportDir = t.TempDir()
	hold := exportHook
	exportHook = func(i int) {
		if i == 3 {
			<-gate
		}
	}
	defer func() { exportHook = hold }()
	h.key("R", key.ModShift)
	h.waitFor("the progress in the status line", 5*time.Second, func() bool {
		js := h.ui.bg.running()
		return len(js) == 1 && js[0].name == "GIF" && js[0].total == 30 && js[0].done == 3
	})
	if files, _ := filepath.Glob(filepath.Join(h.ui.opt.ExportDir, "*.gif")); len(files) != 0 {
		t.Errorf("a GIF file exists before it is complete: %v", files)
	}
	if h.snap().Playing || h.r.Busy() > 0 {
		t.Error("the export holds the runner")
	}
	close(gate)
	h.waitJobs()
	files, _ := filepath.Glob(filepath.Join(h.ui.opt.ExportDir, "*.gif"))
	if len(files) != 1 {
		t.Fatalf("GIFs written: %v", files)
	}
	f, err := os.Open(files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g, err := gif.DecodeAll(f)
	if err != nil || len(g.Image) != 30 {
		t.Fatalf("GIF: %v, %d frames", err, len(g.Image))
	}
	if m := h.message(); !strings.HasSuffix(m, "(30 frames)") || !strings.Contains(m, files[0]) {
		t.Errorf("message %q", m)
	}
	var st Stamp
	b, err := os.ReadFile(files[0] + ".json")
	if err != nil || json.Unmarshal(b, &st) != nil || st.Kind != "gif" || st.Panes[0].Step != 30 {
		t.Errorf("sidecar %s: %v %+v", b, err, st)
	}
}

// The panel keeps its layout when a selected cell's attention appears, and
// the run controls stay in view when the panel scrolls.
func TestGUIPanelHoldsStill(t *testing.T) {
	guitest.RequireRenderer(t)
	eng, err := NewDemoEngine(1)
	if err != nil {
		t.Fatal(err)
	}
	s := DefaultSettings(eng.Config())
	s.Steps = "10"
	h := newHarnessSize(t, eng, s, 1280, 1200)
	undo0, ok := h.win.Find("Undo")
	if !ok {
		t.Fatal("no Undo button")
	}
	h.win.Click(h.ui.CellCentre(0, 16, 15))
	h.frame()
	undo1, _ := h.win.Find("Undo")
	h.key(key.NameRightArrow, 0) // the attention appears
	if f := h.snap().Panes[0].Frame; len(f.Attn) == 0 {
		t.Fatal("no attention after an update")
	}
	undo2, _ := h.win.Find("Undo")
	if undo1 != undo0 || undo2 != undo0 {
		t.Errorf("the Undo button moved: %v, %v, %v", undo0, undo1, undo2)
	}
	play0, _ := h.win.Find("Play")
	h.win.Scroll(image.Pt(1100, 700), 0, 900)
	h.frame()
	h.frame()
	play1, _ := h.win.Find("Play")
	undo3, _ := h.win.Find("Undo")
	if play1 != play0 {
		t.Errorf("Play moved from %v to %v when the panel scrolled", play0, play1)
	}
	if undo3 == undo0 {
		t.Error("the panel did not scroll")
	}
}

// Small things: "nothing to undo" is a remark, Esc dismisses the banner,
// "1 step", GHG rows say on or off.
func TestGUISmallThings(t *testing.T) {
	h, _ := fakeHarness(t, "10", 1280, 2400)
	h.key("U", 0)
	if e := h.snap().Error; e != "" {
		t.Errorf("nothing to undo raised the banner %q", e)
	}
	if m := h.message(); m != "nothing to undo" {
		t.Errorf("nothing to undo says %q", m)
	}
	if _, ok := h.win.Find("#1 main · 1 step"); !ok {
		t.Errorf("branch rows: %q", h.win.Descriptions())
	}
	h.key("G", 0)
	if _, ok := h.win.Find("#2 GHG off @ step 1 · 1 step"); !ok {
		t.Errorf("GHG branch row: %q", h.win.Descriptions())
	}
	h.r.Send(ShowError{Msg: "something failed"})
	h.frame()
	if h.snap().Error == "" {
		t.Fatal("no banner to dismiss")
	}
	h.key(key.NameEscape, 0)
	if e := h.snap().Error; e != "" {
		t.Errorf("Esc left the banner %q", e)
	}
}

// The help overlay fits the smallest window, every line whole.
func TestGUIHelpFits(t *testing.T) {
	h, _ := fakeHarness(t, "10", 900, 600)
	h.key("?", 0)
	if tr := h.ui.Truncated(); len(tr) > 0 {
		t.Errorf("cut off at 900x600: %q", tr)
	}
	for _, b := range h.ui.keys {
		if b.shown != "" && !h.win.HasLabel(b.what) {
			t.Errorf("help line %q not shown", b.what)
		}
	}
	if !h.win.HasLabel(mouseHelp) {
		t.Error("the mouse line is not shown")
	}
	if r, ok := h.win.Find("close (Esc)"); !ok || r.Max.Y > 600 {
		t.Errorf("help overlay's close button at %v", r)
	}
	if h.ui.helpView.bottom > 600 {
		t.Errorf("the help overlay ends at y=%d, below the window", h.ui.helpView.bottom)
	}
	h.shot("help-900x600")
}

// The status line states the play rate achieved, not the one asked for.
func TestGUIAchievedRate(t *testing.T) {
	h, eng := fakeHarness(t, "50", 1280, 800)
	eng.delay = 25 * time.Millisecond // at most 40 updates a second
	h.start()
	h.click("60/s")
	h.key(key.NameSpace, 0)
	start := time.Now()
	h.waitFor("a measured rate", 10*time.Second, func() bool { return h.shown().Achieved > 0 && time.Since(start) > 1500*time.Millisecond })
	s := h.shown()
	if s.Achieved > 41 || s.Achieved < 10 {
		t.Errorf("achieved %.1f updates/s with 25 ms per update", s.Achieved)
	}
	if st := playState(s, false); !strings.Contains(st, "achieved") || !strings.HasPrefix(st, "playing 60/s") {
		t.Errorf("status %q", st)
	}
}

// tallDemoHarness is the demo model in a window tall enough to show the
// whole side panel.
func tallDemoHarness(t *testing.T) *harness {
	guitest.RequireRenderer(t)
	eng, err := NewDemoEngine(1)
	if err != nil {
		t.Fatal(err)
	}
	s := DefaultSettings(eng.Config())
	s.Steps = "10"
	return newHarnessSize(t, eng, s, 1280, 2400)
}

func colorRGBA(c color.NRGBA) color.RGBA { return color.RGBA{c.R, c.G, c.B, c.A} }

// A runner's remark is shown once: a later message of the window (here the
// hint of Open… without a file dialog) stays on screen over the frames
// after it instead of the remark coming back.
func TestGUIRemarkShownOnce(t *testing.T) {
	h := tallDemoHarness(t)
	h.r.Send(SetBudget{Bytes: 512 << 20})
	h.frame()
	if m := h.message(); !strings.Contains(m, "memory budget") {
		t.Fatalf("runner remark: %q", m)
	}
	h.key("O", 0)
	for i := 0; i < 3; i++ {
		h.frame()
	}
	if m := h.message(); !strings.Contains(m, "type the path") {
		t.Fatalf("after Open… without a dialog the status line says %q", m)
	}
}
