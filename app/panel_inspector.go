package app

import (
	"fmt"
	"image"
	"math"

	"gioui.org/io/event"
	"gioui.org/io/pointer"
	"gioui.org/layout"
	"gioui.org/op/clip"

	"geca/engine"
	"geca/render"
)

// inspectorPanel shows one cell: the hovered one in a summary line, and the
// selected one (else the hovered one) as bar charts of its channels and its
// attention. Every block keeps its height whether it has data or not, so
// the sections below never move under the pointer.
type inspectorPanel struct {
	out, hid bars
}

// bars is a bar chart whose bars tell their value under the pointer.
type bars struct {
	hover int // bar under the pointer, when on
	on    bool
	n     int
	width int
}

func (b *bars) update(gtx C) {
	for {
		ev, ok := gtx.Event(pointer.Filter{Target: b, Kinds: pointer.Move | pointer.Enter | pointer.Leave | pointer.Cancel})
		if !ok {
			break
		}
		e, ok := ev.(pointer.Event)
		if !ok {
			continue
		}
		b.on = (e.Kind == pointer.Move || e.Kind == pointer.Enter) && b.n > 0 && b.width > 0
		if b.on {
			b.hover = min(max(int(e.Position.X*float32(b.n)/float32(b.width)), 0), b.n-1)
		}
	}
}

