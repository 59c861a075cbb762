package app

import (
	"fmt"
	"image"
	"image/color"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gioui.org/f32"
	"gioui.org/io/event"
	"gioui.org/io/key"
	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/op/clip"
	"gioui.org/op/paint"
	"gioui.org/text"
	"gioui.org/widget"
	"gioui.org/widget/material"

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
}

var speeds = []float64{1, 4, 8, 16, 60, 0} // updates per second; 0 = max

// UI is the visualizer's widget tree. Only the UI goroutine touches it.
type UI struct {
	r    *Runner
	opt  Options
	th   *material.Theme
	snap *Snapshot

	view    render.View
	decoded bool // show the full VAE decode of x0 when available
	channel int
	hidden  [3]int
	help    bool

	canvases []*canvas
	images   *imageCache
	decodes  *decodeCache

	brush       BrushMode
	brushOn     bool
	radius      widget.Float
	hoverCell   [2]int // hovered cell, (-1, -1) when none
	hoverPane   int
	timeSlider  widget.Float
	updSlider   widget.Float
	timeDrag    bool
	updDrag     bool
	localK      int
	localU      int
	mSlider     widget.Float
	cfgSlider   widget.Float
	rateSlider  widget.Float
	mDrag       bool
	cfgDrag     bool
	rateDrag    bool
	ghg         widget.Bool
	seedEd      widget.Editor
	labelEd     widget.Editor
	compareEd   widget.Editor
	ckptEd      widget.Editor
	vaeEd       widget.Editor
	panel       widget.List
	strip       layout.List
	stripClicks []widget.Clickable
	runClicks   []widget.Clickable
	lastSnapSeq uint64
	seedFocus   bool
	topH        int
	focusPath   bool
	dismissAt   image.Point
	labelFocus  bool

	btnPlay, btnStep, btnStepT, btnReset, btnDice, btnUndo          widget.Clickable
	btnPNG, btnGIFStep, btnGIFRun, btnNPY, btnOpen, btnOpenVAE      widget.Clickable
	btnHelp, btnCloseErr, btnCompareM, btnCompareGHG, btnCompareOff widget.Clickable
	btnBrushOff, btnErase, btnPerturb, btnChPrev, btnChNext         widget.Clickable
	btnDecoded                                                      widget.Clickable
	viewBtns                                                        [render.NumViews]widget.Clickable
	speedBtns                                                       [6]widget.Clickable
	stepsBtns                                                       [5]widget.Clickable

	// messages from background work (exports, file dialogs), shown in the status line
	msgMu   sync.Mutex
	message string
	msgErr  bool
	actions []func()
	vaeCopy string

	frameTimes [120]time.Duration
	frameN     int
}

var stepsChoices = []string{"10", "25", "50", "100", "250"}

// NewUI makes the UI for runner r.
func NewUI(r *Runner, opt Options) *UI {
	u := &UI{r: r, opt: opt, th: newTheme(opt.Shaper), hidden: [3]int{0, 1, 2}, hoverCell: [2]int{-1, -1},
		images: newImageCache(), decodes: newDecodeCache(opt.Invalidate)}
	u.panel.Axis = layout.Vertical
	u.strip.Axis = layout.Horizontal
	for _, e := range []*widget.Editor{&u.seedEd, &u.labelEd, &u.compareEd, &u.ckptEd, &u.vaeEd} {
		e.SingleLine, e.Submit = true, true
	}
	u.radius.Value = 0.3
	u.compareEd.SetText("4, 12, 24")
	u.snap = r.Snapshot()
	u.syncControls()
	return u
}

// syncControls copies the settings of the snapshot into the controls that
// are not being edited.
func (u *UI) syncControls() {
	s := u.snap.Settings
	if !u.mDrag {
		u.mSlider.Value = float32(min(max(s.M, 1), 64)-1) / 63
	}
	if !u.cfgDrag {
		u.cfgSlider.Value = min(max((s.CFG-1)/7, 0), 1)
	}
	if !u.rateDrag {
		u.rateSlider.Value = min(max((s.Rate-0.05)/0.95, 0), 1)
	}
	u.ghg.Value = s.GHG
	if !u.seedFocus {
		u.setIfChanged(&u.seedEd, strconv.FormatUint(s.Seed, 10))
	}
	if !u.labelFocus {
		u.setIfChanged(&u.labelEd, s.LabelString())
	}
}

