package app

import (
	"strconv"

	"gioui.org/layout"
	"gioui.org/widget"
)

// damagePanel is the damage brush: its mode, its radius and undo.
type damagePanel struct {
	off, erase, perturb, blank, undo widget.Clickable
	radius                           *valueSlider
}

func (p *damagePanel) init() {
	p.radius = newValueSlider("radius", 0.5, 8, 0.5, 0.5, 64, false, func(v float64) string {
		return strconv.FormatFloat(v, 'g', 3, 64)
	})
}

func (p *damagePanel) Update(gtx C, l *look) []Cmd {
	var cmds []Cmd
	if p.off.Clicked(gtx) {
		l.brushOn = false
	}
	if p.erase.Clicked(gtx) {
		l.brushOn, l.brush = true, BrushErase
	}
	if p.perturb.Clicked(gtx) {
		l.brushOn, l.brush = true, BrushPerturb
	}
	if p.blank.Clicked(gtx) {
		l.brushOn, l.brush = true, BrushBlank
	}
	if p.undo.Clicked(gtx) {
		cmds = append(cmds, Undo{})
	}
	if v, ok, err := p.radius.Update(gtx); err != nil {
		cmds = append(cmds, sayErr(err))
	} else if ok {
		l.radius = v
	}
	return cmds
}

func (p *damagePanel) Layout(gtx C, u *UI) D {
	p.radius.show(gtx, u.radius)
	return section(gtx, u.th, "DAMAGE BRUSH (drag on any view)", func(gtx C) D {
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
			layout.Rigid(func(gtx C) D {
				return row(gtx, 4,
					func(gtx C) D { return chip(gtx, u.th, &p.off, "off", !u.brushOn) },
					func(gtx C) D { return chip(gtx, u.th, &p.erase, "erase", u.brushOn && u.brush == BrushErase) },
					func(gtx C) D { return chip(gtx, u.th, &p.perturb, "perturb", u.brushOn && u.brush == BrushPerturb) },
					func(gtx C) D { return chip(gtx, u.th, &p.blank, "blank image", u.brushOn && u.brush == BrushBlank) },
					layout.Spacer{Width: 8}.Layout,
					func(gtx C) D {
						if !u.snap.CanUndo {
							gtx = gtx.Disabled()
						}
						return button(gtx, u.th, &p.undo, "Undo", false)
					},
				)
			}),
			layout.Rigid(func(gtx C) D { return p.radius.Layout(gtx, u.th) }),
		)
	})
}
