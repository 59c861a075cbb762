package app

import (
	"fmt"
	"image"
	"image/color"
	"slices"
	"time"

	"gioui.org/io/event"
	"gioui.org/io/key"
	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/op/clip"
	"gioui.org/op/paint"
	"gioui.org/text"
	"gioui.org/widget/material"

	"geca/engine"
	"geca/render"
)

// Options configure the UI.
type Options struct {
	// ExportDir is where exports are written ("" = the working directory).
	ExportDir string
	// ChooseFile, when set, opens a file dialog and returns the chosen path
	// (it may block; the UI calls it from a goroutine).
	ChooseFile func(exts ...string) (string, error)
	// Invalidate asks the window for a new frame (from any goroutine).
	Invalidate func()
	// Shaper is the text shaper (nil: the default, with system fonts).
	Shaper *text.Shaper
	// Demo opens in the demo preset (docs/viewer.md).
	Demo bool
}

// Cmd is what a component asks for: a runner Command (computed on the
// runner's goroutine) or a windowCmd (a change of what the window shows,
// applied on the UI goroutine).
type Cmd any

// windowCmd changes the window's own state.
type windowCmd func(u *UI)

// look is what the window shows and how. The UI goroutine owns it; every
// component reads it.
type look struct {
	snap    *Snapshot
	view    render.View
	decoded bool // x₀ through the full VAE decode when there is one
	channel int
	hidden  [3]int
	reach   bool // dim the cells outside the seed's reach
	brushOn bool
	brush   BrushMode
	radius  float64
	help    bool
	demo    bool
	diff    bool   // compare: a difference pane
	diffAB  [2]int // the panes it subtracts
	hover   hover
	scrub   scrub
}

// hover is the cell under the pointer.
type hover struct {
	pane int
	cell [2]int // (-1, -1) when none
}

// scrub is the timeline position while its sliders are dragged: panes show
// it at once from the recorded history, before the runner has moved.
type scrub struct {
	on   bool
	k, u int
}

// UI is the visualizer's widget tree. Only the UI goroutine touches it.
type UI struct {
	r   *Runner
	opt Options
	th  *material.Theme
	look

	bg       *background
	msg      message
	lastNote uint64
	images   *imageCache
	decodes  *decodeCache

	top      topBar
	canvas   canvasArea
	timeline timelinePanel
	status   statusBar
	banner   errorBanner
	side     sidePanel
	helpView helpOverlay
	keys     []binding

	// truncated lists the checked labels (status message, help lines,
	// branch rows) that did not fit in the last frame.
	truncated []string
	lastSeq   uint64
	// pressed is the key event the keymap is handling.
	pressed key.Event
	// focusWindow: a click on the canvas takes the keyboard from an editor.
	focusWindow bool

	frameTimes [120]time.Duration
	frameN     int

	// opened holds the models already shown once: a model's Opening
	// applies the first time it becomes current, never again.
	opened map[int]bool
}

// message is the status line's latest message.
type message struct {
	text string
	err  bool
}

// NewUI makes the UI for runner r.
func NewUI(r *Runner, opt Options) *UI {
	u := &UI{r: r, opt: opt, th: newTheme(opt.Shaper), images: newImageCache(), decodes: newDecodeCache(opt.Invalidate)}
	u.bg = newBackground(opt.Invalidate)
	u.hidden = [3]int{0, 1, 2}
	u.hover = hover{cell: [2]int{-1, -1}}
	u.radius = 1.5
	u.diffAB = [2]int{0, 1}
	u.snap = r.Snapshot()
	u.side.init()
	u.keys = keymap()
	// u.lastNote starts at 0: a remark made before the window opened (such
	// as an unreadable recent-files list) is shown.
	if opt.Demo {
		u.do(demoPreset())
	}
	return u
}

// say shows a message in the status line (UI goroutine only).
func (u *UI) say(isErr bool, format string, args ...any) {
	u.msg = message{text: fmt.Sprintf(format, args...), err: isErr}
}

