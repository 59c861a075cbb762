package app

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"sync"

	"gioui.org/f32"
	"gioui.org/io/event"
	"gioui.org/io/key"
	"gioui.org/io/pointer"
	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/op/clip"
	"gioui.org/op/paint"

	"geca/engine"
	"geca/render"
)

// canvas is the state of one pane's grid view: zoom, pan and the pointer.
type canvas struct {
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
}

func (c *canvas) cellAt(p f32.Point) (int, int, bool) {
	if c.cell <= 0 {
		return 0, 0, false
	}
	j := int(math.Floor(float64((p.X - c.origin.X) / c.cell)))
	i := int(math.Floor(float64((p.Y - c.origin.Y) / c.cell)))
	return i, j, i >= 0 && j >= 0 && i < c.gh && j < c.gw
}

// source builds the render input of a frame.
func source(cfg engine.Config, f *Frame) *render.Source {
	return &render.Source{Cfg: cfg, State: f.State, Xt: f.Xt, X0: f.X0, Magnitude: f.Magnitude, Attn: f.Attn,
		AttnCell: image.Pt(f.AttnCell[1], f.AttnCell[0]), Reached: f.Reached}
}

// paneFrame is the frame pane i shows: the local scrub position while a
// timeline slider is dragged, else the runner's playhead.
func (u *UI) paneFrame(i int) (*Frame, int, int) {
	p := u.snap.Panes[i]
	if (u.timeDrag || u.updDrag) && len(p.Timeline) > 0 {
		k := max(0, min(u.localK, len(p.Timeline)-1))
		rec := p.Timeline[k]
		uu := max(0, min(u.localU, len(rec.Frames)-1))
		if f := rec.Frames[uu]; f != nil {
			return f, k, uu
		}
	}
	return p.Frame, p.K, p.U
}

func (u *UI) layoutCanvases(gtx C) D {
	n := len(u.snap.Panes)
	for len(u.canvases) < n {
		u.canvases = append(u.canvases, &canvas{zoom: 1})
	}
	size := gtx.Constraints.Max
	w := (size.X - (n - 1)) / n
	x := 0
	for i := 0; i < n; i++ {
		if i > 0 {
			fillRect(gtx.Ops, colLine, image.Rect(x, 0, x+1, size.Y))
			x++
		}
		pw := w
		if i == n-1 {
			pw = size.X - x
		}
		u.canvases[i].screen = image.Pt(x, u.topH)
		st := op.Offset(image.Pt(x, 0)).Push(gtx.Ops)
		pg := gtx
		pg.Constraints = layout.Exact(image.Pt(pw, size.Y))
		u.layoutPane(pg, i)
		st.Pop()
		x += pw
	}
	return D{Size: size}
}

// CellCentre returns the window position of the centre of cell (i, j) of
// pane p as drawn in the last frame (for tests and scripted drivers).
func (u *UI) CellCentre(p, i, j int) image.Point {
	cv := u.canvases[p]
	return image.Pt(cv.screen.X+int(cv.origin.X+(float32(j)+0.5)*cv.cell), cv.screen.Y+int(cv.origin.Y+(float32(i)+0.5)*cv.cell))
}

// viewImage renders the current view of frame f (cached), or explains why not.
func (u *UI) viewImage(f *Frame) (*imgEntry, string) {
	if f == nil {
		return nil, "no frame"
	}
	cfg := u.snap.Cfg
	if u.view == render.ViewAttention && len(f.Attn) == 0 {
		return nil, "click a cell to observe its attention (shown from the next update)"
	}
	k := imgKey{frame: f, view: u.view, channel: u.channel, hidden: u.hidden}
	if u.view == render.ViewX0 && u.decoded && u.snap.Decode != nil {
		if img := u.decodes.get(f, cfg, u.snap.Decode); img != nil {
			k.decoded = true
			return u.images.put(k, img, nil), ""
		}
	}
	return u.images.get(k, func() (*image.RGBA, error) {
		return render.Render(u.view, source(cfg, f), render.Options{Channel: u.channel, Hidden: u.hidden, Preview: u.snap.Preview})
	}), ""
}

