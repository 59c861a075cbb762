package app

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"strings"
	"sync"

	"gioui.org/f32"
	"gioui.org/io/event"
	"gioui.org/io/pointer"
	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/op/clip"
	"gioui.org/op/paint"

	"geca/engine"
	"geca/render"
)

// canvasArea lays the panes out in a grid that fills the canvas (plus a
// difference pane in compare mode when asked), and turns the pointer on them
// into commands: hover, select, pan, zoom, damage.
type canvasArea struct {
	panes []*paneCanvas
	diff  paneCanvas // the difference pane (drawn only, no input)
}

// paneCanvas is the state of one pane's grid view: zoom, pan and the pointer.
type paneCanvas struct {
	zoom     float32
	pan      f32.Point
	pressed  bool
	pressPos f32.Point
	lastPos  f32.Point
	moved    bool
	stroke   [][2]int
	// geometry of the last frame, to map pointer positions to cells
	origin f32.Point
	cell   float32
	gw, gh int
	screen image.Point // the pane's top-left corner in the window
	size   image.Point
}

func (c *paneCanvas) cellAt(p f32.Point) (int, int, bool) {
	if c.cell <= 0 {
		return 0, 0, false
	}
	j := int(math.Floor(float64((p.X - c.origin.X) / c.cell)))
	i := int(math.Floor(float64((p.Y - c.origin.Y) / c.cell)))
	return i, j, i >= 0 && j >= 0 && i < c.gh && j < c.gw
}

func (a *canvasArea) ensure(n int) {
	a.diff.zoom = 1
	for len(a.panes) < n {
		a.panes = append(a.panes, &paneCanvas{zoom: 1})
	}
}

func (a *canvasArea) zoomAll(f float32) {
	for _, c := range a.panes {
		c.zoom = min(max(c.zoom*f, 0.25), 32)
	}
}

func (a *canvasArea) fit() {
	for _, c := range a.panes {
		c.zoom, c.pan = 1, f32.Point{}
	}
}

// source builds the render input of a frame.
func source(cfg engine.Config, f *Frame) *render.Source {
	return &render.Source{Cfg: cfg, State: f.State, Xt: f.Xt, X0: f.X0, Magnitude: f.Magnitude, Attn: f.Attn,
		AttnCell: image.Pt(f.AttnCell[1], f.AttnCell[0]), Reached: f.Reached, Influence: f.Influence}
}

// paneFrame is the frame pane i shows: the local scrub position while a
// timeline slider is dragged, else the runner's playhead.
func (l *look) paneFrame(i int) (*Frame, int, int) {
	p := l.snap.Panes[i]
	if l.scrub.on && len(p.Timeline) > 0 {
		k := max(0, min(l.scrub.k, len(p.Timeline)-1))
		rec := p.Timeline[k]
		uu := max(0, min(l.scrub.u, len(rec.Frames)-1))
		if f := rec.Frames[uu]; f != nil {
			return f, k, uu
		}
	}
	return p.Frame, p.K, p.U
}

// CellCentre returns the window position of the centre of cell (i, j) of
// pane p as drawn in the last frame (for tests and scripted drivers).
func (u *UI) CellCentre(p, i, j int) image.Point {
	cv := u.canvas.panes[p]
	return image.Pt(cv.screen.X+int(cv.origin.X+(float32(j)+0.5)*cv.cell), cv.screen.Y+int(cv.origin.Y+(float32(i)+0.5)*cv.cell))
}

// PaneRect returns pane p's rectangle in the window in the last frame.
func (u *UI) PaneRect(p int) image.Rectangle {
	cv := u.canvas.panes[p]
	return image.Rectangle{Min: cv.screen, Max: cv.screen.Add(cv.size)}
}

// Update handles the pointer on the panes (events of the last frame).
func (a *canvasArea) Update(gtx C, l *look) []Cmd {
	var cmds []Cmd
	for i, cv := range a.panes {
		if i >= len(l.snap.Panes) {
			break
		}
		cmds = append(cmds, a.paneEvents(gtx, l, cv, i)...)
	}
	return cmds
}