// do carries out commands: runner commands are queued, window commands
// applied at once.
func (u *UI) do(cmds ...Cmd) {
	for _, c := range cmds {
		switch c := c.(type) {
		case nil:
		case Command:
			u.r.Send(c)
		case windowCmd:
			c(u)
		case []Cmd:
			u.do(c...)
		default:
			panic(fmt.Sprintf("app: unknown command %T", c))
		}
	}
}

// FrameTimes returns the CPU time of the last laid-out frames (newest last).
func (u *UI) FrameTimes() []time.Duration {
	n := min(u.frameN, len(u.frameTimes))
	out := make([]time.Duration, 0, n)
	for i := u.frameN - n; i < u.frameN; i++ {
		out = append(out, u.frameTimes[i%len(u.frameTimes)])
	}
	return out
}

// medianFrameMs is the median CPU time of the recent frames.
func (u *UI) medianFrameMs() float64 {
	ts := u.FrameTimes()
	if len(ts) == 0 {
		return 0
	}
	slices.Sort(ts)
	return float64(ts[len(ts)/2].Microseconds()) / 1000
}

// Layout draws one frame.
func (u *UI) Layout(gtx C) D {
	start := time.Now()
	if s := u.r.Snapshot(); s != nil && s != u.snap {
		u.snap = s
	}
	if u.snap.NoteSeq != u.lastNote {
		u.lastNote = u.snap.NoteSeq
		u.msg = message{text: u.snap.Note}
	}
	if u.snap.Seq != u.lastSeq {
		u.lastSeq = u.snap.Seq
		u.side.sync(&u.look)
		u.openModel()
	}
	u.truncated = u.truncated[:0]
	if u.focusWindow {
		u.focusWindow = false
		cancelKeyFocus(gtx, u)
	}
	u.bg.runPosted()
	u.do(u.handleKeys(gtx)...)
	u.do(u.top.Update(gtx, &u.look)...)
	u.do(u.canvas.Update(gtx, &u.look)...)
	u.do(u.timeline.Update(gtx, &u.look)...)
	u.do(u.side.Update(gtx, &u.look)...)
	u.do(u.banner.Update(gtx, &u.look)...)
	u.images.beginFrame()

	paint.FillShape(gtx.Ops, colCanvas, clip.Rect{Max: gtx.Constraints.Max}.Op())
	// keys reach us when nothing else is focused; the tag also lets a click
	// on the canvas take the focus away from an editor. It sits in an area
	// of its own: a handler on the root area would hide the controls from
	// the router's semantic tree (screen readers, tests).
	root := clip.Rect{Max: gtx.Constraints.Max}.Push(gtx.Ops)
	event.Op(gtx.Ops, u)
	root.Pop()
	d := layout.Flex{Axis: layout.Vertical}.Layout(gtx,
		layout.Flexed(1, func(gtx C) D {
			return layout.Flex{}.Layout(gtx,
				layout.Flexed(1, func(gtx C) D {
					return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
						layout.Rigid(func(gtx C) D {
							d := u.top.Layout(gtx, u)
							u.top.height = d.Size.Y
							return d
						}),
						layout.Flexed(1, func(gtx C) D { return u.canvas.Layout(gtx, u) }),
						layout.Rigid(func(gtx C) D { return u.timeline.Layout(gtx, u) }),
					)
				}),
				layout.Rigid(func(gtx C) D {
					w := min(gtx.Dp(sidePanelWidth), gtx.Constraints.Max.X/2)
					gtx.Constraints = layout.Exact(image.Pt(w, gtx.Constraints.Max.Y))
					fill(gtx, colPanel)
					fillRect(gtx.Ops, colLine, image.Rect(0, 0, 1, gtx.Constraints.Max.Y))
					return u.side.Layout(gtx, u)
				}),
			)
		}),
		layout.Rigid(func(gtx C) D { return u.status.Layout(gtx, u) }),
	)
	if u.snap.Error != "" {
		u.banner.Layout(gtx, u)
	}
	if u.help {
		u.helpView.Layout(gtx, u)
	}
	if u.r.Busy() > 0 || u.decodes.pending() || u.bg.busy() {
		gtx.Execute(op.InvalidateCmd{At: gtx.Now.Add(100 * time.Millisecond)})
	}
	u.images.endFrame()
	u.frameTimes[u.frameN%len(u.frameTimes)] = time.Since(start)
	u.frameN++
	return d
}

