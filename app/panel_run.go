package app

import (
	"fmt"

	"gioui.org/layout"
	"gioui.org/widget"
)

var speeds = []float64{1, 4, 8, 16, 60, 0} // updates per second; 0 = max

// runPanel is play, step and reset, and the play speed.
type runPanel struct {
	play, step, stepT, reset widget.Clickable
	speeds                   [6]widget.Clickable
}

func (p *runPanel) Update(gtx C, l *look) []Cmd {
	var cmds []Cmd
	if p.play.Clicked(gtx) {
		cmds = append(cmds, TogglePlay{})
	}
	if p.step.Clicked(gtx) {
		cmds = append(cmds, StepUpdate{})
	}
	if p.stepT.Clicked(gtx) {
		cmds = append(cmds, StepTimestep{})
	}
	if p.reset.Clicked(gtx) {
		cmds = append(cmds, Restart{})
	}
	for i := range p.speeds {
		if p.speeds[i].Clicked(gtx) {
			cmds = append(cmds, SetSpeed{UpdatesPerSecond: speeds[i]})
		}
	}
	return cmds
}

func (p *runPanel) Layout(gtx C, u *UI) D {
	s := u.snap
	play := "Play"
	if s.Playing {
		play = "Pause"
	}
	return section(gtx, u.th, "RUN", func(gtx C) D {
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
			layout.Rigid(func(gtx C) D {
				return row(gtx, 6,
					func(gtx C) D { return button(gtx, u.th, &p.play, play, true) },
					func(gtx C) D { return button(gtx, u.th, &p.step, "Step", false) },
					func(gtx C) D { return button(gtx, u.th, &p.stepT, "Step t", false) },
					func(gtx C) D { return button(gtx, u.th, &p.reset, "Reset", false) },
				)
			}),
			layout.Rigid(layout.Spacer{Height: 6}.Layout),
			layout.Rigid(func(gtx C) D {
				ws := []layout.Widget{label(u.th, 12, colMuted, "speed").Layout}
				for i, sp := range speeds {
					i, name := i, fmt.Sprintf("%g/s", sp)
					if sp == 0 {
						name = "max"
					}
					ws = append(ws, func(gtx C) D { return chip(gtx, u.th, &p.speeds[i], name, s.Speed == speeds[i]) })
				}
				return row(gtx, 4, ws...)
			}),
		)
	})
}