// paneEvents handles the pointer on pane i: hover, click to select, drag
// to pan (or to paint with the brush), wheel to zoom about the pointer.
func (a *canvasArea) paneEvents(gtx C, l *look, cv *paneCanvas, i int) []Cmd {
	var cmds []Cmd
	for {
		ev, ok := gtx.Event(pointer.Filter{Target: cv, Kinds: pointer.Press | pointer.Drag | pointer.Release | pointer.Move |
			pointer.Scroll | pointer.Leave | pointer.Cancel, ScrollY: pointer.ScrollRange{Min: -1 << 20, Max: 1 << 20}})
		if !ok {
			break
		}
		e, ok := ev.(pointer.Event)
		if !ok {
			continue
		}
		ci, cj, inside := cv.cellAt(e.Position)
		switch e.Kind {
		case pointer.Move:
			l.hover.pane = i
			if inside {
				l.hover.cell = [2]int{ci, cj}
			} else {
				l.hover.cell = [2]int{-1, -1}
			}
		case pointer.Leave, pointer.Cancel:
			if l.hover.pane == i {
				l.hover.cell = [2]int{-1, -1}
			}
			cv.pressed = false
		case pointer.Press:
			cmds = append(cmds, windowCmd(func(u *UI) { u.focusWindow = true }))
			cv.pressed, cv.moved, cv.pressPos, cv.lastPos = true, false, e.Position, e.Position
			cv.stroke = cv.stroke[:0]
			if i != l.snap.Active {
				cmds = append(cmds, SetActive{Pane: i})
			}
			if l.brushOn {
				cv.stroke = append(cv.stroke, [2]int{ci, cj})
			}
		case pointer.Drag:
			if !cv.pressed {
				continue
			}
			if d := e.Position.Sub(cv.pressPos); d.X*d.X+d.Y*d.Y > 16 {
				cv.moved = true
			}
			l.hover.pane = i
			if inside {
				l.hover.cell = [2]int{ci, cj}
			}
			if l.brushOn {
				// join the cells between this position and the last, so a
				// quick drag leaves a line, not dots
				last := cv.stroke[len(cv.stroke)-1]
				for _, c := range StrokeCells(last, [2]int{ci, cj})[1:] {
					cv.stroke = append(cv.stroke, c)
				}
			} else {
				cv.pan = cv.pan.Add(e.Position.Sub(cv.lastPos))
			}
			cv.lastPos = e.Position
		case pointer.Release:
			if !cv.pressed {
				continue
			}
			cv.pressed = false
			if l.brushOn {
				if cells := insideGrid(cv.stroke, cv.gh, cv.gw); len(cells) > 0 {
					cmds = append(cmds, Stroke{Cells: cells, Radius: l.radius, Mode: l.brush})
				}
			} else if !cv.moved && inside {
				cmds = append(cmds, Select{I: ci, J: cj})
			}
		case pointer.Scroll:
			f := float32(math.Pow(1.0015, float64(-e.Scroll.Y)))
			nz := min(max(cv.zoom*f, 0.25), 32)
			// keep the point under the pointer still
			ratio := nz / cv.zoom
			off := e.Position.Sub(cv.origin)
			cv.pan = cv.pan.Add(off.Sub(off.Mul(ratio)))
			cv.zoom = nz
		}
	}
	return cmds
}

// insideGrid keeps the stroke cells on the grid (a stroke may pass outside).
func insideGrid(cells [][2]int, h, w int) [][2]int {
	var out [][2]int
	for _, c := range cells {
		if c[0] >= 0 && c[1] >= 0 && c[0] < h && c[1] < w {
			out = append(out, c)
		}
	}
	return out
}

// gridShape chooses columns and rows for n panes of a w x h grid in a
// W x H area so the cells come out largest.
func gridShape(n int, area image.Point, w, h int) (cols, rows int) {
	best := float32(-1)
	for c := 1; c <= n; c++ {
		r := (n + c - 1) / c
		pw, ph := float32(area.X)/float32(c), float32(area.Y)/float32(r)-64 // header and footer
		s := min(pw/float32(w), ph/float32(h))
		if s > best {
			best, cols, rows = s, c, r
		}
	}
	return cols, rows
}

