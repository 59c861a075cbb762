package app

import (
	"image"
	"image/color"

	"gioui.org/font"
	"gioui.org/io/key"
	"gioui.org/io/semantic"
	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/op/clip"
	"gioui.org/op/paint"
	"gioui.org/text"
	"gioui.org/unit"
	"gioui.org/widget"
	"gioui.org/widget/material"
)

type (
	C = layout.Context
	D = layout.Dimensions
)

// The colours of a dark research-tool look: the canvas darkest, panels a
// step lighter, one blue accent for what is active, amber for warnings.
var (
	colCanvas    = color.NRGBA{R: 0x16, G: 0x18, B: 0x1d, A: 0xff}
	colPanel     = color.NRGBA{R: 0x22, G: 0x25, B: 0x2c, A: 0xff}
	colPanelAlt  = color.NRGBA{R: 0x2a, G: 0x2e, B: 0x37, A: 0xff}
	colLine      = color.NRGBA{R: 0x38, G: 0x3d, B: 0x48, A: 0xff}
	colText      = color.NRGBA{R: 0xe4, G: 0xe6, B: 0xeb, A: 0xff}
	colMuted     = color.NRGBA{R: 0x9a, G: 0xa1, B: 0xae, A: 0xff}
	colAccent    = color.NRGBA{R: 0x4c, G: 0x9a, B: 0xff, A: 0xff}
	colAccentDim = color.NRGBA{R: 0x2d, G: 0x4f, B: 0x7c, A: 0xff}
	colWarn      = color.NRGBA{R: 0xf2, G: 0xa9, B: 0x3b, A: 0xff}
	colError     = color.NRGBA{R: 0xc9, G: 0x3c, B: 0x3c, A: 0xff}
	colGreen     = color.NRGBA{R: 0x5c, G: 0xc8, B: 0x8a, A: 0xff}
)

func newTheme(shaper *text.Shaper) *material.Theme {
	th := material.NewTheme()
	if shaper != nil {
		th.Shaper = shaper
	}
	th.Palette = material.Palette{Bg: colPanel, Fg: colText, ContrastBg: colAccent, ContrastFg: color.NRGBA{R: 255, G: 255, B: 255, A: 255}}
	th.TextSize = 13
	th.FingerSize = 28
	return th
}

func fill(gtx C, c color.NRGBA) D {
	paint.FillShape(gtx.Ops, c, clip.Rect{Max: gtx.Constraints.Min}.Op())
	return D{Size: gtx.Constraints.Min}
}

func fillRect(ops *op.Ops, c color.NRGBA, r image.Rectangle) {
	paint.FillShape(ops, c, clip.Rect(r).Op())
}

// withBg lays out w over a background of colour c filling w's size.
func withBg(gtx C, c color.NRGBA, w layout.Widget) D {
	m := op.Record(gtx.Ops)
	d := w(gtx)
	call := m.Stop()
	fillRect(gtx.Ops, c, image.Rectangle{Max: d.Size})
	call.Add(gtx.Ops)
	return d
}

func label(th *material.Theme, size unit.Sp, c color.NRGBA, s string) material.LabelStyle {
	l := material.Label(th, size, s)
	l.Color = c
	l.MaxLines = 1
	return l
}

func bold(l material.LabelStyle) material.LabelStyle {
	l.Font.Weight = font.Bold
	return l
}

// section is a titled block of the side panel.
func section(gtx C, th *material.Theme, title string, body layout.Widget) D {
	return layout.Inset{Left: 12, Right: 12, Top: 10, Bottom: 4}.Layout(gtx, func(gtx C) D {
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
			layout.Rigid(func(gtx C) D {
				return layout.Inset{Bottom: 6}.Layout(gtx, bold(label(th, 11, colMuted, title)).Layout)
			}),
			layout.Rigid(body),
		)
	})
}

// chip is a small toggle-like button: filled with the accent when on.
func chip(gtx C, th *material.Theme, btn *widget.Clickable, txt string, on bool) D {
	return btn.Layout(gtx, func(gtx C) D {
		semantic.DescriptionOp(txt).Add(gtx.Ops) // names the control for tests and screen readers
		bg := colPanelAlt
		fg := colText
		if on {
			bg, fg = colAccent, color.NRGBA{R: 255, G: 255, B: 255, A: 255}
		} else if btn.Hovered() {
			bg = colLine
		}
		m := op.Record(gtx.Ops)
		d := layout.Inset{Left: 8, Right: 8, Top: 4, Bottom: 4}.Layout(gtx, label(th, 12, fg, txt).Layout)
		call := m.Stop()
		r := gtx.Dp(4)
		paint.FillShape(gtx.Ops, bg, clip.UniformRRect(image.Rectangle{Max: d.Size}, r).Op(gtx.Ops))
		call.Add(gtx.Ops)
		return d
	})
}