func (u *UI) setIfChanged(e *widget.Editor, s string) {
	if e.Text() != s {
		e.SetText(s)
	}
}

func (u *UI) sliderM() int       { return 1 + int(u.mSlider.Value*63+0.5) }
func (u *UI) sliderCFG() float32 { return 1 + float32(int(u.cfgSlider.Value*28+0.5))/4 }
func (u *UI) sliderRate() float32 {
	return 0.05 + float32(int(u.rateSlider.Value*19+0.5))*0.05
}
func (u *UI) brushRadius() float64 { return 0.5 + float64(u.radius.Value)*7.5 }

func (u *UI) send(c Command) { u.r.Send(c) }

// say shows a message in the status line (safe from any goroutine).
func (u *UI) say(isErr bool, format string, args ...any) {
	u.msgMu.Lock()
	u.message, u.msgErr = fmt.Sprintf(format, args...), isErr
	u.msgMu.Unlock()
	if u.opt.Invalidate != nil {
		u.opt.Invalidate()
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

// Layout draws one frame.
func (u *UI) Layout(gtx C) D {
	start := time.Now()
	if s := u.r.Snapshot(); s != nil && s != u.snap {
		u.snap = s
	}
	u.seedFocus, u.labelFocus = gtx.Focused(&u.seedEd), gtx.Focused(&u.labelEd)
	if u.snap.Seq != u.lastSnapSeq {
		u.lastSnapSeq = u.snap.Seq
		u.syncControls()
	}
	u.runActions()
	if u.focusPath {
		u.focusPath = false
		gtx.Execute(key.FocusCmd{Tag: &u.ckptEd})
		u.panel.Position.First, u.panel.Position.Offset = 7, 0
	}
	u.handleKeys(gtx)
	u.handleControls(gtx)
	u.images.beginFrame()

	paint.FillShape(gtx.Ops, colCanvas, clip.Rect{Max: gtx.Constraints.Max}.Op())
	// keys reach us when nothing else is focused; the tag also lets a click
	// on the canvas take the focus away from an editor
	event.Op(gtx.Ops, u)
	d := layout.Flex{Axis: layout.Vertical}.Layout(gtx,
		layout.Flexed(1, func(gtx C) D {
			return layout.Flex{}.Layout(gtx,
				layout.Flexed(1, func(gtx C) D {
					return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
						layout.Rigid(func(gtx C) D {
							d := u.layoutTopBar(gtx)
							u.topH = d.Size.Y
							return d
						}),
						layout.Flexed(1, u.layoutCanvases),
						layout.Rigid(u.layoutTimeline),
					)
				}),
				layout.Rigid(func(gtx C) D {
					w := gtx.Dp(340)
					gtx.Constraints = layout.Exact(image.Pt(w, gtx.Constraints.Max.Y))
					fill(gtx, colPanel)
					fillRect(gtx.Ops, colLine, image.Rect(0, 0, 1, gtx.Constraints.Max.Y))
					return u.layoutPanel(gtx)
				}),
			)
		}),
		layout.Rigid(u.layoutStatus),
	)
	if u.snap.Error != "" {
		u.layoutError(gtx)
	}
	if u.help {
		u.layoutHelp(gtx)
	}
	if u.r.Busy() > 0 || u.decodes.pending() {
		gtx.Execute(op.InvalidateCmd{At: gtx.Now.Add(100 * time.Millisecond)})
	}
	u.images.endFrame()
	u.frameTimes[u.frameN%len(u.frameTimes)] = time.Since(start)
	u.frameN++
	return d
}

// viewName is the label of a view in the UI.
func viewName(v render.View) string {
	switch v {
	case render.ViewX0:
		return "x₀ pred"
	case render.ViewXt:
		return "x_t"
	case render.ViewEps:
		return "ε"
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
	}
	return v.String()
}

func (u *UI) layoutTopBar(gtx C) D {
	return withBg(gtx, colPanel, func(gtx C) D {
		gtx.Constraints.Min.X = gtx.Constraints.Max.X
		return layout.Inset{Left: 12, Right: 12, Top: 8, Bottom: 8}.Layout(gtx, func(gtx C) D {
			return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
				layout.Rigid(func(gtx C) D {
					return row(gtx, 8,
						bold(label(u.th, 15, colText, "geca")).Layout,
						label(u.th, 12, colMuted, "view").Layout,
					)
				}),
				layout.Rigid(layout.Spacer{Width: 10}.Layout),
				layout.Flexed(1, func(gtx C) D {
					var ws []layout.Widget
					for i := render.View(0); i < render.NumViews; i++ {
						i := i
						name := fmt.Sprintf("%d %s", int(i)+1, viewName(i))
						ws = append(ws, func(gtx C) D { return chip(gtx, u.th, &u.viewBtns[i], name, u.view == i) })
					}
					if u.snap.Decode != nil {
						ws = append(ws, func(gtx C) D { return chip(gtx, u.th, &u.btnDecoded, "VAE decode", u.decoded) })
					}
					return wrapRow(gtx, 4, ws...)
				}),
				layout.Rigid(func(gtx C) D {
					var txt string
					switch u.view {
					case render.ViewEps, render.ViewV:
						txt = fmt.Sprintf("channel %d/%d", u.channel+1, max(u.snap.Cfg.InChannels, 1))
					case render.ViewHidden:
						txt = fmt.Sprintf("hidden %d,%d,%d", u.hidden[0], u.hidden[1], u.hidden[2])
					default:
						return D{}
					}
					return layout.Inset{Right: 8}.Layout(gtx, func(gtx C) D {
						return row(gtx, 4,
							func(gtx C) D { return chip(gtx, u.th, &u.btnChPrev, "<", false) },
							label(u.th, 12, colText, txt).Layout,
							func(gtx C) D { return chip(gtx, u.th, &u.btnChNext, ">", false) },
						)
					})
				}),
				layout.Rigid(func(gtx C) D { return chip(gtx, u.th, &u.btnHelp, "? keys", u.help) }),
			)
		})
	})
}