func (a *canvasArea) Layout(gtx C, u *UI) D {
	n := len(u.snap.Panes)
	a.ensure(n)
	total := n
	showDiff := u.diff && n >= 2
	if showDiff {
		total++
	}
	size := gtx.Constraints.Max
	cfg := u.snap.Cfg
	cols, rows := gridShape(total, size, cfg.GridW, cfg.GridH)
	for t := 0; t < total; t++ {
		c, r := t%cols, t/cols
		x0, x1 := c*size.X/cols, (c+1)*size.X/cols
		y0, y1 := r*size.Y/rows, (r+1)*size.Y/rows
		if c > 0 {
			fillRect(gtx.Ops, colLine, image.Rect(x0, y0, x0+1, y1))
			x0++
		}
		if r > 0 {
			fillRect(gtx.Ops, colLine, image.Rect(x0, y0, x1, y0+1))
			y0++
		}
		st := op.Offset(image.Pt(x0, y0)).Push(gtx.Ops)
		pg := gtx
		pg.Constraints = layout.Exact(image.Pt(x1-x0, y1-y0))
		if t < n {
			a.panes[t].screen = image.Pt(x0, u.top.height+y0)
			a.panes[t].size = image.Pt(x1-x0, y1-y0)
			a.layoutPane(pg, u, t)
		} else {
			a.diff.screen = image.Pt(x0, u.top.height+y0)
			a.diff.size = image.Pt(x1-x0, y1-y0)
			a.layoutDiff(pg, u)
		}
		st.Pop()
	}
	return D{Size: size}
}

// paneGeometry fits the grid into a pane of the given size with room for
// the header and footer bands, at an integer scale when it fits.
func (cv *paneCanvas) geometry(gtx C, size image.Point, cfg engine.Config, head, foot int) (imgW, imgH float32) {
	cv.gw, cv.gh = cfg.GridW, cfg.GridH
	availW, availH := float32(size.X)-float32(gtx.Dp(24)), float32(size.Y-head-foot)
	fit := max(min(availW/float32(cfg.GridW), availH/float32(cfg.GridH)), 0.5)
	if fit >= 2 {
		fit = float32(math.Floor(float64(fit)))
	}
	cv.cell = max(fit*cv.zoom, 0.5)
	imgW, imgH = cv.cell*float32(cfg.GridW), cv.cell*float32(cfg.GridH)
	cv.origin = f32.Pt((float32(size.X)-imgW)/2+cv.pan.X, float32(head)+(float32(size.Y-head-foot)-imgH)/2+cv.pan.Y)
	return imgW, imgH
}

// viewImage renders the current view of frame f of pane i (cached), or
// explains why it cannot.
func (u *UI) viewImage(f *Frame, i int) (*imgEntry, string) {
	if f == nil {
		return nil, "no frame"
	}
	cfg := u.snap.Cfg
	switch {
	case u.view == render.ViewAttention && len(f.Attn) == 0:
		if f.Update == 0 {
			return nil, "attention is that of a cell update: step one update (→)"
		}
		return nil, "click a cell to see its attention"
	case u.view == render.ViewInfluence && f.Influence == nil:
		if f.Done {
			return nil, "the final sample: the seed influence is that of the cell updates; go back a step (←)"
		}
		return nil, "measuring the seed influence…"
	}
	k := imgKey{frame: f, view: u.view, channel: u.channel, hidden: u.hidden}
	dimmed := u.reach && (f.Influence != nil || f.Reached != nil)
	if dimmed {
		k.dim = true
	}
	base := func() (*image.RGBA, error) {
		return render.Render(u.view, source(cfg, f), render.Options{Channel: u.channel, Hidden: u.hidden, Preview: u.snap.Preview})
	}
	note := ""
	if u.view == render.ViewX0 && u.decoded && u.snap.Decode != nil {
		p := u.snap.Panes[i]
		img, of := u.decodes.get(f, stepKey{run: p.RunID, k: f.Index}, u.snap.Playing, cfg, u.snap.Decode)
		if img != nil {
			k.decoded = of
			base = func() (*image.RGBA, error) { return img, nil }
			if of != f {
				note = fmt.Sprintf("VAE decode of update %d", of.Update)
			} else {
				note = "VAE decode"
			}
		} else {
			note = "preview; decoding…"
			if u.snap.Playing {
				note = "preview; decoded once per timestep while playing"
			}
		}
	}
	e := u.images.get(k, func() (*image.RGBA, error) {
		img, err := base()
		if err != nil || !dimmed {
			return img, err
		}
		return render.Dim(img, reachOf(f), cfg.GridH, cfg.GridW), nil
	})
	e.note = note
	return e, ""
}

// reachOf is the cells the seed has reached in frame f: where it has any
// influence when that is measured (exact), else the growth front
// (Frame.Reached).
func reachOf(f *Frame) []bool {
	if f.Influence != nil {
		out := make([]bool, len(f.Influence))
		for i, v := range f.Influence {
			out[i] = v > 0
		}
		return out
	}
	return f.Reached
}