// sidePanelWidth is the width of the side panel in dp.
const sidePanelWidth = 340

// checked lays out a one-line label and notes it in u.truncated when its
// text needed more width than it got (the tests read it; a person sees the
// ellipsis).
func (u *UI) checked(gtx C, l material.LabelStyle) D {
	if need := naturalWidth(gtx, l); need > gtx.Constraints.Max.X {
		u.truncated = append(u.truncated, l.Text)
	}
	return l.Layout(gtx)
}

// naturalWidth is the width label l takes on one line with no limit.
func naturalWidth(gtx C, l material.LabelStyle) int {
	m := op.Record(gtx.Ops)
	g := gtx
	g.Constraints = layout.Constraints{Max: image.Pt(1<<24, 1<<24)}
	l.MaxLines = 1
	d := l.Layout(g)
	m.Stop()
	return d.Size.X
}

// Truncated returns the checked labels that did not fit in the last frame.
func (u *UI) Truncated() []string { return slices.Clone(u.truncated) }

// StatusMessage is the message the status line shows ("" when none).
func (u *UI) StatusMessage() (string, bool) { return u.msg.text, u.msg.err }

// cancelKeyFocus gives the keyboard back to the window (from an editor).
func cancelKeyFocus(gtx C, u *UI) { gtx.Execute(key.FocusCmd{Tag: u}) }

// predSymbol is the symbol of what a model's first C_out channels hold: ε̂
// for the official noise prediction, v̂ for velocity (docs/model.md §6.5;
// not the learned-variance values v of the next C_in channels).
func predSymbol(p engine.Prediction) string {
	if p == engine.PredictV {
		return "v̂"
	}
	return "ε"
}

// viewName is the label of a view in the UI, for a model whose outputs are
// predictions of kind p.
func viewName(v render.View, p engine.Prediction) string {
	switch v {
	case render.ViewX0:
		return "x₀ pred"
	case render.ViewXt:
		return "x_t"
	case render.ViewEps:
		return predSymbol(p)
	case render.ViewV:
		return "v"
	case render.ViewHidden:
		return "hidden"
	case render.ViewHiddenPCA:
		return "hidden PCA"
	case render.ViewUpdate:
		return "|update|"
	case render.ViewAlive:
		return "alive"
	case render.ViewAttention:
		return "attention"
	case render.ViewInfluence:
		return "seed influence"
	}
	return v.String()
}

// viewKey is the key that shows view v.
func viewKey(v render.View) string {
	if v == render.ViewInfluence {
		return "I"
	}
	return fmt.Sprint(int(v) + 1)
}

func colorA(c color.NRGBA, a uint8) color.NRGBA { c.A = a; return c }

// openModel applies the current model's Opening the first time the model
// is shown (not in the demo preset, which has its own look).
func (u *UI) openModel() {
	id := 0
	for _, m := range u.snap.Models {
		if m.Current {
			id = m.ID
		}
	}
	if u.opened == nil {
		u.opened = map[int]bool{}
	}
	if u.opened[id] {
		return
	}
	u.opened[id] = true
	o := u.snap.Opening
	if o == nil || u.demo {
		return
	}
	u.view = o.View
	if o.Damage {
		u.brushOn, u.brush = true, BrushBlank
	}
	u.syncInfluence()
	if o.Speed > 0 {
		u.do(SetSpeed{UpdatesPerSecond: o.Speed})
	}
}

// setView shows view v; the seed influence is measured while a view needs
// it.
func (u *UI) setView(v render.View) {
	u.view = v
	u.syncInfluence()
}

// syncInfluence asks the runner to measure the seed influence exactly while
// the window shows it (the view or the reach overlay): it doubles the cost
// of an update.
func (u *UI) syncInfluence() {
	want := u.view == render.ViewInfluence || u.reach || u.demo
	if want != u.snap.Influence {
		u.r.Send(SetInfluence{On: want})
	}
}