func (u *UI) layoutPane(gtx C, i int) D {
	cv := u.canvases[i]
	size := gtx.Constraints.Max
	f, k, uu := u.paneFrame(i)
	cfg := u.snap.Cfg
	cv.gw, cv.gh = cfg.GridW, cfg.GridH
	p := u.snap.Panes[i]

	// geometry: fit the grid with a margin, integer scale when it fits
	head, foot := gtx.Dp(34), gtx.Dp(30)
	availW, availH := float32(size.X)-float32(gtx.Dp(24)), float32(size.Y-head-foot)
	fit := min(availW/float32(cfg.GridW), availH/float32(cfg.GridH))
	if fit >= 2 {
		fit = float32(math.Floor(float64(fit)))
	}
	cv.cell = max(fit*cv.zoom, 0.5)
	imgW, imgH := cv.cell*float32(cfg.GridW), cv.cell*float32(cfg.GridH)
	cv.origin = f32.Pt((float32(size.X)-imgW)/2+cv.pan.X, float32(head)+(float32(size.Y-head-foot)-imgH)/2+cv.pan.Y)

	defer clip.Rect{Max: size}.Push(gtx.Ops).Pop()
	u.canvasEvents(gtx, cv, i)
	event.Op(gtx.Ops, cv)
	cursor := pointer.CursorCrosshair
	if u.brushOn {
		cursor = pointer.CursorPointer
	} else if cv.pressed && cv.moved {
		cursor = pointer.CursorGrabbing
	}
	cursor.Add(gtx.Ops)

	entry, why := u.viewImage(f)
	imgRect := image.Rect(int(cv.origin.X), int(cv.origin.Y), int(cv.origin.X+imgW+0.5), int(cv.origin.Y+imgH+0.5))
	// a frame around the grid
	fillRect(gtx.Ops, colLine, imgRect.Inset(-1))
	if entry != nil && entry.err == nil {
		st := op.Affine(f32.Affine2D{}.Scale(f32.Point{}, f32.Pt(cv.cell*float32(cfg.GridW)/float32(entry.img.Rect.Dx()),
			cv.cell*float32(cfg.GridH)/float32(entry.img.Rect.Dy()))).Offset(cv.origin)).Push(gtx.Ops)
		entry.op.Add(gtx.Ops)
		paint.PaintOp{}.Add(gtx.Ops)
		st.Pop()
	} else {
		fillRect(gtx.Ops, colPanel, imgRect)
		msg := why
		if entry != nil && entry.err != nil {
			msg = entry.err.Error()
		}
		u.centredText(gtx, msg, imgRect)
	}
	// grid lines when cells are large enough to need them
	if cv.cell >= 14 {
		gc := color.NRGBA{A: 40}
		for j := 1; j < cfg.GridW; j++ {
			x := int(cv.origin.X + float32(j)*cv.cell)
			fillRect(gtx.Ops, gc, image.Rect(x, imgRect.Min.Y, x+1, imgRect.Max.Y))
		}
		for r := 1; r < cfg.GridH; r++ {
			y := int(cv.origin.Y + float32(r)*cv.cell)
			fillRect(gtx.Ops, gc, image.Rect(imgRect.Min.X, y, imgRect.Max.X, y+1))
		}
	}
	cellRect := func(ci, cj int) image.Rectangle {
		x0, y0 := cv.origin.X+float32(cj)*cv.cell, cv.origin.Y+float32(ci)*cv.cell
		return image.Rect(int(x0), int(y0), int(x0+cv.cell+0.5), int(y0+cv.cell+0.5))
	}
	if sel := u.snap.Selected; sel[0] >= 0 {
		strokeRect(gtx.Ops, cellRect(sel[0], sel[1]).Inset(-1), colAccent, max(gtx.Dp(2), 1))
	}
	if u.hoverPane == i && u.hoverCell[0] >= 0 {
		if u.brushOn {
			r := float32(u.brushRadius()) * cv.cell
			c := f32.Pt(cv.origin.X+(float32(u.hoverCell[1])+0.5)*cv.cell, cv.origin.Y+(float32(u.hoverCell[0])+0.5)*cv.cell)
			paint.FillShape(gtx.Ops, color.NRGBA{R: 255, G: 255, B: 255, A: 200},
				clip.Stroke{Path: clip.Ellipse{Min: c.Sub(f32.Pt(r, r)).Round(), Max: c.Add(f32.Pt(r, r)).Round()}.Path(gtx.Ops), Width: 1.5}.Op())
		} else {
			strokeRect(gtx.Ops, cellRect(u.hoverCell[0], u.hoverCell[1]), color.NRGBA{R: 255, G: 255, B: 255, A: 170}, 1)
		}
	}

	// header and footer bands stay readable over a zoomed grid
	fillRect(gtx.Ops, colorA(colCanvas, 235), image.Rect(0, 0, size.X, head-gtx.Dp(4)))
	fillRect(gtx.Ops, colorA(colCanvas, 235), image.Rect(0, size.Y-foot+gtx.Dp(4), size.X, size.Y))
	// header: what this pane shows and where it is
	var title string
	if p.Label != "" {
		title = p.Label + " · "
	}
	title += viewName(u.view)
	if u.view == render.ViewEps || u.view == render.ViewV {
		title += fmt.Sprintf(" ch %d", u.channel)
	}
	if u.view == render.ViewHidden {
		title += fmt.Sprintf(" ch %d,%d,%d", u.hidden[0], u.hidden[1], u.hidden[2])
	}
	if u.view == render.ViewX0 && u.decoded && u.snap.Decode != nil {
		if entry != nil && entry.decoded {
			title += " (VAE)"
		} else {
			title += " (preview; decoding…)"
		}
	}
	var where string
	if f != nil {
		steps := len(p.Timeline)
		if rec := p.Timeline[len(p.Timeline)-1]; !rec.Last().Done {
			steps = -1
		}
		total := p.Settings.Steps
		if steps > 0 {
			total = fmt.Sprint(steps)
		}
		where = fmt.Sprintf("step %d/%s · t=%d · update %d/%d · σ=%.3f", k+1, total, f.T, uu, f.M, f.Sigma)
		if len(u.snap.Panes) > 1 {
			where = fmt.Sprintf("step %d/%s · update %d/%d", k+1, total, uu, f.M)
		}
		if f.Done {
			where += " · final"
		}
	}
	hd := op.Offset(image.Pt(gtx.Dp(12), gtx.Dp(8))).Push(gtx.Ops)
	gtx.Constraints.Min = image.Point{}
	row(gtx, 12, bold(label(u.th, 13, colText, title)).Layout, label(u.th, 12, colMuted, where).Layout,
		func(gtx C) D {
			if p.RunLabel != "" && p.RunLabel != "main" && len(u.snap.Panes) == 1 {
				return label(u.th, 12, colAccent, "branch: "+p.RunLabel).Layout(gtx)
			}
			return D{}
		})
	hd.Pop()
	lg := op.Offset(image.Pt(gtx.Dp(12), size.Y-gtx.Dp(21))).Push(gtx.Ops)
	u.layoutLegend(gtx, f)
	lg.Pop()
	if u.brushOn && i == u.snap.Active {
		mode := "erase"
		if u.brush == BrushPerturb {
			mode = "perturb"
		}
		bd := op.Offset(image.Pt(gtx.Dp(12), size.Y-gtx.Dp(40))).Push(gtx.Ops)
		bold(label(u.th, 12, colWarn, "damage brush: "+mode+" (B to change, drag on the grid)")).Layout(gtx)
		bd.Pop()
	}
	return D{Size: size}
}