func (a *canvasArea) layoutPane(gtx C, u *UI, i int) D {
	cv := a.panes[i]
	size := gtx.Constraints.Max
	f, k, uu := u.paneFrame(i)
	cfg := u.snap.Cfg
	p := u.snap.Panes[i]
	head, foot := gtx.Dp(36), gtx.Dp(48)
	switch {
	case u.demo:
		head, foot = gtx.Dp(64), gtx.Dp(88)
	case len(u.snap.Panes) > 1:
		head = gtx.Dp(52) // title and position on two lines
	}
	imgW, imgH := cv.geometry(gtx, size, cfg, head, foot)

	defer clip.Rect{Max: size}.Push(gtx.Ops).Pop()
	event.Op(gtx.Ops, cv)
	cursor := pointer.CursorCrosshair
	if u.brushOn {
		cursor = pointer.CursorPointer
	} else if cv.pressed && cv.moved {
		cursor = pointer.CursorGrabbing
	}
	cursor.Add(gtx.Ops)

	entry, why := u.viewImage(f, i)
	imgRect := image.Rect(int(cv.origin.X), int(cv.origin.Y), int(cv.origin.X+imgW+0.5), int(cv.origin.Y+imgH+0.5))
	fillRect(gtx.Ops, colLine, imgRect.Inset(-1))
	if entry != nil && entry.err == nil && entry.img != nil {
		drawScaled(gtx, entry, cv.origin, imgW, imgH)
	} else {
		fillRect(gtx.Ops, colPanel, imgRect)
		msg := why
		if entry != nil && entry.err != nil {
			msg = entry.err.Error()
		}
		centredText(gtx, u, msg, imgRect)
	}
	cv.drawGridLines(gtx, imgRect, cfg)
	cellRect := func(ci, cj int) image.Rectangle {
		x0, y0 := cv.origin.X+float32(cj)*cv.cell, cv.origin.Y+float32(ci)*cv.cell
		return image.Rect(int(x0), int(y0), int(x0+cv.cell+0.5), int(y0+cv.cell+0.5))
	}
	if sel := u.snap.Selected; sel[0] >= 0 {
		strokeRect(gtx.Ops, cellRect(sel[0], sel[1]).Inset(-1), colAccent, max(gtx.Dp(2), 1))
	}
	if u.hover.pane == i && u.hover.cell[0] >= 0 {
		hc := u.hover.cell
		if u.brushOn {
			r := float32(u.radius) * cv.cell
			c := f32.Pt(cv.origin.X+(float32(hc[1])+0.5)*cv.cell, cv.origin.Y+(float32(hc[0])+0.5)*cv.cell)
			paint.FillShape(gtx.Ops, color.NRGBA{R: 255, G: 255, B: 255, A: 200},
				clip.Stroke{Path: clip.Ellipse{Min: c.Sub(f32.Pt(r, r)).Round(), Max: c.Add(f32.Pt(r, r)).Round()}.Path(gtx.Ops), Width: 1.5}.Op())
		} else {
			strokeRect(gtx.Ops, cellRect(hc[0], hc[1]), color.NRGBA{R: 255, G: 255, B: 255, A: 170}, 1)
		}
	}
	// header and footer bands stay readable over a zoomed grid
	fillRect(gtx.Ops, colorA(colCanvas, 235), image.Rect(0, 0, size.X, head-gtx.Dp(4)))
	fillRect(gtx.Ops, colorA(colCanvas, 235), image.Rect(0, size.Y-foot+gtx.Dp(4), size.X, size.Y))
	a.layoutHeader(gtx, u, i, f, k, uu, entry)
	ft := op.Offset(image.Pt(gtx.Dp(12), size.Y-foot+gtx.Dp(8))).Push(gtx.Ops)
	fg := gtx
	fg.Constraints = layout.Constraints{Max: image.Pt(size.X-gtx.Dp(24), foot)}
	layout.Flex{Axis: layout.Vertical}.Layout(fg,
		layout.Rigid(func(gtx C) D { return u.paneNumbers(gtx, p, k, uu) }),
		layout.Rigid(layout.Spacer{Height: 4}.Layout),
		layout.Rigid(func(gtx C) D { return u.layoutLegend(gtx, f, entry) }),
		layout.Rigid(func(gtx C) D {
			if !u.demo {
				return D{}
			}
			return layout.Inset{Top: 6}.Layout(gtx, func(gtx C) D {
				l := label(u.th, 16, colText, demoCaption(u.snap, p, f))
				l.MaxLines = 2
				return l.Layout(gtx)
			})
		}),
	)
	ft.Pop()
	if w := healthWarning(p.Health); w != "" {
		wg := gtx
		wg.Constraints = layout.Constraints{Max: image.Pt(size.X-gtx.Dp(24), size.Y)}
		st := op.Offset(image.Pt(gtx.Dp(12), head+gtx.Dp(20))).Push(gtx.Ops)
		withBg(wg, colorA(colWarn, 230), func(gtx C) D {
			return layout.UniformInset(6).Layout(gtx, func(gtx C) D {
				l := bold(label(u.th, 12, colCanvas, w))
				l.MaxLines = 3
				return l.Layout(gtx)
			})
		})
		st.Pop()
	}
	return D{Size: size}
}