// button is a chip that is never "on" but has a stronger look when primary.
func button(gtx C, th *material.Theme, btn *widget.Clickable, txt string, primary bool) D {
	return btn.Layout(gtx, func(gtx C) D {
		semantic.DescriptionOp(txt).Add(gtx.Ops)
		bg := colPanelAlt
		if primary {
			bg = colAccentDim
		}
		if btn.Hovered() {
			bg = colLine
			if primary {
				bg = colAccent
			}
		}
		m := op.Record(gtx.Ops)
		d := layout.Inset{Left: 10, Right: 10, Top: 6, Bottom: 6}.Layout(gtx, label(th, 13, colText, txt).Layout)
		call := m.Stop()
		paint.FillShape(gtx.Ops, bg, clip.UniformRRect(image.Rectangle{Max: d.Size}, gtx.Dp(4)).Op(gtx.Ops))
		call.Add(gtx.Ops)
		return d
	})
}

// row lays out widgets left to right with a gap.
func row(gtx C, gap unit.Dp, ws ...layout.Widget) D {
	children := make([]layout.FlexChild, 0, 2*len(ws))
	for i, w := range ws {
		if i > 0 {
			children = append(children, layout.Rigid(layout.Spacer{Width: gap}.Layout))
		}
		children = append(children, layout.Rigid(w))
	}
	return layout.Flex{Alignment: layout.Middle}.Layout(gtx, children...)
}

// wrapRow lays out widgets left to right, wrapping to new lines.
func wrapRow(gtx C, gap unit.Dp, ws ...layout.Widget) D {
	g := gtx.Dp(gap)
	maxW := gtx.Constraints.Max.X
	x, y, lineH, width := 0, 0, 0, 0
	cgtx := gtx
	cgtx.Constraints.Min = image.Point{}
	for _, w := range ws {
		m := op.Record(gtx.Ops)
		d := w(cgtx)
		call := m.Stop()
		if x > 0 && x+d.Size.X > maxW {
			x, y, lineH = 0, y+lineH+g, 0
		}
		st := op.Offset(image.Pt(x, y)).Push(gtx.Ops)
		call.Add(gtx.Ops)
		st.Pop()
		x += d.Size.X + g
		lineH = max(lineH, d.Size.Y)
		width = max(width, x-g)
	}
	return D{Size: image.Pt(width, y+lineH)}
}

// editorBox draws an editor with a border, in an area of its own named by
// its hint (for screen readers and tests).
func editorBox(gtx C, th *material.Theme, ed *widget.Editor, hint string, width unit.Dp, align text.Alignment) D {
	gtx.Constraints.Min.X = gtx.Dp(width)
	gtx.Constraints.Max.X = gtx.Dp(width)
	focused := gtx.Focused(ed)
	ed.Alignment = align
	m := op.Record(gtx.Ops)
	d := widget.Border{Color: map[bool]color.NRGBA{true: colAccent, false: colLine}[focused], CornerRadius: 4, Width: 1}.Layout(gtx, func(gtx C) D {
		return layout.Inset{Left: 6, Right: 6, Top: 4, Bottom: 4}.Layout(gtx, func(gtx C) D {
			e := material.Editor(th, ed, hint)
			e.TextSize = 12
			e.Color = colText
			e.HintColor = colMuted
			return e.Layout(gtx)
		})
	})
	call := m.Stop()
	defer clip.Rect{Max: d.Size}.Push(gtx.Ops).Pop()
	semantic.DescriptionOp(hint).Add(gtx.Ops)
	call.Add(gtx.Ops)
	return d
}

// describe names the rectangle of the given size for screen readers and
// tests, in an area of its own (an area with an input handler does not show
// in the router's semantic tree).
func describe(gtx C, size image.Point, desc string) {
	a := clip.Rect{Max: size}.Push(gtx.Ops)
	semantic.DescriptionOp(desc).Add(gtx.Ops)
	a.Pop()
}

// focusNone takes the keyboard focus from an editor.
func focusNone() key.FocusCmd { return key.FocusCmd{} }