func (u *UI) layoutStatus(gtx C) D {
	return withBg(gtx, colPanelAlt, func(gtx C) D {
		gtx.Constraints.Min.X = gtx.Constraints.Max.X
		return layout.Inset{Left: 12, Right: 12, Top: 4, Bottom: 4}.Layout(gtx, func(gtx C) D {
			s := u.snap
			model := fmt.Sprintf("%s · %dx%d grid, %d+%d+%d channels", s.Model, s.Cfg.GridH, s.Cfg.GridW,
				s.Cfg.InChannels, s.Cfg.OutChannels(), s.Cfg.HiddenChannels)
			state := "paused"
			if s.Playing {
				state = "playing"
				if s.Speed > 0 {
					state += fmt.Sprintf(" %g upd/s", s.Speed)
				} else {
					state += " max speed"
				}
			}
			if b := u.r.Busy(); b > 150*time.Millisecond {
				state += fmt.Sprintf(" · computing %.1f s", b.Seconds())
			}
			if s.Status != "" {
				state += " · " + s.Status
			}
			perf := fmt.Sprintf("update %.0f ms · ui %.1f ms", float64(s.LastUpdate.Microseconds())/1000, u.medianFrameMs())
			if s.Device != "" {
				perf = s.Device + " · " + perf
			}
			u.msgMu.Lock()
			msg, msgErr := u.message, u.msgErr
			u.msgMu.Unlock()
			var children []layout.FlexChild
			if s.Untrained {
				children = append(children, layout.Rigid(func(gtx C) D {
					return layout.Inset{Right: 10}.Layout(gtx, bold(label(u.th, 12, colWarn, "UNTRAINED random weights: open a checkpoint (O)")).Layout)
				}))
			}
			children = append(children,
				layout.Rigid(label(u.th, 12, colMuted, model).Layout),
				layout.Rigid(layout.Spacer{Width: 14}.Layout),
				layout.Rigid(label(u.th, 12, colText, state).Layout),
				layout.Rigid(layout.Spacer{Width: 14}.Layout),
				layout.Flexed(1, func(gtx C) D {
					c := colGreen
					if msgErr {
						c = colError
					}
					l := label(u.th, 12, c, msg)
					l.Alignment = text.Middle
					return l.Layout(gtx)
				}),
				layout.Rigid(label(u.th, 12, colMuted, perf).Layout),
			)
			return layout.Flex{Alignment: layout.Middle}.Layout(gtx, children...)
		})
	})
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

func (u *UI) layoutError(gtx C) {
	off := image.Pt(gtx.Dp(16), u.topH+gtx.Dp(8))
	defer op.Offset(off).Push(gtx.Ops).Pop()
	w := min(gtx.Constraints.Max.X-gtx.Dp(32+340), gtx.Dp(820))
	gtx.Constraints = layout.Constraints{Min: image.Pt(w, 0), Max: image.Pt(w, gtx.Constraints.Max.Y)}
	var btn D
	d := withBg(gtx, colError, func(gtx C) D {
		return layout.Inset{Left: 12, Right: 8, Top: 8, Bottom: 8}.Layout(gtx, func(gtx C) D {
			return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
				layout.Flexed(1, func(gtx C) D {
					l := label(u.th, 13, colText, u.snap.Error)
					l.MaxLines = 4
					return l.Layout(gtx)
				}),
				layout.Rigid(layout.Spacer{Width: 8}.Layout),
				layout.Rigid(func(gtx C) D {
					btn = button(gtx, u.th, &u.btnCloseErr, "dismiss", false)
					return btn
				}),
			)
		})
	})
	u.dismissAt = off.Add(image.Pt(d.Size.X-gtx.Dp(8)-btn.Size.X/2, d.Size.Y/2))
}

