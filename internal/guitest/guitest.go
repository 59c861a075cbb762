// Package guitest runs Gio widget trees in tests without a display: it lays
// them out like a window would, feeds them synthetic pointer and key input
// through an input.Router, and renders them with Gio's headless GPU renderer
// into an image.RGBA.
//
// Layout and input work everywhere. Rendering needs a GPU driver; on Linux
// Mesa's software renderer serves through EGL with EGL_PLATFORM=surfaceless
// (set here when unset) or through Vulkan (lavapipe). When no renderer can be
// created, Screenshot skips the test with the reason.
//
// A frame is one call to Frame, as in a real window: widgets see the events
// queued before it, so a click is Click followed by Frame.
package guitest

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"gioui.org/f32"
	"gioui.org/font/gofont"
	"gioui.org/gpu/headless"
	"gioui.org/io/event"
	"gioui.org/io/input"
	"gioui.org/io/key"
	"gioui.org/io/pointer"
	"gioui.org/io/semantic"
	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/op/clip"
	"gioui.org/op/paint"
	"gioui.org/text"
	"gioui.org/unit"
	"gioui.org/widget/material"
)

// Window is a test window: a fixed size, a fixed font collection, a router
// for input and, on demand, a headless renderer.
type Window struct {
	tb testing.TB

	// Size is the window size in pixels.
	Size image.Point
	// Metric maps dp and sp to pixels; the default is 1:1 so that layouts
	// are the same on every machine.
	Metric unit.Metric
	// Theme uses only the Go fonts (no system fonts), so text shapes the
	// same everywhere.
	Theme *material.Theme
	// Background is painted under the widget tree; opaque white by default.
	Background color.NRGBA
	// Now is the animation time of the next frame; see Advance.
	Now time.Time
	// Router delivers the queued events to the widgets.
	Router input.Router

	ops    op.Ops
	frames int
	gpu    *headless.Window
	gpuErr error // why no renderer could be created
}

var (
	fontsOnce sync.Once
	fonts     []text.FontFace
)

// goFonts parses the Go font collection once per test binary; parsing takes
// longer than most widget tests.
func goFonts() []text.FontFace {
	fontsOnce.Do(func() { fonts = gofont.Collection() })
	return fonts
}

// NewShaper returns a text shaper that knows only the Go fonts.
func NewShaper() *text.Shaper {
	return text.NewShaper(text.NoSystemFonts(), text.WithCollection(goFonts()))
}

// New returns a test window of w x h pixels. Resources are released when the
// test ends.
func New(tb testing.TB, w, h int) *Window {
	tb.Helper()
	if w <= 0 || h <= 0 {
		tb.Fatalf("guitest.New: window size %dx%d is not positive", w, h)
	}
	th := material.NewTheme()
	th.Shaper = NewShaper()
	win := &Window{
		tb:         tb,
		Size:       image.Pt(w, h),
		Metric:     unit.Metric{PxPerDp: 1, PxPerSp: 1},
		Theme:      th,
		Background: color.NRGBA{R: 255, G: 255, B: 255, A: 255},
		Now:        time.Unix(0, 0),
	}
	tb.Cleanup(win.release)
	return win
}

// Context returns the layout context of the next frame. Frame calls it; use
// it directly only to drive layout by hand (then call EndFrame).
func (w *Window) Context() layout.Context {
	w.ops.Reset()
	return layout.Context{
		Ops:         &w.ops,
		Metric:      w.Metric,
		Constraints: layout.Exact(w.Size),
		Now:         w.Now,
		// Without a Source, widgets lay out as disabled and see no events.
		Source: w.Router.Source(),
	}
}

// EndFrame hands the operations of a frame laid out by hand to the router.
func (w *Window) EndFrame(gtx layout.Context) {
	w.Router.Frame(gtx.Ops)
	w.frames++
}

// Frame lays out ui over the background as one frame and hands its
// operations to the router, which delivers the events queued so far.
func (w *Window) Frame(ui layout.Widget) layout.Dimensions {
	w.tb.Helper()
	gtx := w.Context()
	// the root area gets a semantic node, so the router reports the whole
	// tree of controls under it (Find), not only its first branch
	semantic.LabelOp("window").Add(gtx.Ops)
	paint.FillShape(gtx.Ops, w.Background, clip.Rect{Max: w.Size}.Op())
	dims := ui(gtx)
	w.EndFrame(gtx)
	return dims
}

