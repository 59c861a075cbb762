package app

import (
	"fmt"
	"image"
	"image/color"
	"math"

	"gioui.org/f32"
	"gioui.org/io/event"
	"gioui.org/io/pointer"
	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/op/clip"
	"gioui.org/op/paint"
	"gioui.org/text"
	"gioui.org/unit"
)

func fmtVec(v []float32) string {
	s := "("
	for i, x := range v {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%.2f", x)
	}
	return s + ")"
}

func norm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

// drawImage draws a cached image at an integer scale with nearest sampling.
func drawImage(gtx C, e *imgEntry, scale int) D {
	if e == nil || e.img == nil {
		return D{}
	}
	sz := e.img.Rect.Size().Mul(scale)
	st := op.Affine(f32.Affine2D{}.Scale(f32.Point{}, f32.Pt(float32(scale), float32(scale)))).Push(gtx.Ops)
	e.op.Add(gtx.Ops)
	paint.PaintOp{}.Add(gtx.Ops)
	st.Pop()
	return D{Size: sz}
}

// series is one line of a plot.
type series struct {
	name string
	vals []float32
	col  color.NRGBA
}

// plotSpec describes a plot: n x positions, the y range [0, yMax], how the
// axes write their values, and a marker (the shown position; -1: none).
type plotSpec struct {
	name   string // names the plot's area (screen readers, tests)
	title  string
	n      int
	xName  string
	xLabel func(i int) string
	yMax   float32
	yLabel func(v float32) string
	series []series
	marker int
}

// plot draws a line plot with labelled axes and tells the values under the
// pointer.
type plot struct {
	hover  int // x position under the pointer, when hovering
	on     bool
	n      int
	x0, pw int // the plotting area's left edge and width, in the last frame
}

func (p *plot) update(gtx C) {
	for {
		ev, ok := gtx.Event(pointer.Filter{Target: p, Kinds: pointer.Move | pointer.Enter | pointer.Leave | pointer.Cancel})
		if !ok {
			break
		}
		e, ok := ev.(pointer.Event)
		if !ok {
			continue
		}
		p.on = (e.Kind == pointer.Move || e.Kind == pointer.Enter) && p.n > 1 && p.pw > 0
		if p.on {
			p.hover = min(max(int(math.Round(float64(e.Position.X/float32(p.pw)*float32(p.n-1)))), 0), p.n-1)
		}
	}
}

func (p *plot) layout(gtx C, u *UI, sp plotSpec, h int) D {
	p.update(gtx)
	p.n = sp.n
	hover := -1
	if p.on && p.hover < sp.n {
		hover = p.hover
	}
	w := gtx.Constraints.Max.X
	gutter := gtx.Dp(40)
	head := sp.title
	if i := hover; i >= 0 {
		head = sp.xLabel(i) + ":"
		for _, s := range sp.series {
			if i < len(s.vals) && s.vals[i] == s.vals[i] {
				head += fmt.Sprintf("  %s %s", s.name, sp.yLabel(s.vals[i]))
			}
		}
	}
	return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
		layout.Rigid(func(gtx C) D {
			return layout.Inset{Top: 4, Bottom: 2}.Layout(gtx, func(gtx C) D { return u.checked(gtx, label(u.th, 11, colMuted, head)) })
		}),
		layout.Rigid(func(gtx C) D {
			pw := w - gutter
			p.x0, p.pw = gutter, pw
			// y axis: its end values
			top := op.Offset(image.Pt(0, -2)).Push(gtx.Ops)
			label(u.th, 10, colMuted, sp.yLabel(sp.yMax)).Layout(gtx)
			top.Pop()
			bot := op.Offset(image.Pt(0, h-gtx.Dp(12))).Push(gtx.Ops)
			label(u.th, 10, colMuted, sp.yLabel(0)).Layout(gtx)
			bot.Pop()
			st := op.Offset(image.Pt(gutter, 0)).Push(gtx.Ops)
			linePlot(gtx, pw, h, sp, hover)
			area := clip.Rect{Max: image.Pt(pw, h)}.Push(gtx.Ops)
			event.Op(gtx.Ops, p)
			describe(gtx, image.Pt(pw, h), "plot "+sp.name)
			area.Pop()
			st.Pop()
			return D{Size: image.Pt(w, h)}
		}),
		layout.Rigid(func(gtx C) D {
			// x axis: its first and last position and its name
			if sp.n < 1 {
				return D{}
			}
			return layout.Inset{Left: unit.Dp(float32(gutter) / gtx.Metric.PxPerDp)}.Layout(gtx, func(gtx C) D {
				return layout.Flex{}.Layout(gtx,
					layout.Rigid(label(u.th, 10, colMuted, sp.xLabel(0)).Layout),
					layout.Flexed(1, func(gtx C) D {
						l := label(u.th, 10, colMuted, sp.xName)
						l.Alignment = text.Middle
						gtx.Constraints.Min.X = gtx.Constraints.Max.X
						return l.Layout(gtx)
					}),
					layout.Rigid(label(u.th, 10, colMuted, sp.xLabel(sp.n-1)).Layout),
				)
			})
		}),
	)
}