// layout draws one bar per value around a zero line, scaled by the largest
// |value|; split > 0 draws a divider before index split (ε̂ | v). name(i)
// names bar i for the hover readout.
func (b *bars) layout(gtx C, u *UI, title string, vals []float32, split int, name func(int) string) D {
	b.update(gtx)
	var m float64
	for _, v := range vals {
		m = math.Max(m, math.Abs(float64(v)))
	}
	h := gtx.Dp(40)
	w := gtx.Constraints.Max.X
	b.n, b.width = len(vals), w
	hover := -1
	if b.on && b.hover < len(vals) {
		hover = b.hover
	}
	head := title
	if len(vals) > 0 {
		head += fmt.Sprintf("  max |x| %.3g", m)
	}
	if hover >= 0 {
		head += fmt.Sprintf("  ·  %s = %.4g", name(hover), vals[hover])
	}
	return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
		layout.Rigid(func(gtx C) D {
			return layout.Inset{Top: 6, Bottom: 2}.Layout(gtx, label(u.th, 11, colMuted, head).Layout)
		}),
		layout.Rigid(func(gtx C) D {
			fillRect(gtx.Ops, colPanelAlt, image.Rect(0, 0, w, h))
			area := clip.Rect{Max: image.Pt(w, h)}.Push(gtx.Ops)
			event.Op(gtx.Ops, b)
			describe(gtx, image.Pt(w, h), "chart "+title)
			area.Pop()
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
				if i == hover {
					c = colText
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

func (p *inspectorPanel) Layout(gtx C, u *UI) D {
	s := u.snap
	f, _, _ := u.paneFrame(s.Active)
	cfg := s.Cfg
	cin, cout := cfg.InChannels, cfg.OutChannels()
	return section(gtx, u.th, "CELL INSPECTOR", func(gtx C) D {
		hover := "hover a cell for its values; click to select it"
		if hc := u.hover.cell; hc[0] >= 0 && f != nil && f.State != nil {
			hover = cellSummary(cfg, f, hc[0], hc[1])
		}
		// the cell the charts show: the selected one, else the hovered one
		ci, cj, what := -1, -1, "no cell: hover or click one"
		switch sel := s.Selected; {
		case sel[0] >= 0:
			ci, cj, what = sel[0], sel[1], fmt.Sprintf("selected cell (%d, %d)", sel[0], sel[1])
		case u.hover.cell[0] >= 0 && u.hover.pane == s.Active:
			ci, cj, what = u.hover.cell[0], u.hover.cell[1], fmt.Sprintf("hovered cell (%d, %d); click to select", u.hover.cell[0], u.hover.cell[1])
		}
		var cell []float32
		if ci >= 0 && f != nil && f.State != nil {
			cell = f.State.Cell(0, ci, cj)
		}
		var outVals, hidVals []float32
		if cell != nil {
			outVals, hidVals = cell[cin:cin+cout], cell[cin+cout:]
		}
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
			layout.Rigid(func(gtx C) D { return u.checked(gtx, label(u.th, 11, colText, hover)) }),
			layout.Rigid(layout.Spacer{Height: 4}.Layout),
			layout.Rigid(bold(label(u.th, 12, colAccent, what)).Layout),
			layout.Rigid(func(gtx C) D {
				sym := predSymbol(cfg.Prediction)
				return p.out.layout(gtx, u, sym+" | v", outVals, cin, func(i int) string {
					if i < cin {
						return fmt.Sprintf("%s[%d]", sym, i)
					}
					return fmt.Sprintf("v[%d]", i-cin)
				})
			}),
			layout.Rigid(func(gtx C) D {
				return p.hid.layout(gtx, u, fmt.Sprintf("hidden (%d)", cfg.HiddenChannels), hidVals, 0, func(i int) string {
					return fmt.Sprintf("h[%d]", i)
				})
			}),
			layout.Rigid(func(gtx C) D { return u.attentionBlock(gtx, f) }),
		)
	})
}

// cellSummary is one line of a cell's values.
func cellSummary(cfg engine.Config, f *Frame, i, j int) string {
	cin := cfg.InChannels
	cell := f.State.Cell(0, i, j)
	cout := 2 * cin
	txt := fmt.Sprintf("cell (%d, %d)  x_t %s  |%s| %.3f  |h| %.3f", i, j, fmtVec(cell[:min(cin, 3)]), predSymbol(cfg.Prediction),
		norm(cell[cin:2*cin]), norm(cell[cin+cout:]))
	w := f.State.W
	if f.Magnitude != nil && i*w+j < len(f.Magnitude) {
		txt += fmt.Sprintf("  |Δ| %.3g", f.Magnitude[i*w+j])
	}
	if f.Influence != nil && i*w+j < len(f.Influence) {
		txt += fmt.Sprintf("  seed %.3g", f.Influence[i*w+j])
	}
	return txt
}

// attentionBlock draws the selected cell's attention per head, or says why
// there is none, in the same height either way.
func (u *UI) attentionBlock(gtx C, f *Frame) D {
	heads := u.snap.Cfg.Heads
	w := gtx.Constraints.Max.X
	tileW := heads*3*1 + (heads - 1)
	sc := max(1, min(8, w/max(tileW, 1)))
	h := 3 * sc
	sel := u.snap.Selected
	var caption string
	var e *imgEntry
	switch {
	case sel[0] < 0:
		caption = "attention: select a cell"
	case f == nil || f.Update == 0:
		caption = "attention: that of a cell update; this is the start of a timestep"
	case len(f.Attn) != heads*9 || f.AttnCell != sel:
		caption = "attention: computing…"
	default:
		caption = fmt.Sprintf("3x3 attention per head (%d heads), self at centre", heads)
		e = u.images.get(imgKey{frame: f, view: render.NumViews + 1}, func() (*image.RGBA, error) {
			return render.AttentionHeads(f.Attn, heads, 1), nil
		})
	}
	return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
		layout.Rigid(func(gtx C) D {
			return layout.Inset{Top: 6, Bottom: 2}.Layout(gtx, label(u.th, 11, colMuted, caption).Layout)
		}),
		layout.Rigid(func(gtx C) D {
			if e != nil && e.img != nil {
				drawImage(gtx, e, sc)
			} else {
				fillRect(gtx.Ops, colPanelAlt, image.Rect(0, 0, tileW*sc, h))
			}
			return D{Size: image.Pt(w, h)}
		}),
	)
}
