package app

import (
	"fmt"
	"image"

	"gioui.org/layout"
	"gioui.org/op/clip"
	"gioui.org/op/paint"
	"gioui.org/text"
	"gioui.org/widget"
	"gioui.org/widget/material"

	"geca/render"
)

// timelinePanel scrubs the history: a timestep slider, an update slider
// and a film strip of x₀ thumbnails. Unlike the settings sliders it acts
// while dragged: the panes show the recorded frame under the knob at once.
type timelinePanel struct {
	timeSlider, updSlider widget.Float
	timeDrag, updDrag     bool
	strip                 layout.List
	stripClicks           []widget.Clickable
}

func (t *timelinePanel) Update(gtx C, l *look) []Cmd {
	s := l.snap
	p := s.Panes[s.Active]
	n := len(p.Timeline)
	if n == 0 {
		return nil
	}
	var cmds []Cmd
	for i := range t.stripClicks {
		if t.stripClicks[i].Clicked(gtx) && i < n {
			cmds = append(cmds, Seek{K: i, U: len(p.Timeline[i].Frames) - 1})
		}
	}
	if t.timeSlider.Update(gtx) || t.timeSlider.Dragging() {
		k := int(t.timeSlider.Value*float32(n-1) + 0.5)
		if !t.timeDrag || k != l.scrub.k {
			l.scrub = scrub{on: true, k: k, u: len(p.Timeline[k].Frames) - 1}
			cmds = append(cmds, Seek{K: l.scrub.k, U: l.scrub.u})
		}
		t.timeDrag = true
	} else {
		t.timeDrag = false
	}
	k := p.K
	if t.timeDrag {
		k = l.scrub.k
	}
	rec := p.Timeline[min(k, n-1)]
	if t.updSlider.Update(gtx) || t.updSlider.Dragging() {
		uu := min(int(t.updSlider.Value*float32(max(rec.M, 1))+0.5), len(rec.Frames)-1)
		if !t.updDrag || uu != l.scrub.u || l.scrub.k != k {
			l.scrub = scrub{on: true, k: k, u: uu}
			cmds = append(cmds, Seek{K: k, U: uu})
		}
		t.updDrag = true
	} else {
		t.updDrag = false
	}
	l.scrub.on = t.timeDrag || t.updDrag
	if !t.timeDrag {
		t.timeSlider.Value = float32(p.K) / float32(max(n-1, 1))
	}
	if !t.updDrag {
		t.updSlider.Value = float32(p.U) / float32(max(rec.M, 1))
	}
	return cmds
}

func (t *timelinePanel) Layout(gtx C, u *UI) D {
	s := u.snap
	p := s.Panes[s.Active]
	_, k, uu := u.paneFrame(s.Active)
	n := len(p.Timeline)
	for len(t.stripClicks) < n {
		t.stripClicks = append(t.stripClicks, widget.Clickable{})
	}
	t.strip.Axis = layout.Horizontal
	return withBg(gtx, colPanel, func(gtx C) D {
		gtx.Constraints.Min.X = gtx.Constraints.Max.X
		fillRect(gtx.Ops, colLine, image.Rect(0, 0, gtx.Constraints.Max.X, 1))
		return layout.Inset{Left: 12, Right: 12, Top: 6, Bottom: 6}.Layout(gtx, func(gtx C) D {
			rec := p.Timeline[min(k, n-1)]
			total := fmt.Sprint(n)
			if c, ok := stepsCount(p.Settings.Steps); ok {
				total = fmt.Sprint(c)
			}
			return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
				layout.Rigid(func(gtx C) D {
					return scrubRow(gtx, u.th, "timestep", &t.timeSlider, fmt.Sprintf("%d/%s", k+1, total))
				}),
				layout.Rigid(func(gtx C) D {
					return scrubRow(gtx, u.th, "update", &t.updSlider, fmt.Sprintf("%d/%d", uu, rec.M))
				}),
				layout.Rigid(layout.Spacer{Height: 4}.Layout),
				layout.Rigid(func(gtx C) D { return t.layoutStrip(gtx, u, p, k) }),
			)
		})
	})
}

// scrubRow is "name [slider] value".
func scrubRow(gtx C, th *material.Theme, name string, f *widget.Float, value string) D {
	return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
		layout.Rigid(func(gtx C) D {
			gtx.Constraints.Min.X = gtx.Dp(74)
			return label(th, 12, colMuted, name).Layout(gtx)
		}),
		layout.Flexed(1, func(gtx C) D {
			s := material.Slider(th, f)
			s.Color = colAccent
			return s.Layout(gtx)
		}),
		layout.Rigid(func(gtx C) D {
			gtx.Constraints.Min.X = gtx.Dp(64)
			l := label(th, 12, colText, value)
			l.Alignment = text.End
			return l.Layout(gtx)
		}),
	)
}

// layoutStrip is the film strip: the x₀ of the last recorded frame of every
// timestep; a click jumps there.
func (t *timelinePanel) layoutStrip(gtx C, u *UI, p PaneSnap, k int) D {
	th := gtx.Dp(36)
	gtx.Constraints.Max.Y = th + gtx.Dp(4)
	n := len(p.Timeline)
	// keep the current step in view
	if k < t.strip.Position.First || k >= t.strip.Position.First+max(t.strip.Position.Count, 1) {
		t.strip.Position.First = max(0, k-max(t.strip.Position.Count, 8)/2)
		t.strip.Position.Offset = 0
	}
	cfg := u.snap.Cfg
	return t.strip.Layout(gtx, n, func(gtx C, i int) D {
		rec := p.Timeline[i]
		f := rec.Last()
		return t.stripClicks[i].Layout(gtx, func(gtx C) D {
			sz := image.Pt(th, th)
			e := u.images.get(imgKey{frame: f, view: render.ViewX0}, func() (*image.RGBA, error) {
				return render.Render(render.ViewX0, source(cfg, f), render.Options{Preview: u.snap.Preview})
			})
			if i == k {
				fillRect(gtx.Ops, colAccent, image.Rectangle{Max: sz.Add(image.Pt(4, 4))})
			}
			if e.img != nil {
				sx := float32(th) / float32(e.img.Rect.Dx())
				sy := float32(th) / float32(e.img.Rect.Dy())
				stk := opAffineAt(gtx, 2, 2, sx, sy)
				e.op.Add(gtx.Ops)
				paint.PaintOp{}.Add(gtx.Ops)
				stk.Pop()
			}
			if !rec.Complete() {
				paint.FillShape(gtx.Ops, colorA(colCanvas, 120), clip.Rect{Min: image.Pt(2, 2), Max: sz.Add(image.Pt(2, 2))}.Op())
			}
			return D{Size: sz.Add(image.Pt(6, 4))}
		})
	})
}
