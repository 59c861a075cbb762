package app

import (
	"context"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gioui.org/f32"
	"gioui.org/io/key"
	"gioui.org/io/pointer"

	"geca/internal/guitest"
	"geca/render"
)

// harness drives the real UI without a window: input goes through the
// guitest router, and commands run synchronously between frames (or, with
// async, on the runner's own goroutine as in the window).
type harness struct {
	t     *testing.T
	win   *guitest.Window
	r     *Runner
	ui    *UI
	async bool
}

func newHarness(t *testing.T, eng Engine, s Settings) *harness {
	return newHarnessSize(t, eng, s, 1280, 800)
}

func newHarnessSize(t *testing.T, eng Engine, s Settings, w, h int) *harness {
	t.Helper()
	ctrl, err := NewController(eng, s)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRunner(eng, ctrl, Open, nil)
	win := guitest.New(t, w, h)
	ui := NewUI(r, Options{Shaper: guitest.NewShaper(), ExportDir: t.TempDir()})
	hs := &harness{t: t, win: win, r: r, ui: ui}
	hs.frame()
	return hs
}

// start runs the runner on its own goroutine, as the window does, until
// the test ends.
func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.r.Run(ctx); close(done) }()
	h.async = true
	h.t.Cleanup(func() { cancel(); h.r.Send(ClearError{}); <-done })
}

// frame delivers the queued input, runs the commands it produced and draws
// the result.
func (h *harness) frame() {
	h.win.Frame(h.ui.Layout)
	if !h.async {
		h.r.drain()
	}
	h.win.Frame(h.ui.Layout)
}

