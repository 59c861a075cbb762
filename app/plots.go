package app

import (
	"fmt"
	"image"
	"image/color"
	"math"

	"gioui.org/f32"
	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/op/clip"
	"gioui.org/op/paint"
	"gioui.org/widget"
	"gioui.org/widget/material"
)

func widgetClickable() widget.Clickable { return widget.Clickable{} }

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

// barChart draws one bar per value around a zero line, scaled by the
// largest |value|; split > 0 draws a divider before index split (ε̂ | v).
func barChart(gtx C, th *material.Theme, title string, vals []float32, split int) D {
	var m float64
	for _, v := range vals {
		m = math.Max(m, math.Abs(float64(v)))
	}
	h := gtx.Dp(44)
	w := gtx.Constraints.Max.X
	return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
		layout.Rigid(func(gtx C) D {
			return layout.Inset{Top: 6, Bottom: 2}.Layout(gtx, label(th, 11, colMuted, fmt.Sprintf("%s  max |x| %.3g", title, m)).Layout)
		}),
		layout.Rigid(func(gtx C) D {
			fillRect(gtx.Ops, colPanelAlt, image.Rect(0, 0, w, h))
			mid := h / 2
			fillRect(gtx.Ops, colLine, image.Rect(0, mid, w, mid+1))
			n := len(vals)
			if n == 0 || m == 0 {
				return D{Size: image.Pt(w, h)}
			}
			bw := float32(w) / float32(n)
			for i, v := range vals {
				x0 := int(float32(i) * bw)
				x1 := max(int(float32(i+1)*bw)-1, x0+1)
				bh := int(float64(v) / m * float64(mid-2))
				c := colAccent
				if v < 0 {
					c = colWarn
				}
				if bh >= 0 {
					fillRect(gtx.Ops, c, image.Rect(x0, mid-bh, x1, mid))
				} else {
					fillRect(gtx.Ops, c, image.Rect(x0, mid+1, x1, mid+1-bh))
				}
			}
			if split > 0 && split < n {
				x := int(float32(split) * bw)
				fillRect(gtx.Ops, colMuted, image.Rect(x-1, 0, x, h))
			}
			return D{Size: image.Pt(w, h)}
		}),
	)
}

// linePlot draws series over [0, n) with their own ranges [0, max]; marker
// (if >= 0) is a vertical line at that x.
type series struct {
	vals []float32
	col  color.NRGBA
	max  float32 // 0: the largest value
}

func linePlot(gtx C, w, h int, n int, ss []series, marker int) D {
	fillRect(gtx.Ops, colPanelAlt, image.Rect(0, 0, w, h))
	if n < 2 {
		return D{Size: image.Pt(w, h)}
	}
	pad := float32(3)
	xAt := func(i int) float32 { return pad + float32(i)/float32(n-1)*(float32(w)-2*pad) }
	for _, s := range ss {
		mx := s.max
		if mx <= 0 {
			for _, v := range s.vals {
				mx = max(mx, v)
			}
		}
		if mx <= 0 || len(s.vals) == 0 {
			continue
		}
		var p clip.Path
		p.Begin(gtx.Ops)
		for i, v := range s.vals {
			pt := f32.Pt(xAt(i), float32(h)-pad-min(max(v/mx, 0), 1)*(float32(h)-2*pad))
			if i == 0 {
				p.MoveTo(pt)
			} else {
				p.LineTo(pt)
			}
		}
		if len(s.vals) == 1 {
			p.LineTo(f32.Pt(xAt(0)+1, float32(h)-pad-min(max(s.vals[0]/mx, 0), 1)*(float32(h)-2*pad)))
		}
		paint.FillShape(gtx.Ops, s.col, clip.Stroke{Path: p.End(), Width: float32(gtx.Dp(1.5))}.Op())
	}
	if marker >= 0 && marker < n {
		x := int(xAt(marker))
		fillRect(gtx.Ops, colorA(colText, 120), image.Rect(x, 0, x+1, h))
	}
	return D{Size: image.Pt(w, h)}
}

func (u *UI) panelPlots(gtx C) D {
	s := u.snap
	p := s.Panes[s.Active]
	_, k, uu := u.paneFrame(s.Active)
	return section(gtx, u.th, "GROWTH AND NOISE", func(gtx C) D {
		if len(p.Timeline) == 0 {
			return D{}
		}
		rec := p.Timeline[min(k, len(p.Timeline)-1)]
		w := gtx.Constraints.Max.X
		h := gtx.Dp(56)
		var sigma []float32
		for _, r := range p.Timeline {
			sigma = append(sigma, float32(r.Sigma))
		}
		steps := len(p.Timeline)
		if !p.Timeline[len(p.Timeline)-1].Last().Done {
			if n, err := fmt.Sscan(p.Settings.Steps, &steps); n != 1 || err != nil || steps < len(p.Timeline) {
				steps = len(p.Timeline)
			}
		}
		lastMag, lastReach := float32(0), float32(0)
		if uu < len(rec.MeanMag) {
			lastMag, lastReach = rec.MeanMag[uu], rec.Reached[uu]
		}
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
			layout.Rigid(func(gtx C) D {
				return layout.Inset{Bottom: 3}.Layout(gtx, func(gtx C) D {
					return row(gtx, 10,
						label(u.th, 11, colAccent, fmt.Sprintf("mean |update| %.3g", lastMag)).Layout,
						label(u.th, 11, colGreen, fmt.Sprintf("reached %.0f%%", 100*lastReach)).Layout,
						label(u.th, 11, colMuted, fmt.Sprintf("this step, %d updates", rec.M)).Layout,
					)
				})
			}),
			layout.Rigid(func(gtx C) D {
				return linePlot(gtx, w, h, rec.M+1, []series{
					{vals: rec.MeanMag, col: colAccent},
					{vals: rec.Reached, col: colGreen, max: 1},
				}, uu)
			}),
			layout.Rigid(func(gtx C) D {
				return layout.Inset{Top: 6, Bottom: 3}.Layout(gtx,
					label(u.th, 11, colWarn, fmt.Sprintf("noise level σ over the run: %.3f at step %d", rec.Sigma, k+1)).Layout)
			}),
			layout.Rigid(func(gtx C) D {
				return linePlot(gtx, w, gtx.Dp(40), steps, []series{{vals: sigma, col: colWarn, max: 1}}, k)
			}),
		)
	})
}