// errorDismissAt is the window position of the error banner's dismiss
// button in the last frame.
func (u *UI) errorDismissAt() image.Point { return u.dismissAt }

// handleControls reacts to clicks and slider moves of the last frame.
func (u *UI) handleControls(gtx C) {
	s := u.snap
	if u.btnPlay.Clicked(gtx) {
		u.send(TogglePlay{})
	}
	if u.btnStep.Clicked(gtx) {
		u.send(StepUpdate{})
	}
	if u.btnStepT.Clicked(gtx) {
		u.send(StepTimestep{})
	}
	if u.btnReset.Clicked(gtx) {
		u.send(Reset{})
	}
	if u.btnDice.Clicked(gtx) {
		u.dice()
	}
	if u.btnUndo.Clicked(gtx) {
		u.send(Undo{})
	}
	if u.btnHelp.Clicked(gtx) {
		u.help = !u.help
	}
	if u.btnCloseErr.Clicked(gtx) {
		u.send(ClearError{})
	}
	if u.btnDecoded.Clicked(gtx) {
		u.decoded = !u.decoded
	}
	for i := range u.viewBtns {
		if u.viewBtns[i].Clicked(gtx) {
			u.view = render.View(i)
		}
	}
	for i := range u.speedBtns {
		if u.speedBtns[i].Clicked(gtx) {
			u.send(SetSpeed{UpdatesPerSecond: speeds[i]})
		}
	}
	for i := range u.stepsBtns {
		if u.stepsBtns[i].Clicked(gtx) && stepsChoices[i] != s.Base.Steps {
			ns := s.Base
			ns.Steps = stepsChoices[i]
			u.send(Reset{Settings: &ns})
		}
	}
	if u.btnChPrev.Clicked(gtx) {
		u.cycleChannel(-1)
	}
	if u.btnChNext.Clicked(gtx) {
		u.cycleChannel(1)
	}
	if u.btnBrushOff.Clicked(gtx) {
		u.brushOn = false
	}
	if u.btnErase.Clicked(gtx) {
		u.brushOn, u.brush = true, BrushErase
	}
	if u.btnPerturb.Clicked(gtx) {
		u.brushOn, u.brush = true, BrushPerturb
	}
	if u.btnCompareOff.Clicked(gtx) {
		u.send(Compare{})
	}
	if u.btnCompareGHG.Clicked(gtx) {
		u.send(Compare{Field: "GHG"})
	}
	if u.btnCompareM.Clicked(gtx) {
		u.compareM()
	}
	if u.btnPNG.Clicked(gtx) {
		u.exportPNG()
	}
	if u.btnGIFStep.Clicked(gtx) {
		u.exportGIF(false)
	}
	if u.btnGIFRun.Clicked(gtx) {
		u.exportGIF(true)
	}
	if u.btnNPY.Clicked(gtx) {
		u.exportNPY()
	}
	if u.btnOpen.Clicked(gtx) {
		u.openDialog(false)
	}
	if u.btnOpenVAE.Clicked(gtx) {
		u.openDialog(true)
	}
	for i := range u.runClicks {
		if u.runClicks[i].Clicked(gtx) && i < len(s.Runs) {
			u.send(SwitchRun{ID: s.Runs[i].ID})
		}
	}
	for i := range u.stripClicks {
		if u.stripClicks[i].Clicked(gtx) && len(s.Panes) > 0 && i < len(s.Panes[s.Active].Timeline) {
			rec := s.Panes[s.Active].Timeline[i]
			u.send(Seek{K: i, U: len(rec.Frames) - 1})
		}
	}
	// sliders: settings apply when the drag ends, so one drag is one branch
	if u.ghg.Update(gtx) {
		v := u.ghg.Value
		u.send(Change{GHG: &v})
	}
	if u.mSlider.Update(gtx) || u.mSlider.Dragging() {
		u.mDrag = true
	} else if u.mDrag {
		u.mDrag = false
		if m := u.sliderM(); m != s.Settings.M {
			u.send(Change{M: &m})
		}
	}
	if u.cfgSlider.Update(gtx) || u.cfgSlider.Dragging() {
		u.cfgDrag = true
	} else if u.cfgDrag {
		u.cfgDrag = false
		if v := u.sliderCFG(); v != s.Settings.CFG {
			u.send(Change{CFG: &v})
		}
	}
	if u.rateSlider.Update(gtx) || u.rateSlider.Dragging() {
		u.rateDrag = true
	} else if u.rateDrag {
		u.rateDrag = false
		if v := u.sliderRate(); v != s.Settings.Rate {
			u.send(Change{Rate: &v})
		}
	}
	// editors submit on Enter
	for {
		ev, ok := u.seedEd.Update(gtx)
		if !ok {
			break
		}
		if _, ok := ev.(widget.SubmitEvent); ok {
			seed, err := strconv.ParseUint(strings.TrimSpace(u.seedEd.Text()), 10, 64)
			if err != nil {
				u.say(true, "seed %q is not a non-negative integer", u.seedEd.Text())
				continue
			}
			ns := s.Base
			ns.Seed = seed
			u.send(Reset{Settings: &ns})
			gtx.Execute(key.FocusCmd{})
		}
	}
	for {
		ev, ok := u.labelEd.Update(gtx)
		if !ok {
			break
		}
		if _, ok := ev.(widget.SubmitEvent); ok {
			labels, err := ParseLabels(u.labelEd.Text(), s.Cfg.NumClasses)
			if err != nil {
				u.say(true, "labels: %v", err)
				continue
			}
			ns := s.Base
			ns.Labels = labels
			u.send(Reset{Settings: &ns})
			gtx.Execute(key.FocusCmd{})
		}
	}
	for {
		ev, ok := u.compareEd.Update(gtx)
		if !ok {
			break
		}
		if _, ok := ev.(widget.SubmitEvent); ok {
			u.compareM()
			gtx.Execute(key.FocusCmd{})
		}
	}
	for _, e := range []*widget.Editor{&u.ckptEd, &u.vaeEd} {
		for {
			ev, ok := e.Update(gtx)
			if !ok {
				break
			}
			if _, ok := ev.(widget.SubmitEvent); ok {
				u.openPaths()
				gtx.Execute(key.FocusCmd{})
			}
		}
	}
	u.handleTimeline(gtx)
}

