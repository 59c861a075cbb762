package app

import (
	"gioui.org/layout"
	"gioui.org/widget"
)

// exportPanel writes what the window shows: the view as PNG, GIFs of a
// timestep or the run, the grid as .npy, the numbers as CSV. Every file is
// stamped with what made it (PNG text chunks and a JSON sidecar).
type exportPanel struct {
	png, gifStep, gifRun, npy, csv widget.Clickable
}

func (p *exportPanel) Update(gtx C, l *look) []Cmd {
	var cmds []Cmd
	add := func(f func(u *UI)) { cmds = append(cmds, windowCmd(f)) }
	if p.png.Clicked(gtx) {
		add(func(u *UI) { u.exportPNG() })
	}
	if p.gifStep.Clicked(gtx) {
		add(func(u *UI) { u.exportGIF(false) })
	}
	if p.gifRun.Clicked(gtx) {
		add(func(u *UI) { u.exportGIF(true) })
	}
	if p.npy.Clicked(gtx) {
		add(func(u *UI) { u.exportNPY() })
	}
	if p.csv.Clicked(gtx) {
		add(func(u *UI) { u.exportCSV() })
	}
	return cmds
}

func (p *exportPanel) Layout(gtx C, u *UI) D {
	return section(gtx, u.th, "EXPORT (every file stamped: PNG text, .json beside)", func(gtx C) D {
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
			layout.Rigid(func(gtx C) D {
				return wrapRow(gtx, 4,
					func(gtx C) D { return button(gtx, u.th, &p.png, "PNG", false) },
					func(gtx C) D { return button(gtx, u.th, &p.gifStep, "GIF step", false) },
					func(gtx C) D { return button(gtx, u.th, &p.gifRun, "GIF run", false) },
					func(gtx C) D { return button(gtx, u.th, &p.npy, ".npy", false) },
					func(gtx C) D { return button(gtx, u.th, &p.csv, "CSV", false) },
				)
			}),
		)
	})
}