// healthWarning says where the grid went wrong ("" when it did not).
func healthWarning(h Health) string {
	switch {
	case h.NaNAt[0] >= 0:
		return fmt.Sprintf("⚠ the grid holds non-finite values (NaN or ∞), first at %s: the checkpoint or the settings are broken", StepLabel(h.NaNAt[0], h.NaNAt[1]))
	case h.BigAt[0] >= 0:
		return fmt.Sprintf("⚠ the grid's values explode: |x| up to %.3g, beyond %.0e first at %s (a random or broken checkpoint, or settings far from its training)",
			h.MaxAbs, float64(ExplodeAt), StepLabel(h.BigAt[0], h.BigAt[1]))
	}
	return ""
}

// layoutHeader writes what pane i shows and where it is.
func (a *canvasArea) layoutHeader(gtx C, u *UI, i int, f *Frame, k, uu int, entry *imgEntry) {
	p := u.snap.Panes[i]
	var title string
	if p.Label != "" {
		title = p.Label + " · "
	}
	title += viewName(u.view, u.snap.Cfg.Prediction)
	if u.view == render.ViewEps || u.view == render.ViewV {
		title += fmt.Sprintf(" ch %d", u.channel)
	}
	if u.view == render.ViewHidden {
		title += fmt.Sprintf(" ch %d,%d,%d", u.hidden[0], u.hidden[1], u.hidden[2])
	}
	if entry != nil && entry.note != "" {
		title += " (" + entry.note + ")"
	}
	var where string
	if f != nil {
		total := p.Settings.Steps
		if n, ok := stepsCount(p.Settings.Steps); ok {
			total = fmt.Sprint(n)
		}
		where = fmt.Sprintf("step %d/%s · update %d/%d", k+1, total, uu, f.M)
		if len(u.snap.Panes) == 1 && !u.demo {
			where += fmt.Sprintf(" · t=%d · σ=%.3f", f.T, f.Sigma)
		}
		if f.Done {
			where += " · final"
		} else if len(u.snap.Panes) > 1 && uu == f.M && !allAtEnd(u.snap) {
			where += " · waits for the others"
		}
	}
	hd := op.Offset(image.Pt(gtx.Dp(12), gtx.Dp(8))).Push(gtx.Ops)
	defer hd.Pop()
	gtx.Constraints.Min = image.Point{}
	gtx.Constraints.Max.X -= gtx.Dp(24)
	if u.demo {
		layout.Flex{Axis: layout.Vertical}.Layout(gtx,
			layout.Rigid(bold(label(u.th, 26, colText, where)).Layout),
			layout.Rigid(label(u.th, 13, colMuted, title).Layout),
		)
		return
	}
	if len(u.snap.Panes) > 1 {
		layout.Flex{Axis: layout.Vertical}.Layout(gtx,
			layout.Rigid(bold(label(u.th, 13, colText, title)).Layout),
			layout.Rigid(func(gtx C) D { return u.checked(gtx, label(u.th, 12, colMuted, where)) }),
		)
		return
	}
	row(gtx, 12, bold(label(u.th, 13, colText, title)).Layout, label(u.th, 12, colMuted, where).Layout,
		func(gtx C) D {
			if p.RunLabel != "" && p.RunLabel != "main" && len(u.snap.Panes) == 1 {
				return label(u.th, 12, colAccent, "run: "+p.RunLabel).Layout(gtx)
			}
			return D{}
		},
		func(gtx C) D {
			if !u.brushOn || i != u.snap.Active {
				return D{}
			}
			return bold(label(u.th, 12, colWarn, "brush: "+u.brush.String()+" (B)")).Layout(gtx)
		})
}