func (u *UI) dice() {
	ns := u.snap.Base
	ns.Seed = rand.Uint64() % 1000000
	u.send(Reset{Settings: &ns})
}

func (u *UI) compareM() {
	var ms []int
	for _, f := range strings.FieldsFunc(u.compareEd.Text(), func(r rune) bool { return r == ',' || r == ' ' }) {
		m, err := strconv.Atoi(f)
		if err != nil {
			u.say(true, "compare: %q is not an integer M", f)
			return
		}
		ms = append(ms, m)
	}
	u.send(Compare{Field: "M", Ms: ms})
}

func (u *UI) cycleChannel(d int) {
	cin := u.snap.Cfg.InChannels
	switch u.view {
	case render.ViewHidden:
		nh := u.snap.Cfg.HiddenChannels
		if nh > 0 {
			for i := range u.hidden {
				u.hidden[i] = ((u.hidden[i]+3*d)%nh + nh) % nh
			}
		}
	default:
		if cin > 0 {
			u.channel = ((u.channel+d)%cin + cin) % cin
		}
	}
}

func (u *UI) openPaths() {
	ckpt, vae := strings.TrimSpace(u.ckptEd.Text()), strings.TrimSpace(u.vaeEd.Text())
	if ckpt == "" {
		u.say(true, "type a checkpoint path first")
		return
	}
	u.send(LoadModel{Ckpt: ckpt, VAE: vae})
}