func (u *UI) centredText(gtx C, s string, r image.Rectangle) {
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

// canvasEvents handles the pointer on pane i: hover, click to select, drag
// to pan (or to paint with the brush), wheel to zoom about the pointer.
func (u *UI) canvasEvents(gtx C, cv *canvas, i int) {
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
			u.hoverPane = i
			if inside {
				u.hoverCell = [2]int{ci, cj}
			} else {
				u.hoverCell = [2]int{-1, -1}
			}
		case pointer.Leave, pointer.Cancel:
			if u.hoverPane == i {
				u.hoverCell = [2]int{-1, -1}
			}
			cv.pressed = false
		case pointer.Press:
			gtx.Execute(key.FocusCmd{Tag: u}) // take focus from any editor
			cv.pressed, cv.moved, cv.pressPos, cv.lastPos = true, false, e.Position, e.Position
			cv.stroke = cv.stroke[:0]
			if i != u.snap.Active {
				u.send(SetActive{Pane: i})
			}
			if u.brushOn && inside {
				cv.stroke = append(cv.stroke, [2]int{ci, cj})
			}
		case pointer.Drag:
			if !cv.pressed {
				continue
			}
			if d := e.Position.Sub(cv.pressPos); d.X*d.X+d.Y*d.Y > 16 {
				cv.moved = true
			}
			u.hoverPane = i
			if inside {
				u.hoverCell = [2]int{ci, cj}
			}
			if u.brushOn {
				if inside && (len(cv.stroke) == 0 || cv.stroke[len(cv.stroke)-1] != [2]int{ci, cj}) {
					cv.stroke = append(cv.stroke, [2]int{ci, cj})
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
			if u.brushOn {
				if len(cv.stroke) > 0 {
					u.send(Stroke{Cells: append([][2]int(nil), cv.stroke...), Radius: u.brushRadius(), Mode: u.brush})
				}
			} else if !cv.moved && inside {
				u.send(Select{I: ci, J: cj})
			}
		case pointer.Scroll:
			f := float32(math.Pow(1.0015, float64(-e.Scroll.Y)))
			nz := min(max(cv.zoom*f, 0.25), 32)
			// keep the point under the pointer still
			ratio := nz / cv.zoom
			centre := cv.origin
			off := e.Position.Sub(centre)
			cv.pan = cv.pan.Add(off.Sub(off.Mul(ratio)))
			cv.zoom = nz
		}
	}
}

// imgKey names one rendered view of one frame.
type imgKey struct {
	frame   *Frame
	view    render.View
	channel int
	hidden  [3]int
	decoded bool
}

type imgEntry struct {
	img     *image.RGBA
	op      paint.ImageOp
	err     error
	used    bool
	decoded bool
}

// imageCache keeps the images drawn in the last frames; an entry not used
// during a frame is dropped at its end.
type imageCache struct {
	m map[imgKey]*imgEntry
}

func newImageCache() *imageCache { return &imageCache{m: map[imgKey]*imgEntry{}} }

func (c *imageCache) beginFrame() {
	for _, e := range c.m {
		e.used = false
	}
}

func (c *imageCache) endFrame() {
	for k, e := range c.m {
		if !e.used {
			delete(c.m, k)
		}
	}
}

func newEntry(img *image.RGBA, err error) *imgEntry {
	e := &imgEntry{img: img, err: err, used: true}
	if img != nil {
		e.op = paint.NewImageOp(img)
		e.op.Filter = paint.FilterNearest
	}
	return e
}

func (c *imageCache) get(k imgKey, make func() (*image.RGBA, error)) *imgEntry {
	if e, ok := c.m[k]; ok {
		e.used = true
		return e
	}
	img, err := make()
	e := newEntry(img, err)
	c.m[k] = e
	return e
}

func (c *imageCache) put(k imgKey, img *image.RGBA, err error) *imgEntry {
	if e, ok := c.m[k]; ok && e.img == img {
		e.used = true
		return e
	}
	e := newEntry(img, err)
	e.decoded = k.decoded
	c.m[k] = e
	return e
}

// decodeCache runs the full VAE decode of x0 off the UI goroutine, one frame
// at a time (the newest request wins), and keeps the last results.
type decodeCache struct {
	mu         sync.Mutex
	done       map[*Frame]*image.RGBA
	order      []*Frame
	running    *Frame
	want       *Frame
	invalidate func()
}

func newDecodeCache(inv func()) *decodeCache {
	return &decodeCache{done: map[*Frame]*image.RGBA{}, invalidate: inv}
}

func (d *decodeCache) pending() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running != nil
}