// Frames reports how many frames have been laid out.
func (w *Window) Frames() int { return w.frames }

// Advance moves the animation clock of the next frame forward by d.
func (w *Window) Advance(d time.Duration) { w.Now = w.Now.Add(d) }

// Queue queues raw events (pointer.Event, key.Event, ...) for the next frame.
func (w *Window) Queue(events ...event.Event) { w.Router.Queue(events...) }

func pt(p image.Point) f32.Point { return f32.Pt(float32(p.X), float32(p.Y)) }

// Move queues a mouse move (hover) to p, in window pixels.
func (w *Window) Move(p image.Point) {
	w.Queue(pointer.Event{Kind: pointer.Move, Source: pointer.Mouse, Position: pt(p)})
}

// Press queues a primary-button press at p.
func (w *Window) Press(p image.Point) {
	w.Queue(pointer.Event{Kind: pointer.Press, Source: pointer.Mouse, Buttons: pointer.ButtonPrimary, Position: pt(p)})
}

// Release queues the release of the primary button at p.
func (w *Window) Release(p image.Point) {
	w.Queue(pointer.Event{Kind: pointer.Release, Source: pointer.Mouse, Position: pt(p)})
}

// Click queues a primary-button click (press and release) at p.
func (w *Window) Click(p image.Point) {
	w.Press(p)
	w.Release(p)
}

// Drag queues a press at from, steps moves with the primary button held
// ending at to, and a release at to (steps < 1 counts as 1). Platforms report
// such moves as pointer.Move with Buttons set; the router turns them into
// pointer.Drag for the handler that grabbed the press, and refuses Drag
// events queued directly.
func (w *Window) Drag(from, to image.Point, steps int) {
	steps = max(steps, 1)
	w.Press(from)
	a, b := pt(from), pt(to)
	for i := 1; i <= steps; i++ {
		f := float32(i) / float32(steps)
		w.Queue(pointer.Event{Kind: pointer.Move, Source: pointer.Mouse, Buttons: pointer.ButtonPrimary,
			Position: a.Add(b.Sub(a).Mul(f))})
	}
	w.Release(to)
}

// Scroll queues a mouse-wheel scroll of (dx, dy) pixels at p.
func (w *Window) Scroll(p image.Point, dx, dy float32) {
	w.Queue(pointer.Event{Kind: pointer.Scroll, Source: pointer.Mouse, Position: pt(p), Scroll: f32.Pt(dx, dy)})
}

// Key queues a press and a release of the named key (key.NameSpace, "A",
// key.NameLeftArrow, ...) with the given modifiers.
func (w *Window) Key(name key.Name, mods key.Modifiers) {
	w.Queue(key.Event{Name: name, Modifiers: mods, State: key.Press},
		key.Event{Name: name, Modifiers: mods, State: key.Release})
}

// Type inserts s at the selection of the focused editor, as an input method
// would, and moves the caret after it.
func (w *Window) Type(s string) {
	sel := w.Router.EditorState().Selection.Range
	start := min(sel.Start, sel.End)
	caret := start + utf8.RuneCountInString(s)
	w.Queue(key.EditEvent{Range: sel, Text: s}, key.SelectionEvent{Start: caret, End: caret})
}

// ensureGPU creates the headless renderer once; it reports why it cannot.
func (w *Window) ensureGPU() error {
	if w.gpu == nil && w.gpuErr == nil {
		w.gpu, w.gpuErr = NewRenderer(w.Size)
	}
	return w.gpuErr
}

// NewRenderer creates a headless GPU window of the given size. On Linux
// without a display it selects Mesa's surfaceless EGL platform unless
// EGL_PLATFORM is already set.
func NewRenderer(size image.Point) (*headless.Window, error) {
	if os.Getenv("EGL_PLATFORM") == "" && os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		os.Setenv("EGL_PLATFORM", "surfaceless")
	}
	return headless.NewWindow(size.X, size.Y)
}

// skipReason explains how to get a renderer.
const skipReason = "guitest: no headless GPU renderer (%v). On Debian, Mesa's software renderer " +
	"(libegl-mesa0, libgl1-mesa-dri) with EGL_PLATFORM=surfaceless, or mesa-vulkan-drivers, provides one; " +
	"`make test` installs both"

