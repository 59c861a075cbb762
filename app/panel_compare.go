package app

import (
	"fmt"
	"strconv"
	"strings"

	"gioui.org/layout"
	"gioui.org/text"
	"gioui.org/widget"
)

// comparePanel turns compare mode on and off: several M values or GHG on
// and off side by side, branched from the start of the run (same initial
// noise) or from the current timestep, and a difference pane.
type comparePanel struct {
	values                           widget.Editor
	valuesFor                        int // the model M the default values were made for
	mStart, mHere, ghgStart, ghgHere widget.Clickable
	off, diff                        widget.Clickable
	diffA, diffB                     widget.Clickable
}

func (p *comparePanel) init() {
	p.values.SingleLine, p.values.Submit = true, true
}

// defaultValues offers undergrowth, the trained M and overgrowth: M/2, M
// and 2M of the model's M, until the user types others.
func (p *comparePanel) defaultValues(gtx C, s *Snapshot) {
	m := s.Cfg.M
	if m <= 0 || m == p.valuesFor || gtx.Focused(&p.values) {
		return
	}
	if p.valuesFor == 0 || p.values.Text() == compareDefaults(p.valuesFor) {
		p.values.SetText(compareDefaults(m))
	}
	p.valuesFor = m
}

func compareDefaults(m int) string { return fmt.Sprintf("%d, %d, %d", max(m/2, 1), m, 2*m) }

// compareM is the command for compare M with the values in the field.
func (p *comparePanel) compareM(u *UI, fromStart bool) []Cmd {
	var ms []int
	for _, f := range strings.FieldsFunc(p.values.Text(), func(r rune) bool { return r == ',' || r == ' ' }) {
		m, err := strconv.Atoi(f)
		if err != nil || m < 1 || m > MaxM {
			return []Cmd{sayErr(fmt.Errorf("compare: %q is not an M in [1, %d]", f, MaxM))}
		}
		ms = append(ms, m)
	}
	if len(ms) < 2 {
		return []Cmd{sayErr(fmt.Errorf("compare: type two or more M values, such as 4, 12, 24"))}
	}
	return []Cmd{Compare{Mode: CompareMode{Kind: CompareM, Ms: ms, FromStart: fromStart}}}
}

func (p *comparePanel) Update(gtx C, l *look) []Cmd {
	var cmds []Cmd
	withUI := func(f func(u *UI) []Cmd) Cmd { return windowCmd(func(u *UI) { u.do(f(u)...) }) }
	if p.mStart.Clicked(gtx) {
		cmds = append(cmds, withUI(func(u *UI) []Cmd { return p.compareM(u, true) }))
	}
	if p.mHere.Clicked(gtx) {
		cmds = append(cmds, withUI(func(u *UI) []Cmd { return p.compareM(u, false) }))
	}
	if p.ghgStart.Clicked(gtx) {
		cmds = append(cmds, Compare{Mode: CompareMode{Kind: CompareGHG, FromStart: true}})
	}
	if p.ghgHere.Clicked(gtx) {
		cmds = append(cmds, Compare{Mode: CompareMode{Kind: CompareGHG}})
	}
	if p.off.Clicked(gtx) {
		cmds = append(cmds, Compare{})
	}
	if p.diff.Clicked(gtx) {
		l.diff = !l.diff
	}
	n := len(l.snap.Panes)
	if p.diffA.Clicked(gtx) && n > 1 {
		l.diffAB[0] = (l.diffAB[0] + 1) % n
	}
	if p.diffB.Clicked(gtx) && n > 1 {
		l.diffAB[1] = (l.diffAB[1] + 1) % n
	}
	for {
		ev, ok := p.values.Update(gtx)
		if !ok {
			break
		}
		if _, ok := ev.(widget.SubmitEvent); ok {
			cmds = append(cmds, withUI(func(u *UI) []Cmd { return p.compareM(u, false) }))
			gtx.Execute(focusNone())
		}
	}
	return cmds
}

func (p *comparePanel) Layout(gtx C, u *UI) D {
	s := u.snap
	on := func(k CompareKind, start bool) bool { return s.Compare.Kind == k && s.Compare.FromStart == start }
	return section(gtx, u.th, "COMPARE (same seed and noise, lock-step)", func(gtx C) D {
		label70 := func(txt string) layout.Widget {
			return func(gtx C) D {
				gtx.Constraints.Min.X = gtx.Dp(70)
				return label(u.th, 12, colMuted, txt).Layout(gtx)
			}
		}
		rows := []layout.FlexChild{
			layout.Rigid(func(gtx C) D {
				return row(gtx, 4, label70("M values"),
					func(gtx C) D { return editorBox(gtx, u.th, &p.values, "M values", 110, text.Start) })
			}),
			layout.Rigid(layout.Spacer{Height: 4}.Layout),
			layout.Rigid(func(gtx C) D {
				return row(gtx, 4, label70("compare M"),
					func(gtx C) D { return chip(gtx, u.th, &p.mStart, "from the start", on(CompareM, true)) },
					func(gtx C) D { return chip(gtx, u.th, &p.mHere, "from here", on(CompareM, false)) })
			}),
			layout.Rigid(layout.Spacer{Height: 4}.Layout),
			layout.Rigid(func(gtx C) D {
				return row(gtx, 4, label70("GHG on|off"),
					func(gtx C) D { return chip(gtx, u.th, &p.ghgStart, "from the start", on(CompareGHG, true)) },
					func(gtx C) D { return chip(gtx, u.th, &p.ghgHere, "from here", on(CompareGHG, false)) })
			}),
			layout.Rigid(layout.Spacer{Height: 4}.Layout),
		}
		rows = append(rows, layout.Rigid(func(gtx C) D {
			ws := []layout.Widget{label70(""), func(gtx C) D { return chip(gtx, u.th, &p.off, "off", s.Compare.Kind == CompareOff) }}
			if len(s.Panes) > 1 {
				a, b := u.diffAB[0]%len(s.Panes), u.diffAB[1]%len(s.Panes)
				ws = append(ws,
					func(gtx C) D { return chip(gtx, u.th, &p.diff, "difference", u.diff) },
					func(gtx C) D { return chip(gtx, u.th, &p.diffA, "A: "+s.Panes[a].Label, false) },
					func(gtx C) D { return chip(gtx, u.th, &p.diffB, "B: "+s.Panes[b].Label, false) })
			}
			return wrapRow(gtx, 4, ws...)
		}))
		if s.Compare.Kind != CompareOff {
			where := "from the current timestep"
			if s.Compare.FromStart {
				where = "from the start, on the same initial noise"
			}
			rows = append(rows, layout.Rigid(func(gtx C) D {
				return layout.Inset{Top: 4}.Layout(gtx, label(u.th, 11, colMuted, "branched "+where).Layout)
			}))
		}
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx, rows...)
	})
}