// stepsCount is the number of timesteps a Steps setting asks for ("50",
// "ddim25"), when it is one number.
func stepsCount(steps string) (int, bool) {
	var n int
	s := steps
	if len(s) > 4 && s[:4] == "ddim" {
		s = s[4:]
	}
	if _, err := fmt.Sscan(s, &n); err != nil || n <= 0 || fmt.Sprint(n) != s {
		return 0, false
	}
	return n, true
}

// paneNumbers is a pane's numbers for the shown update: mean |ε̂|, the
// fraction reached and influenced, and the growth curve of this timestep.
func (u *UI) paneNumbers(gtx C, p PaneSnap, k, uu int) D {
	if k >= len(p.Timeline) {
		return D{}
	}
	rec := p.Timeline[k]
	if uu >= len(rec.MeanEps) {
		return D{}
	}
	txt := fmt.Sprintf("|%s| %.3f · reached %.0f%%", predSymbol(u.snap.Cfg.Prediction), rec.MeanEps[uu], 100*rec.Reached[uu])
	if s := rec.Spread[uu]; s == s {
		txt += fmt.Sprintf(" · seed %.0f%%", 100*s)
	}
	return row(gtx, 8,
		func(gtx C) D {
			w, h := gtx.Dp(40), gtx.Dp(14)
			return sparkline(gtx, w, h, rec.M+1, rec.Reached, colGreen, uu)
		},
		label(u.th, 11, colText, txt).Layout,
	)
}

// sparkline draws vals over [0, n) on [0, 1] with a marker at x.
func sparkline(gtx C, w, h, n int, vals []float32, c color.NRGBA, x int) D {
	fillRect(gtx.Ops, colPanelAlt, image.Rect(0, 0, w, h))
	if n < 2 || len(vals) == 0 {
		return D{Size: image.Pt(w, h)}
	}
	var path clip.Path
	path.Begin(gtx.Ops)
	for i, v := range vals {
		pt := f32.Pt(float32(i)/float32(n-1)*float32(w-1), float32(h-1)-min(max(v, 0), 1)*float32(h-2))
		if i == 0 {
			path.MoveTo(pt)
		} else {
			path.LineTo(pt)
		}
	}
	if len(vals) == 1 {
		path.LineTo(f32.Pt(1, float32(h-1)-min(max(vals[0], 0), 1)*float32(h-2)))
	}
	paint.FillShape(gtx.Ops, c, clip.Stroke{Path: path.End(), Width: 1.5}.Op())
	if x >= 0 && x < n {
		xx := int(float32(x) / float32(n-1) * float32(w-1))
		fillRect(gtx.Ops, colorA(colText, 140), image.Rect(xx, 0, xx+1, h))
	}
	return D{Size: image.Pt(w, h)}
}

// layoutDiff draws the difference of two panes' frames in the current view.
func (a *canvasArea) layoutDiff(gtx C, u *UI) D {
	cv := &a.diff
	size := gtx.Constraints.Max
	cfg := u.snap.Cfg
	head, foot := gtx.Dp(36), gtx.Dp(48)
	imgW, imgH := cv.geometry(gtx, size, cfg, head, foot)
	ia, ib := u.diffAB[0], u.diffAB[1]
	n := len(u.snap.Panes)
	if ia >= n || ib >= n {
		ia, ib = 0, 1
	}
	fa, _, _ := u.paneFrame(ia)
	fb, _, _ := u.paneFrame(ib)
	imgRect := image.Rect(int(cv.origin.X), int(cv.origin.Y), int(cv.origin.X+imgW+0.5), int(cv.origin.Y+imgH+0.5))
	defer clip.Rect{Max: size}.Push(gtx.Ops).Pop()
	fillRect(gtx.Ops, colLine, imgRect.Inset(-1))
	var lim float32
	var what string
	if fa != nil && fb != nil {
		e := u.images.get(imgKey{frame: fa, other: fb, view: u.view}, func() (*image.RGBA, error) {
			img, m, err := render.Difference(u.view, source(cfg, fa), source(cfg, fb), 0)
			lim = m
			return img, err
		})
		if lim > 0 {
			e.scale = lim
		}
		lim = e.scale
		if e.err == nil && e.img != nil {
			drawScaled(gtx, e, cv.origin, imgW, imgH)
		} else if e.err != nil {
			centredText(gtx, u, e.err.Error(), imgRect)
		}
	}
	la, lb := u.snap.Panes[ia].Label, u.snap.Panes[ib].Label
	if u.view == render.ViewX0 || u.view == render.ViewXt {
		what = fmt.Sprintf("%s(%s) − %s(%s)", viewName(u.view, u.snap.Cfg.Prediction), la, viewName(u.view, u.snap.Cfg.Prediction), lb)
	} else {
		what = fmt.Sprintf("|cells(%s) − cells(%s)| over C_out and C_h", la, lb)
	}
	st := op.Offset(image.Pt(gtx.Dp(12), gtx.Dp(8))).Push(gtx.Ops)
	bold(label(u.th, 13, colText, "difference · "+what)).Layout(gtx)
	st.Pop()
	lg := op.Offset(image.Pt(gtx.Dp(12), size.Y-foot+gtx.Dp(12))).Push(gtx.Ops)
	if u.view == render.ViewX0 || u.view == render.ViewXt {
		legendBar(gtx, u, &render.Diverging, fmt.Sprintf("−%.3g", lim), fmt.Sprintf("+%.3g (largest |difference|)", lim))
	} else {
		legendBar(gtx, u, &render.Heat, "0", fmt.Sprintf("%.3g (largest distance)", lim))
	}
	lg.Pop()
	return D{Size: size}
}