// Screenshot renders the operations of the last frame and returns the
// pixels (sRGB, premultiplied alpha; opaque wherever the background shows).
// It skips the test when no renderer can be created here.
func (w *Window) Screenshot() *image.RGBA {
	w.tb.Helper()
	if w.frames == 0 {
		w.tb.Fatal("guitest: Screenshot before the first Frame")
	}
	if err := w.ensureGPU(); err != nil {
		w.tb.Skipf(skipReason, err)
	}
	if err := w.gpu.Frame(&w.ops); err != nil {
		w.tb.Fatalf("guitest: rendering the frame: %v", err)
	}
	img := image.NewRGBA(image.Rectangle{Max: w.Size})
	if err := w.gpu.Screenshot(img); err != nil {
		w.tb.Fatalf("guitest: reading the frame back: %v", err)
	}
	return img
}

// RequireRenderer skips the test unless a headless renderer can be created.
func RequireRenderer(tb testing.TB) {
	tb.Helper()
	gw, err := NewRenderer(image.Pt(4, 4))
	if err != nil {
		tb.Skipf(skipReason, err)
	}
	gw.Release()
}

func (w *Window) release() {
	if w.gpu != nil {
		w.gpu.Release()
		w.gpu = nil
	}
}

// At returns the colour of img at (x, y).
func At(img *image.RGBA, x, y int) color.RGBA {
	return img.RGBAAt(x, y)
}

// Near reports whether every channel of a and b differs by at most tol.
// Renderers differ in antialiasing and rounding; compare with a tolerance.
func Near(a, b color.RGBA, tol uint8) bool {
	d := func(x, y uint8) bool {
		if x > y {
			return x-y <= tol
		}
		return y-x <= tol
	}
	return d(a.R, b.R) && d(a.G, b.G) && d(a.B, b.B) && d(a.A, b.A)
}

// Count returns how many pixels of img inside r are Near c.
func Count(img *image.RGBA, r image.Rectangle, c color.RGBA, tol uint8) int {
	n := 0
	r = r.Intersect(img.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if Near(img.RGBAAt(x, y), c, tol) {
				n++
			}
		}
	}
	return n
}

// SavePNG writes img as NAME.png for a person to look at: into the folder
// named by $GECA_GUITEST_OUT when set, else into the test's temporary folder
// (removed after the test). It returns the path.
func SavePNG(tb testing.TB, img image.Image, name string) string {
	tb.Helper()
	dir := os.Getenv("GECA_GUITEST_OUT")
	if dir == "" {
		dir = tb.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatalf("guitest: %v", err)
	}
	name = strings.NewReplacer("/", "_", " ", "_").Replace(name)
	path := filepath.Join(dir, name+".png")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatalf("guitest: %v", err)
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		tb.Fatalf("guitest: writing %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		tb.Fatalf("guitest: writing %s: %v", path, err)
	}
	return path
}

// Find returns the bounds, in window pixels, of the control whose semantic
// description is desc (semantic.DescriptionOp, as buttons set for screen
// readers) in the last frame, the first one when several match.
func (w *Window) Find(desc string) (image.Rectangle, bool) {
	for _, n := range w.Router.AppendSemantics(nil) {
		if n.Desc.Description == desc {
			return n.Desc.Bounds, true
		}
	}
	return image.Rectangle{}, false
}

// Descriptions lists the semantic descriptions of the last frame's controls.
func (w *Window) Descriptions() []string {
	var out []string
	for _, n := range w.Router.AppendSemantics(nil) {
		if n.Desc.Description != "" {
			out = append(out, n.Desc.Description)
		}
	}
	return out
}

// ClickOn queues a click at the centre of the control described by desc;
// it fails the test when there is none.
func (w *Window) ClickOn(desc string) {
	w.tb.Helper()
	r, ok := w.Find(desc)
	if !ok {
		w.tb.Fatalf("guitest: no control %q in the last frame (have %q)", desc, w.Descriptions())
	}
	w.Click(r.Min.Add(r.Max).Div(2))
}

// Labels lists the text of the last frame's labels (semantic.LabelOp, as
// Gio's labels set), for tests that read what the window says.
func (w *Window) Labels() []string {
	var out []string
	for _, n := range w.Router.AppendSemantics(nil) {
		if n.Desc.Label != "" {
			out = append(out, n.Desc.Label)
		}
	}
	return out
}

// HasLabel reports whether a label of the last frame contains s.
func (w *Window) HasLabel(s string) bool {
	for _, l := range w.Labels() {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}
