package app

import (
	"fmt"
	"image"

	"gioui.org/layout"
	"gioui.org/op/clip"
	"gioui.org/op/paint"
	"gioui.org/widget"

	"geca/render"
)

// handleTimeline turns slider drags into local scrubbing (drawn at once from
// the recorded history) and Seek commands for the runner.
func (u *UI) handleTimeline(gtx C) {
	s := u.snap
	p := s.Panes[s.Active]
	n := len(p.Timeline)
	if n == 0 {
		return
	}
	if u.timeSlider.Update(gtx) || u.timeSlider.Dragging() {
		k := int(u.timeSlider.Value*float32(n-1) + 0.5)
		if !u.timeDrag || k != u.localK {
			rec := p.Timeline[k]
			u.localK, u.localU = k, len(rec.Frames)-1
			u.send(Seek{K: u.localK, U: u.localU})
		}
		u.timeDrag = true
	} else if u.timeDrag {
		u.timeDrag = false
	}
	k := p.K
	if u.timeDrag {
		k = u.localK
	}
	rec := p.Timeline[min(k, n-1)]
	if u.updSlider.Update(gtx) || u.updSlider.Dragging() {
		uu := int(u.updSlider.Value*float32(max(rec.M, 1)) + 0.5)
		uu = min(uu, len(rec.Frames)-1)
		if !u.updDrag || uu != u.localU || u.localK != k {
			u.localK, u.localU = k, uu
			u.send(Seek{K: k, U: uu})
		}
		u.updDrag = true
	} else if u.updDrag {
		u.updDrag = false
	}
	if !u.timeDrag {
		u.timeSlider.Value = float32(p.K) / float32(max(n-1, 1))
	}
	if !u.updDrag {
		u.updSlider.Value = float32(p.U) / float32(max(rec.M, 1))
	}
}

func (u *UI) layoutTimeline(gtx C) D {
	s := u.snap
	p := s.Panes[s.Active]
	_, k, uu := u.paneFrame(s.Active)
	n := len(p.Timeline)
	for len(u.stripClicks) < n {
		u.stripClicks = append(u.stripClicks, widget.Clickable{})
	}
	return withBg(gtx, colPanel, func(gtx C) D {
		gtx.Constraints.Min.X = gtx.Constraints.Max.X
		fillRect(gtx.Ops, colLine, image.Rect(0, 0, gtx.Constraints.Max.X, 1))
		return layout.Inset{Left: 12, Right: 12, Top: 8, Bottom: 8}.Layout(gtx, func(gtx C) D {
			rec := p.Timeline[min(k, n-1)]
			return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
				layout.Rigid(func(gtx C) D {
					return sliderRow(gtx, u.th, "timestep", &u.timeSlider, fmt.Sprintf("%d/%d", k+1, n))
				}),
				layout.Rigid(func(gtx C) D {
					return sliderRow(gtx, u.th, "update", &u.updSlider, fmt.Sprintf("%d/%d", uu, rec.M))
				}),
				layout.Rigid(layout.Spacer{Height: 4}.Layout),
				layout.Rigid(func(gtx C) D { return u.layoutStrip(gtx, p, k) }),
			)
		})
	})
}

// layoutStrip is the film strip: the x0 of the last recorded frame of every
// timestep; a click jumps there.
func (u *UI) layoutStrip(gtx C, p PaneSnap, k int) D {
	th := gtx.Dp(40)
	gtx.Constraints.Max.Y = th + gtx.Dp(4)
	n := len(p.Timeline)
	// keep the current step in view
	if k < u.strip.Position.First || k >= u.strip.Position.First+max(u.strip.Position.Count, 1) {
		u.strip.Position.First = max(0, k-max(u.strip.Position.Count, 8)/2)
		u.strip.Position.Offset = 0
	}
	cfg := u.snap.Cfg
	return u.strip.Layout(gtx, n, func(gtx C, i int) D {
		rec := p.Timeline[i]
		f := rec.Last()
		return u.stripClicks[i].Layout(gtx, func(gtx C) D {
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