// openDialog asks the platform's file dialog for a checkpoint (or a file in
// a VAE folder) without blocking the UI.
func (u *UI) openDialog(vae bool) {
	if u.opt.ChooseFile == nil {
		u.say(true, "no file dialog here: type the path in the field and press Enter")
		u.focusPath = true
		return
	}
	go func() {
		exts := []string{".pt", ".safetensors", ".pth"}
		if vae {
			exts = []string{".json", ".safetensors", ".bin"}
		}
		p, err := u.opt.ChooseFile(exts...)
		if err != nil {
			if err.Error() == "cancelled" {
				return
			}
			u.r.Send(ShowError{Msg: fmt.Sprintf("No file dialog here (%v). Type or paste the path in the field under EXPORT AND MODEL and press Enter.", err)})
			u.post(func() { u.focusPath = true })
			return
		}
		if vae {
			dir := p
			if i := strings.LastIndexAny(p, `/\`); i > 0 {
				dir = p[:i]
			}
			u.post(func() { u.vaeEd.SetText(dir) })
			u.say(false, "VAE folder %s chosen: open a checkpoint to load it with", dir)
			return
		}
		u.post(func() { u.ckptEd.SetText(p) })
		u.r.Send(LoadModel{Ckpt: p, VAE: strings.TrimSpace(u.vaeText())})
	}()
}

// vaeText is the VAE field's text, read on the UI goroutine when the dialog
// started (an approximation good enough for a path field).
func (u *UI) vaeText() string {
	u.msgMu.Lock()
	defer u.msgMu.Unlock()
	return u.vaeCopy
}

// post runs f on the UI goroutine at the start of the next frame.
func (u *UI) post(f func()) {
	u.msgMu.Lock()
	u.actions = append(u.actions, f)
	u.msgMu.Unlock()
	if u.opt.Invalidate != nil {
		u.opt.Invalidate()
	}
}

func (u *UI) runActions() {
	u.msgMu.Lock()
	acts := u.actions
	u.actions = nil
	u.vaeCopy = u.vaeEd.Text()
	u.msgMu.Unlock()
	for _, f := range acts {
		f()
	}
}

// The key bindings, shown by the help overlay.
var shortcuts = [][2]string{
	{"Space", "play / pause"},
	{"→  or  N", "step one cell update"},
	{"Shift+→  or  T", "step one timestep"},
	{"←  /  Shift+←", "back one update / one timestep (history)"},
	{"Home  /  End", "first / newest recorded frame"},
	{"R", "reset (same seed)"},
	{"D", "dice: new random seed"},
	{"[  /  ]", "M − 1 / M + 1 (branches)"},
	{"G", "GHG on / off (branches)"},
	{",  /  .", "slower / faster"},
	{"1 … 9", "views: x₀, x_t, ε, v, hidden, PCA, |update|, alive, attention"},
	{"V  /  C", "next view / next channel"},
	{"+  /  −  /  0", "zoom in / out / fit"},
	{"B", "damage brush: off → erase → perturb"},
	{"Ctrl+Z  or  U", "undo the last damage stroke"},
	{"K", "compare M (values in the Compare field) / off"},
	{"P  /  Shift+P", "export PNG of the view / GIF of this timestep"},
	{"Shift+R", "export GIF of the whole run"},
	{"E", "export the grid as .npy"},
	{"O", "open a checkpoint"},
	{"Esc", "close help, clear the selected cell"},
	{"?  or  F1", "this help"},
}

func (u *UI) layoutHelp(gtx C) {
	paint.FillShape(gtx.Ops, colorA(colCanvas, 0xd8), clip.Rect{Max: gtx.Constraints.Max}.Op())
	w := gtx.Dp(560)
	x := (gtx.Constraints.Max.X - w) / 2
	defer op.Offset(image.Pt(max(x, 0), gtx.Dp(60))).Push(gtx.Ops).Pop()
	gtx.Constraints = layout.Constraints{Max: image.Pt(w, gtx.Constraints.Max.Y)}
	gtx.Constraints.Min.X = w
	withBg(gtx, colPanel, func(gtx C) D {
		gtx.Constraints.Min.X = w
		return layout.UniformInset(18).Layout(gtx, func(gtx C) D {
			children := []layout.FlexChild{
				layout.Rigid(bold(label(u.th, 16, colText, "Keyboard shortcuts")).Layout),
				layout.Rigid(layout.Spacer{Height: 10}.Layout),
			}
			for _, s := range shortcuts {
				s := s
				children = append(children, layout.Rigid(func(gtx C) D {
					return layout.Inset{Bottom: 3}.Layout(gtx, func(gtx C) D {
						return layout.Flex{}.Layout(gtx,
							layout.Rigid(func(gtx C) D {
								gtx.Constraints.Min.X = gtx.Dp(150)
								return bold(label(u.th, 13, colAccent, s[0])).Layout(gtx)
							}),
							layout.Flexed(1, label(u.th, 13, colText, s[1]).Layout),
						)
					})
				}))
			}
			children = append(children, layout.Rigid(layout.Spacer{Height: 8}.Layout),
				layout.Rigid(label(u.th, 12, colMuted, "Mouse: click a cell to inspect it · drag to pan · wheel to zoom · with the brush on, drag to damage").Layout))
			return layout.Flex{Axis: layout.Vertical}.Layout(gtx, children...)
		})
	})
}

// handleKeys runs the keyboard shortcuts. While an editor has the focus
// the keys are left to it (Enter, arrows, Backspace), except Esc, which gives
// the focus back to the canvas.
func (u *UI) handleKeys(gtx C) {
	if u.editing(gtx) {
		for {
			ev, ok := gtx.Event(key.Filter{Name: key.NameEscape})
			if !ok {
				break
			}
			if e, ok := ev.(key.Event); ok && e.State == key.Press {
				gtx.Execute(key.FocusCmd{Tag: u})
			}
		}
		return
	}
	for {
		ev, ok := gtx.Event(key.Filter{Name: "", Optional: key.ModShift | key.ModCtrl})
		if !ok {
			break
		}
		if e, ok := ev.(key.Event); ok && e.State == key.Press {
			u.onKey(gtx, e)
		}
	}
}

func (u *UI) editing(gtx C) bool {
	for _, e := range []*widget.Editor{&u.seedEd, &u.labelEd, &u.compareEd, &u.ckptEd, &u.vaeEd} {
		if gtx.Focused(e) {
			return true
		}
	}
	return false
}

func (u *UI) onKey(gtx C, e key.Event) {
	shift, ctrl := e.Modifiers.Contain(key.ModShift), e.Modifiers.Contain(key.ModCtrl)
	s := u.snap
	p := s.Panes[s.Active]
	switch e.Name {
	case key.NameSpace:
		u.send(TogglePlay{})
	case key.NameRightArrow, "N", "T":
		if shift || e.Name == "T" {
			u.send(StepTimestep{})
		} else {
			u.send(StepUpdate{})
		}
	case key.NameLeftArrow:
		if shift {
			u.send(Seek{K: max(p.K-1, 0), U: 0})
		} else if p.U > 0 {
			u.send(Seek{K: p.K, U: p.U - 1})
		} else if p.K > 0 {
			u.send(Seek{K: p.K - 1, U: 1 << 30})
		}
	case key.NameHome:
		u.send(Seek{K: 0, U: 0})
	case key.NameEnd:
		u.send(Seek{K: 1 << 30, U: 1 << 30})
	case "R":
		if shift {
			u.exportGIF(true)
		} else {
			u.send(Reset{})
		}
	case "D":
		u.dice()
	case "[", "]":
		m := s.Settings.M - 1
		if e.Name == "]" {
			m = s.Settings.M + 1
		}
		if m >= 1 && m <= 64 {
			u.send(Change{M: &m})
		}
	case "G":
		v := !s.Settings.GHG
		u.send(Change{GHG: &v})
	case ",", ".":
		i := 0
		for j, sp := range speeds {
			if sp == s.Speed {
				i = j
			}
		}
		if e.Name == "," {
			i = max(i-1, 0)
		} else {
			i = min(i+1, len(speeds)-1)
		}
		u.send(SetSpeed{UpdatesPerSecond: speeds[i]})
	case "1", "2", "3", "4", "5", "6", "7", "8", "9":
		u.view = render.View(e.Name[0] - '1')
	case "V":
		u.view = (u.view + 1) % render.NumViews
	case "C":
		u.cycleChannel(1)
	case "+", "=":
		u.zoomAll(1.25)
	case "-":
		u.zoomAll(0.8)
	case "0":
		for _, c := range u.canvases {
			c.zoom, c.pan = 1, f32.Point{}
		}
	case "B":
		switch {
		case !u.brushOn:
			u.brushOn, u.brush = true, BrushErase
		case u.brush == BrushErase:
			u.brush = BrushPerturb
		default:
			u.brushOn = false
		}
	case "Z":
		if ctrl {
			u.send(Undo{})
		}
	case "U":
		u.send(Undo{})
	case "K":
		if s.Compare != "" {
			u.send(Compare{})
		} else {
			u.compareM()
		}
	case "P":
		if shift {
			u.exportGIF(false)
		} else {
			u.exportPNG()
		}
	case "E":
		u.exportNPY()
	case "O":
		u.openDialog(false)
	case key.NameEscape:
		if u.help {
			u.help = false
		} else {
			u.send(Select{I: -1})
		}
	case "?", key.NameF1:
		u.help = !u.help
	case "/":
		if shift {
			u.help = !u.help
		}
	}
}

func (u *UI) zoomAll(f float32) {
	for _, c := range u.canvases {
		c.zoom = min(max(c.zoom*f, 0.25), 32)
	}
}

func colorA(c color.NRGBA, a uint8) color.NRGBA { c.A = a; return c }