// linePlot draws the series of sp over [0, sp.n) on [0, sp.yMax] with a
// marker line at sp.marker and a dot at the hovered position.
func linePlot(gtx C, w, h int, sp plotSpec, hover int) {
	fillRect(gtx.Ops, colPanelAlt, image.Rect(0, 0, w, h))
	n := sp.n
	if n < 2 || !(sp.yMax > 0) {
		return
	}
	pad := float32(3)
	xAt := func(i int) float32 { return pad + float32(i)/float32(n-1)*(float32(w)-2*pad) }
	yAt := func(v float32) float32 { return float32(h) - pad - min(max(v/sp.yMax, 0), 1)*(float32(h)-2*pad) }
	for _, s := range sp.series {
		var p clip.Path
		p.Begin(gtx.Ops)
		started := false
		for i, v := range s.vals {
			if v != v { // NaN: not measured there
				started = false
				continue
			}
			pt := f32.Pt(xAt(i), yAt(v))
			if !started {
				p.MoveTo(pt)
				p.LineTo(pt.Add(f32.Pt(0.5, 0)))
				started = true
			} else {
				p.LineTo(pt)
			}
		}
		paint.FillShape(gtx.Ops, s.col, clip.Stroke{Path: p.End(), Width: float32(gtx.Dp(1.5))}.Op())
	}
	if m := sp.marker; m >= 0 && m < n {
		x := int(xAt(m))
		fillRect(gtx.Ops, colorA(colText, 120), image.Rect(x, 0, x+1, h))
	}
	if hover >= 0 && hover < n {
		x := int(xAt(hover))
		fillRect(gtx.Ops, colorA(colAccent, 160), image.Rect(x, 0, x+1, h))
	}
}

// plotsPanel shows the growth inside the shown timestep and the noise over
// the run, with axes, and the values under the pointer.
type plotsPanel struct {
	growth, update, noise plot
}

func (p *plotsPanel) Layout(gtx C, u *UI) D {
	s := u.snap
	ps := s.Panes[s.Active]
	_, k, uu := u.paneFrame(s.Active)
	return section(gtx, u.th, "GROWTH AND NOISE", func(gtx C) D {
		if len(ps.Timeline) == 0 {
			return D{}
		}
		rec := ps.Timeline[min(k, len(ps.Timeline)-1)]
		steps := len(ps.Timeline)
		if n, ok := stepsCount(ps.Settings.Steps); ok && n > steps {
			steps = n
		}
		pct := func(v float32) string { return fmt.Sprintf("%.0f%%", 100*v) }
		upd := func(i int) string { return fmt.Sprintf("update %d", i) }
		var sigma, epsEnd []float32
		for _, r := range ps.Timeline {
			sigma = append(sigma, float32(r.Sigma))
			epsEnd = append(epsEnd, r.MeanEps[len(r.MeanEps)-1])
		}
		magMax := float32(0)
		for _, v := range rec.MeanMag {
			magMax = max(magMax, v)
		}
		epsMax := float32(1)
		for _, v := range epsEnd {
			epsMax = max(epsMax, v)
		}
		h := gtx.Dp(46)
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
			layout.Rigid(func(gtx C) D {
				return p.growth.layout(gtx, u, plotSpec{
					name:  "growth",
					title: fmt.Sprintf("step %d: reached (green), seed influence (blue)", k+1),
					n:     rec.M + 1, xName: "update", xLabel: upd, yMax: 1, yLabel: pct, marker: uu,
					series: []series{{"reached", rec.Reached, colGreen}, {"seed influence", rec.Spread, colAccent}},
				}, h)
			}),
			layout.Rigid(func(gtx C) D {
				return p.update.layout(gtx, u, plotSpec{
					name:  "update",
					title: fmt.Sprintf("step %d: mean |update| per cell", k+1),
					n:     rec.M + 1, xName: "update", xLabel: upd, yMax: magMax, yLabel: func(v float32) string { return fmt.Sprintf("%.3g", v) },
					marker: uu, series: []series{{"mean |update|", rec.MeanMag, colWarn}},
				}, h)
			}),
			layout.Rigid(func(gtx C) D {
				return p.noise.layout(gtx, u, plotSpec{
					name:  "noise",
					title: fmt.Sprintf("run: σ (amber), mean |%s| at step end (blue)", predSymbol(u.snap.Cfg.Prediction)),
					n:     steps, xName: "timestep", xLabel: func(i int) string { return fmt.Sprintf("step %d", i+1) },
					yMax: epsMax, yLabel: func(v float32) string { return fmt.Sprintf("%.2f", v) }, marker: k,
					series: []series{{"σ", sigma, colWarn}, {"mean |" + predSymbol(u.snap.Cfg.Prediction) + "|", epsEnd, colAccent}},
				}, h)
			}),
		)
	})
}