// waitFor lays out frames until cond holds (the runner works on its own
// goroutine), failing after timeout.
func (h *harness) waitFor(what string, timeout time.Duration, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		h.win.Frame(h.ui.Layout)
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("waited %v for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitJobs waits for the background work (exports) to finish.
func (h *harness) waitJobs() {
	h.t.Helper()
	h.waitFor("the background work", 20*time.Second, func() bool { return !h.ui.bg.busy() })
	h.frame()
}

func (h *harness) key(name key.Name, mods key.Modifiers) {
	h.win.Key(name, mods)
	h.frame()
}

// click clicks the control described by desc (a button's or chip's text).
func (h *harness) click(desc string) {
	h.t.Helper()
	h.win.ClickOn(desc)
	h.frame()
}

// typeInto focuses the editor whose hint is hint, replaces its text with s
// and presses Enter.
func (h *harness) typeInto(hint, s string) {
	h.t.Helper()
	h.win.ClickOn(hint)
	h.frame()
	h.win.Key("A", key.ModShortcut)
	h.frame()
	h.win.Type(s)
	h.frame()
	h.key(key.NameReturn, 0)
}

// drag presses at from, moves to to with the button down in one event and
// releases (the router turns the move into a drag).
func (h *harness) drag(from, to image.Point) {
	h.win.Press(from)
	h.win.Queue(pointer.Event{Kind: pointer.Move, Source: pointer.Mouse, Buttons: pointer.ButtonPrimary,
		Position: f32.Pt(float32(to.X), float32(to.Y))})
	h.win.Release(to)
	h.frame()
}

func (h *harness) shot(name string) *image.RGBA {
	img := h.win.Screenshot()
	if dir := os.Getenv("GECA_SCREENSHOTS"); dir != "" {
		if err := render.WritePNG(filepath.Join(dir, name+".png"), img); err != nil {
			h.t.Fatal(err)
		}
	}
	return img
}

// cell returns the colour at the centre of cell (i, j) of pane p.
func (h *harness) cell(img *image.RGBA, p, i, j int) color.RGBA {
	pt := h.ui.CellCentre(p, i, j)
	return img.RGBAAt(pt.X, pt.Y)
}

func (h *harness) snap() *Snapshot { return h.r.Snapshot() }

// shown is the snapshot the window drew last.
func (h *harness) shown() *Snapshot { return h.ui.snap }

// reachedCells counts the cells of pane p that the alive view draws as
// reached (anything but the unreached colour).
func (h *harness) reachedCells(img *image.RGBA, p int) int {
	cfg := h.snap().Cfg
	n := 0
	for i := 0; i < cfg.GridH; i++ {
		for j := 0; j < cfg.GridW; j++ {
			if !guitest.Near(h.cell(img, p, i, j), render.UnreachedColor, 6) {
				n++
			}
		}
	}
	return n
}

// message is the status line's message, failing unless it is shown whole.
func (h *harness) message() string {
	h.t.Helper()
	b := h.ui.status.shown
	if b.text != "" && b.given < b.need {
		h.t.Errorf("status message %q got %d px of the %d it needs", b.text, b.given, b.need)
	}
	return b.text
}

func demoHarness(t *testing.T) *harness {
	guitest.RequireRenderer(t)
	eng, err := NewDemoEngine(1)
	if err != nil {
		t.Fatal(err)
	}
	s := DefaultSettings(eng.Config())
	s.Steps = "10"
	return newHarness(t, eng, s)
}

func TestGUISeedGrowthAndM(t *testing.T) {
	h := demoHarness(t)
	cfg := h.snap().Cfg
	h.key("8", 0) // alive view
	img := h.shot("alive-reset")
	// after reset only the seed cell, at (H/2, W/2), is reached
	if got := h.reachedCells(img, 0); got != 1 {
		t.Errorf("%d cells reached at reset, want only the seed", got)
	}
	if c := h.cell(img, 0, cfg.GridH/2, cfg.GridW/2); guitest.Near(c, render.UnreachedColor, 6) {
		t.Errorf("seed cell not visible at the centre: %v", c)
	}
	// growth spreads, update by update
	prev := 1
	for step := 1; step <= 4; step++ {
		h.key(key.NameRightArrow, 0)
		img = h.shot("alive-step")
		got := h.reachedCells(img, 0)
		if got <= prev {
			t.Errorf("after %d updates %d cells reached, not more than %d", step, got, prev)
		}
		prev = got
		if p := h.snap().Panes[0]; p.U != step {
			t.Fatalf("playhead at update %d after %d steps", p.U, step)
		}
	}
	// the x0 view after two timesteps, then the same with M = 9 from the start
	h.key("1", 0)
	h.key("T", 0)
	h.key("T", 0)
	if p := h.snap().Panes[0]; p.K != 2 || p.U != 0 {
		t.Fatalf("after two timestep steps at %d.%d", p.K, p.U)
	}
	a := h.shot("x0-M12")
	h.key(key.NameHome, 0)
	for i := 0; i < 3; i++ {
		h.key("[", 0)
	}
	s := h.snap()
	if s.Settings.M != 9 || len(s.Runs) != 4 || s.Panes[0].RunLabel != "M=9 @ step 1" {
		t.Fatalf("after [[[: M %d, %d runs, label %q", s.Settings.M, len(s.Runs), s.Panes[0].RunLabel)
	}
	h.key("T", 0)
	h.key("T", 0)
	b := h.shot("x0-M9")
	diff := 0
	for i := 0; i < cfg.GridH; i++ {
		for j := 0; j < cfg.GridW; j++ {
			if h.cell(a, 0, i, j) != h.cell(b, 0, i, j) {
				diff++
			}
		}
	}
	if diff < cfg.Cells()/100 {
		t.Errorf("x0 after M change differs in only %d cells", diff)
	}
}

func TestGUIGHGAndSelection(t *testing.T) {
	h := demoHarness(t)
	cfg := h.snap().Cfg
	h.key("8", 0)
	h.key("T", 0) // to step 2: with GHG the grown cells are carried
	img := h.shot("alive-ghg-on")
	carried := h.reachedCells(img, 0)
	if carried <= 1 {
		t.Fatalf("GHG on: %d cells at the start of step 2", carried)
	}
	h.key("G", 0) // GHG off: branch at the start of this step, fresh seed
	s := h.snap()
	if s.Settings.GHG || s.Panes[0].RunLabel != "GHG off @ step 2" {
		t.Fatalf("GHG toggle: %v %q", s.Settings.GHG, s.Panes[0].RunLabel)
	}
	img = h.shot("alive-ghg-off")
	if got := h.reachedCells(img, 0); got != 1 {
		t.Errorf("GHG off: %d cells at the start of step 2, want the seed only", got)
	}
	// click a cell: it is selected; after an update the attention view shows
	// its 3x3 neighbourhood
	ci, cj := cfg.GridH/2, cfg.GridW/2-1
	h.win.Click(h.ui.CellCentre(0, ci, cj))
	h.frame()
	if sel := h.snap().Selected; sel != [2]int{ci, cj} {
		t.Fatalf("selected %v, want (%d, %d)", sel, ci, cj)
	}
	h.key(key.NameRightArrow, 0)
	f := h.snap().Panes[0].Frame
	if len(f.Attn) != cfg.Heads*9 || f.AttnCell != [2]int{ci, cj} {
		t.Fatalf("frame attention %d values for %v", len(f.Attn), f.AttnCell)
	}
	h.key("9", 0)
	img = h.shot("attention")
	for i := 0; i < cfg.GridH; i++ {
		for j := 0; j < cfg.GridW; j++ {
			in := i >= ci-1 && i <= ci+1 && j >= cj-1 && j <= cj+1
			c := h.cell(img, 0, i, j)
			if dark := guitest.Near(c, render.UnreachedColor, 6); dark == in {
				t.Errorf("attention view cell (%d,%d): %v (in neighbourhood %v)", i, j, c, in)
			}
		}
	}
	// Esc clears the selection
	h.key(key.NameEscape, 0)
	if sel := h.snap().Selected; sel[0] != -1 {
		t.Errorf("Esc left %v selected", sel)
	}
}

func TestGUICompareDamageHelp(t *testing.T) {
	h := demoHarness(t)
	cfg := h.snap().Cfg
	h.key("K", 0) // compare M = 6, 12, 24 (the field's default: M/2, M, 2M)
	s := h.snap()
	if len(s.Panes) != 3 || s.Compare.Kind != CompareM || s.Panes[0].Settings.M != 6 || s.Panes[2].Settings.M != 24 {
		t.Fatalf("compare: %d panes, %v", len(s.Panes), s.Compare)
	}
	for i := 0; i < 7; i++ {
		h.key(key.NameRightArrow, 0)
	}
	s = h.snap()
	if s.Panes[0].K != 0 || s.Panes[0].U != 6 || s.Panes[1].U != 7 || s.Panes[2].U != 7 {
		t.Errorf("lock-step positions %d.%d %d.%d %d.%d", s.Panes[0].K, s.Panes[0].U, s.Panes[1].K, s.Panes[1].U, s.Panes[2].K, s.Panes[2].U)
	}
	h.key("8", 0)
	img := h.shot("compare-alive")
	for p := 0; p < 3; p++ {
		if n := h.reachedCells(img, p); n <= 1 {
			t.Errorf("pane %d: %d cells reached", p, n)
		}
	}
	// the panes fill the canvas: three side by side, each over 250 px wide
	for p := 0; p < 3; p++ {
		if r := h.ui.PaneRect(p); r.Dx() < 250 || r.Dy() < 400 {
			t.Errorf("pane %d is %v", p, r)
		}
	}
	h.key("K", 0) // compare off
	if n := len(h.snap().Panes); n != 1 {
		t.Fatalf("compare off left %d panes", n)
	}
	// damage: erase the centre with the brush, then undo
	before := h.reachedCells(h.shot("before-damage"), 0)
	h.key("B", 0)
	c := h.ui.CellCentre(0, cfg.GridH/2, cfg.GridW/2)
	h.drag(c, c.Add(image.Pt(3, 0)))
	if !h.snap().CanUndo {
		t.Fatal("no damage recorded")
	}
	h.win.Move(image.Pt(2, 2)) // the brush outline follows the pointer: take it off the grid
	h.frame()
	img = h.shot("after-damage")
	if got := h.reachedCells(img, 0); got >= before {
		t.Errorf("erase left %d reached cells (before %d)", got, before)
	}
	if cc := h.cell(img, 0, cfg.GridH/2, cfg.GridW/2); !guitest.Near(cc, render.UnreachedColor, 6) {
		t.Errorf("erased centre drawn as %v", cc)
	}
	h.key("Z", key.ModCtrl)
	if got := h.reachedCells(h.shot("undo"), 0); got != before {
		t.Errorf("undo: %d reached cells, want %d", got, before)
	}
	// exports: PNG and GIFs of the view, the grid as .npy, the numbers as CSV
	h.key("P", 0)
	h.key("P", key.ModShift)
	h.key("R", key.ModShift)
	h.key("E", 0)
	h.key("E", key.ModShift)
	h.waitJobs()
	files, _ := filepath.Glob(filepath.Join(h.ui.opt.ExportDir, "geca-*"))
	count := map[string]int{}
	for _, f := range files {
		count[filepath.Ext(f)]++
	}
	if count[".png"] != 1 || count[".gif"] != 2 || count[".npy"] != 1 || count[".csv"] != 1 || count[".json"] != 5 {
		t.Errorf("exports written: %v", count)
	}
	// help overlay
	h.key("?", 0)
	if !h.ui.help {
		t.Error("? did not open the help")
	}
	h.shot("help")
	h.key(key.NameEscape, 0)
	if h.ui.help {
		t.Error("Esc did not close the help")
	}
}

func TestGUIErrorsStayInTheWindow(t *testing.T) {
	h := demoHarness(t)
	// a checkpoint that does not exist, typed in the path field and
	// submitted with Enter: the error shows in the window and the model
	// keeps running
	bad := filepath.Join(t.TempDir(), "missing.safetensors")
	h.key("O", 0) // no file dialog in tests: the path field takes the focus
	h.frame()
	h.win.Type(bad)
	h.key(key.NameReturn, 0)
	if got := h.ui.side.model.ckpt.Text(); got != bad {
		t.Fatalf("path field holds %q", got)
	}
	s := h.snap()
	if s.Error == "" || !strings.Contains(s.Error, "missing.safetensors") {
		t.Fatalf("error %q does not name the file", s.Error)
	}
	img := h.shot("error")
	red := 0
	for x := 0; x < 900; x += 3 {
		for y := 40; y < 120; y += 3 {
			if guitest.Near(img.RGBAAt(x, y), color.RGBA{0xc9, 0x3c, 0x3c, 0xff}, 10) {
				red++
			}
		}
	}
	if red < 100 {
		t.Errorf("no error banner drawn (%d red samples)", red)
	}
	h.key(key.NameEscape, 0) // focus back to the window: shortcuts work again
	h.key(key.NameRightArrow, 0)
	if p := h.snap().Panes[0]; p.U != 1 {
		t.Errorf("app unusable after the error: at update %d", p.U)
	}
	h.win.Click(h.ui.errorDismissAt())
	h.frame()
	if e := h.snap().Error; e != "" {
		t.Errorf("dismiss left the error %q", e)
	}
}

// The full decode runs off the UI goroutine: the first request returns
// nothing (the canvas shows the preview), a later one the decoded image;
// while playing, one timestep is decoded at most once.
func TestDecodeCacheIsAsync(t *testing.T) {
	release := make(chan struct{})
	calls := 0
	decode := func(lat []float32, h, w int) ([]float32, error) {
		calls++
		<-release
		out := make([]float32, 3*4*h*w) // 2x upscale
		for i := range out {
			out[i] = 1
		}
		return out, nil
	}
	cfg := newFakeEngine().cfg
	f := &Frame{X0: make([]float32, cfg.InChannels*cfg.Cells())}
	d := newDecodeCache(nil)
	sk := stepKey{run: 1, k: 0}
	if img, _ := d.get(f, sk, false, cfg, decode); img != nil || !d.pending() {
		t.Fatal("decode did not start in the background")
	}
	if img, _ := d.get(f, sk, false, cfg, decode); img != nil {
		t.Fatal("decode finished before it was released")
	}
	close(release)
	var img *image.RGBA
	var of *Frame
	for i := 0; i < 200 && img == nil; i++ {
		time.Sleep(5 * time.Millisecond)
		img, of = d.get(f, sk, false, cfg, decode)
	}
	if img == nil || of != f || img.Rect.Dx() != 2*cfg.GridW || img.RGBAAt(0, 0) != (color.RGBA{255, 255, 255, 255}) {
		t.Fatalf("decoded image %v", img)
	}
	// playing: later updates of the same timestep show the decode of the
	// first one and start no new decode
	g := &Frame{X0: f.X0, Update: 3}
	if img, of := d.get(g, sk, true, cfg, decode); img == nil || of != f {
		t.Errorf("while playing, update 3 shows %v from %p, want the decode of update 0", img, of)
	}
	if calls != 1 || d.Decodes() != 1 {
		t.Errorf("%d decodes for one timestep", calls)
	}
}

// TestRunnerConcurrentUI plays the runner on its own goroutine at full speed
// while the UI lays out frames and sends commands, as in the real window;
// run with -race it checks that only immutable data crosses goroutines.
func TestRunnerConcurrentUI(t *testing.T) {
	eng := newFakeEngine()
	s := defaultTestSettings()
	s.Steps = "50"
	ctrl, err := NewController(eng, s)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRunner(eng, ctrl, nil, nil)
	r.speed = 0
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	win := guitest.New(t, 1000, 700)
	ui := NewUI(r, Options{Shaper: guitest.NewShaper(), ExportDir: t.TempDir()})
	cmds := []Command{Play{On: true}, Select{I: 3, J: 4}, Compare{Mode: CompareMode{Kind: CompareM, Ms: []int{2, 6}}}, Seek{K: 0, U: 1},
		Play{On: true}, Compare{}, SetSpeed{UpdatesPerSecond: 0}, Stroke{Cells: [][2]int{{4, 4}}, Radius: 1}, Undo{},
		SetInfluence{On: true}, Play{On: true}}
	views := []key.Name{"1", "5", "6", "7", "8", "9", "I"}
	for i := 0; i < 120; i++ {
		if i%10 == 0 {
			r.Send(cmds[(i/10)%len(cmds)])
		}
		if i%7 == 0 {
			win.Key(views[(i/7)%len(views)], 0)
		}
		win.Frame(ui.Layout)
		time.Sleep(time.Millisecond)
	}
	cancel()
	r.Send(ClearError{})
	<-done
	if s := r.Snapshot(); s.Error != "" {
		t.Errorf("runner error: %s", s.Error)
	}
}

// statusRight is the right part of the status line: model, device, memory.
func (h *harness) statusRight() string {
	for _, l := range h.win.Labels() {
		if strings.Contains(l, " · history ") {
			return l
		}
	}
	return ""
}