func (d *decodeCache) get(f *Frame, cfg engine.Config, decode func([]float32, int, int) ([]float32, error)) *image.RGBA {
	d.mu.Lock()
	defer d.mu.Unlock()
	if img, ok := d.done[f]; ok {
		return img
	}
	d.want = f
	if d.running == nil {
		d.start(f, cfg, decode)
	}
	return nil
}

func (d *decodeCache) start(f *Frame, cfg engine.Config, decode func([]float32, int, int) ([]float32, error)) {
	d.running = f
	go func() {
		n := cfg.InChannels * cfg.Cells()
		var img *image.RGBA
		if len(f.X0) >= n {
			if rgb, err := decode(f.X0[:n], cfg.GridH, cfg.GridW); err == nil && len(rgb)%3 == 0 {
				side := int(math.Sqrt(float64(len(rgb)/3) / float64(cfg.GridH*cfg.GridW)))
				if side > 0 && len(rgb) == 3*side*side*cfg.Cells() {
					img = render.PixelImage(rgb, 3, cfg.GridH*side, cfg.GridW*side, 0)
				}
			}
		}
		d.mu.Lock()
		d.done[f] = img
		d.order = append(d.order, f)
		if len(d.order) > 64 {
			delete(d.done, d.order[0])
			d.order = d.order[1:]
		}
		d.running = nil
		if next := d.want; next != nil && next != f {
			if _, ok := d.done[next]; !ok {
				d.start(next, cfg, decode)
			}
		}
		d.mu.Unlock()
		if d.invalidate != nil {
			d.invalidate()
		}
	}()
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

// layoutLegend explains the colours of the current view of frame f.
func (u *UI) layoutLegend(gtx C, f *Frame) D {
	if f == nil || f.State == nil {
		return D{}
	}
	cfg := u.snap.Cfg
	gtx.Constraints.Min = image.Point{}
	bar := func(cm *render.Colormap, lo, hi string) D {
		w, h := gtx.Dp(120), gtx.Dp(8)
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
	swatch := func(c color.RGBA, txt string) layout.Widget {
		return func(gtx C) D {
			s := gtx.Dp(10)
			return row(gtx, 4, func(gtx C) D {
				fillRect(gtx.Ops, color.NRGBA{R: c.R, G: c.G, B: c.B, A: 255}, image.Rect(0, 0, s, s))
				return D{Size: image.Pt(s, s)}
			}, label(u.th, 11, colMuted, txt).Layout)
		}
	}
	switch u.view {
	case render.ViewEps, render.ViewV:
		ch := cfg.InChannels + u.channel
		if u.view == render.ViewV {
			ch += cfg.InChannels
		}
		l := render.ChannelLimit(f.State, 0, ch)
		return bar(&render.Diverging, fmt.Sprintf("%.3g", -l), fmt.Sprintf("+%.3g", l))
	case render.ViewUpdate:
		if len(f.Magnitude) < cfg.Cells() {
			return label(u.th, 11, colMuted, "no update yet in this timestep").Layout(gtx)
		}
		return bar(&render.Heat, "0", fmt.Sprintf("%.3g", render.MaxValue(f.Magnitude[:cfg.Cells()])))
	case render.ViewAttention:
		return bar(&render.Heat, "0", "largest weight (mean over heads)")
	case render.ViewAlive:
		return row(gtx, 12, swatch(render.UnreachedColor, "not reached"), swatch(render.Heat[89], "reached from the seed"),
			swatch(render.Heat[255], "changed most by the last update"))
	case render.ViewHidden, render.ViewHiddenPCA:
		return label(u.th, 11, colMuted, "R, G, B; each scaled to its largest |value|, grey = 0").Layout(gtx)
	case render.ViewX0, render.ViewXt:
		if cfg.Latent {
			return label(u.th, 11, colMuted, "latent shown through the 4x3 RGB preview").Layout(gtx)
		}
		return label(u.th, 11, colMuted, "black −1 … white +1").Layout(gtx)
	}
	return D{}
}