// drawScaled draws an image entry over the rectangle at origin of size w x h.
func drawScaled(gtx C, e *imgEntry, origin f32.Point, w, h float32) {
	st := op.Affine(f32.Affine2D{}.Scale(f32.Point{}, f32.Pt(w/float32(e.img.Rect.Dx()), h/float32(e.img.Rect.Dy()))).Offset(origin)).Push(gtx.Ops)
	e.op.Add(gtx.Ops)
	paint.PaintOp{}.Add(gtx.Ops)
	st.Pop()
}

// drawGridLines draws the cell borders when cells are large enough to need them.
func (cv *paneCanvas) drawGridLines(gtx C, r image.Rectangle, cfg engine.Config) {
	if cv.cell < 14 {
		return
	}
	gc := color.NRGBA{A: 40}
	for j := 1; j < cfg.GridW; j++ {
		x := int(cv.origin.X + float32(j)*cv.cell)
		fillRect(gtx.Ops, gc, image.Rect(x, r.Min.Y, x+1, r.Max.Y))
	}
	for i := 1; i < cfg.GridH; i++ {
		y := int(cv.origin.Y + float32(i)*cv.cell)
		fillRect(gtx.Ops, gc, image.Rect(r.Min.X, y, r.Max.X, y+1))
	}
}

func centredText(gtx C, u *UI, s string, r image.Rectangle) {
	gtx.Constraints = layout.Constraints{Max: image.Pt(max(r.Dx()-16, 10), r.Dy())}
	m := op.Record(gtx.Ops)
	l := label(u.th, 12, colMuted, s)
	l.MaxLines = 3
	d := l.Layout(gtx)
	call := m.Stop()
	st := op.Offset(image.Pt(r.Min.X+(r.Dx()-d.Size.X)/2, r.Min.Y+(r.Dy()-d.Size.Y)/2)).Push(gtx.Ops)
	call.Add(gtx.Ops)
	st.Pop()
}

func strokeRect(ops *op.Ops, r image.Rectangle, c color.NRGBA, w int) {
	fillRect(ops, c, image.Rect(r.Min.X, r.Min.Y, r.Max.X, r.Min.Y+w))
	fillRect(ops, c, image.Rect(r.Min.X, r.Max.Y-w, r.Max.X, r.Max.Y))
	fillRect(ops, c, image.Rect(r.Min.X, r.Min.Y, r.Min.X+w, r.Max.Y))
	fillRect(ops, c, image.Rect(r.Max.X-w, r.Min.Y, r.Max.X, r.Max.Y))
}

// legend images: one 256x1 strip per colour map, built once.
var (
	legendOnce sync.Once
	legendOps  map[*render.Colormap]paint.ImageOp
)

func legendOp(cm *render.Colormap) paint.ImageOp {
	legendOnce.Do(func() {
		legendOps = map[*render.Colormap]paint.ImageOp{}
		for _, m := range []*render.Colormap{&render.Heat, &render.Diverging} {
			img := image.NewRGBA(image.Rect(0, 0, 256, 1))
			for i, c := range m {
				img.SetRGBA(i, 0, c)
			}
			op := paint.NewImageOp(img)
			op.Filter = paint.FilterLinear
			legendOps[m] = op
		}
	})
	return legendOps[cm]
}

