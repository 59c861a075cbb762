package app

import (
	"fmt"

	"gioui.org/layout"
	"gioui.org/widget"
)

// branchesPanel lists the runs, newest last; a click shows one.
type branchesPanel struct {
	clicks []widget.Clickable
}

func (p *branchesPanel) Update(gtx C, l *look) []Cmd {
	var cmds []Cmd
	for i := range p.clicks {
		if p.clicks[i].Clicked(gtx) && i < len(l.snap.Runs) {
			cmds = append(cmds, SwitchRun{ID: l.snap.Runs[i].ID})
		}
	}
	return cmds
}

// runRow is a run's line in the list: "#3 GHG off @ step 15 · 20 steps".
func runRow(r RunInfo) string {
	unit := "steps"
	if r.Steps == 1 {
		unit = "step"
	}
	return fmt.Sprintf("#%d %s · %d %s", r.ID, r.Label, r.Steps, unit)
}

func (p *branchesPanel) Layout(gtx C, u *UI) D {
	s := u.snap
	for len(p.clicks) < len(s.Runs) {
		p.clicks = append(p.clicks, widget.Clickable{})
	}
	return section(gtx, u.th, fmt.Sprintf("RUNS AND BRANCHES (%d)", len(s.Runs)), func(gtx C) D {
		var children []layout.FlexChild
		start := max(0, len(s.Runs)-10) // the newest ten
		for i := start; i < len(s.Runs); i++ {
			r := s.Runs[i]
			children = append(children, layout.Rigid(func(gtx C) D {
				return layout.Inset{Bottom: 3}.Layout(gtx, func(gtx C) D {
					txt := runRow(r)
					l := label(u.th, 12, colText, txt)
					if need := naturalWidth(gtx, l) + gtx.Dp(16); need > gtx.Constraints.Max.X {
						u.truncated = append(u.truncated, txt)
					}
					return chip(gtx, u.th, &p.clicks[i], txt, r.Current)
				})
			}))
		}
		if start > 0 {
			children = append(children, layout.Rigid(label(u.th, 11, colMuted, fmt.Sprintf("(%d older runs not listed)", start)).Layout))
		}
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx, children...)
	})
}