// legendBar is "lo [colour strip] hi".
func legendBar(gtx C, u *UI, cm *render.Colormap, lo, hi string) D {
	w, h := gtx.Dp(120), gtx.Dp(8)
	gtx.Constraints.Min = image.Point{}
	return row(gtx, 6,
		label(u.th, 11, colMuted, lo).Layout,
		func(gtx C) D {
			st := opAffineAt(gtx, 0, 0, float32(w)/256, float32(h))
			op := legendOp(cm)
			op.Add(gtx.Ops)
			paint.PaintOp{}.Add(gtx.Ops)
			st.Pop()
			return D{Size: image.Pt(w, h)}
		},
		label(u.th, 11, colMuted, hi).Layout,
	)
}

// layoutLegend explains the colours of the current view of frame f.
func (u *UI) layoutLegend(gtx C, f *Frame, entry *imgEntry) D {
	if f == nil || f.State == nil {
		return D{}
	}
	cfg := u.snap.Cfg
	gtx.Constraints.Min = image.Point{}
	swatch := func(c color.RGBA, txt string) func(C) D {
		return func(gtx C) D {
			s := gtx.Dp(10)
			return row(gtx, 4, func(gtx C) D {
				fillRect(gtx.Ops, color.NRGBA{R: c.R, G: c.G, B: c.B, A: 255}, image.Rect(0, 0, s, s))
				return D{Size: image.Pt(s, s)}
			}, label(u.th, 11, colMuted, txt).Layout)
		}
	}
	dim := ""
	if u.reach {
		dim = " · dimmed: not reached by the seed"
	}
	small := func(s string) D { return label(u.th, 11, colMuted, s+dim).Layout(gtx) }
	switch u.view {
	case render.ViewEps, render.ViewV:
		ch := cfg.InChannels + u.channel
		if u.view == render.ViewV {
			ch += cfg.InChannels
		}
		l := render.ChannelLimit(f.State, 0, ch)
		return legendBar(gtx, u, &render.Diverging, fmt.Sprintf("%.3g", -l), fmt.Sprintf("+%.3g", l))
	case render.ViewUpdate:
		if len(f.Magnitude) < cfg.Cells() {
			return small("no update yet in this timestep")
		}
		return legendBar(gtx, u, &render.Heat, "0", fmt.Sprintf("%.3g", render.MaxValue(f.Magnitude[:cfg.Cells()])))
	case render.ViewAttention:
		return legendBar(gtx, u, &render.Heat, "0", "largest weight (mean over heads)")
	case render.ViewInfluence:
		if len(f.Influence) != cfg.Cells() {
			return D{}
		}
		mx := render.MaxValue(f.Influence)
		hi := fmt.Sprintf("%.3g", mx)
		if len(u.snap.Panes) == 1 {
			hi += "  (|Δ cell| without the seed, log scale)"
		}
		return row(gtx, 10, swatch(render.UnreachedColor, "exactly 0"),
			func(gtx C) D {
				return legendBar(gtx, u, &render.Heat, fmt.Sprintf("%.0e", float64(mx)*1e-6), hi)
			})
	case render.ViewAlive:
		return row(gtx, 10, swatch(render.UnreachedColor, "not reached"), swatch(render.Heat[89], "reached"),
			swatch(render.Heat[255], "changed most"))
	case render.ViewHidden, render.ViewHiddenPCA:
		return small("R, G, B; each scaled to its largest |value|, grey = 0")
	case render.ViewX0, render.ViewXt:
		decoded := u.view == render.ViewX0 && entry != nil && strings.HasPrefix(entry.note, "VAE decode")
		return small(imageLegend(cfg.Latent, u.snap.Preview != nil, decoded))
	}
	return D{}
}

// imageLegend says how the x₀ and x_t views draw their values.
func imageLegend(latent, preview, decoded bool) string {
	switch {
	case decoded:
		return "RGB decoded by the VAE"
	case latent && preview:
		return "latent channels mapped to RGB by a fixed linear preview (not a VAE decode)"
	case latent:
		return "the first three latent channels as RGB"
	}
	return "black −1 … white +1"
}

// allAtEnd reports whether every pane is at the last update of its timestep.
func allAtEnd(s *Snapshot) bool {
	for _, p := range s.Panes {
		if p.Frame == nil || p.U < p.Frame.M {
			return false
		}
	}
	return true
}
