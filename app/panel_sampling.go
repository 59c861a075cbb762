package app

import (
	"fmt"
	"strconv"
	"strings"

	"gioui.org/layout"
	"gioui.org/text"
	"gioui.org/widget"
	"gioui.org/widget/material"

	"geca/assets"
)

var stepsChoices = []string{"10", "25", "50", "ddim50", "100", "250"}

// samplingPanel holds the sampling settings. M, CFG, the update rate and
// GHG branch the run at the current timestep; steps, labels and seed start
// a new run from the start (the earlier runs stay in the branch list).
type samplingPanel struct {
	m, cfg, rate *valueSlider
	ghg          widget.Bool
	steps        [6]widget.Clickable
	official     widget.Clickable
	seed, labels widget.Editor
	dice         widget.Clickable
	dirty        bool
}

func (p *samplingPanel) init() {
	p.m = newValueSlider("M updates", 1, 64, 1, 1, MaxM, true, func(v float64) string { return strconv.Itoa(int(v)) })
	p.cfg = newValueSlider("CFG scale", 1, 8, 0.25, 0, 100, false, func(v float64) string {
		if v <= 1 {
			return "off"
		}
		return strconv.FormatFloat(v, 'g', 4, 64)
	})
	p.rate = newValueSlider("update rate", 0.05, 1, 0.05, 1e-3, 1, false, func(v float64) string {
		return strconv.FormatFloat(v, 'g', 3, 64)
	})
	for _, e := range []*widget.Editor{&p.seed, &p.labels} {
		e.SingleLine, e.Submit = true, true
	}
}

// show puts the runner's settings into the controls not being edited.
func (p *samplingPanel) show(gtx C, s *Snapshot) {
	p.dirty = false
	set := s.Settings
	p.m.show(gtx, float64(set.M))
	p.cfg.show(gtx, float64(set.CFG))
	p.rate.show(gtx, float64(set.Rate))
	p.ghg.Value = set.GHG
	if !gtx.Focused(&p.seed) {
		setText(&p.seed, strconv.FormatUint(set.Seed, 10))
	}
	if !gtx.Focused(&p.labels) {
		setText(&p.labels, set.LabelString())
	}
}

func setText(e *widget.Editor, s string) {
	if e.Text() != s {
		e.SetText(s)
	}
}

func sayErr(err error) Cmd {
	return windowCmd(func(u *UI) { u.say(true, "%v", err) })
}

func (p *samplingPanel) Update(gtx C, l *look) []Cmd {
	s := l.snap
	var cmds []Cmd
	if v, ok, err := p.m.Update(gtx); err != nil {
		cmds = append(cmds, sayErr(err))
	} else if ok {
		m := int(v)
		cmds = append(cmds, Change{M: &m})
	}
	if v, ok, err := p.cfg.Update(gtx); err != nil {
		cmds = append(cmds, sayErr(err))
	} else if ok {
		c := float32(v)
		cmds = append(cmds, Change{CFG: &c})
	}
	if v, ok, err := p.rate.Update(gtx); err != nil {
		cmds = append(cmds, sayErr(err))
	} else if ok {
		r := float32(v)
		cmds = append(cmds, Change{Rate: &r})
	}
	if p.ghg.Update(gtx) {
		v := p.ghg.Value
		cmds = append(cmds, Change{GHG: &v})
	}
	for i := range p.steps {
		if p.steps[i].Clicked(gtx) && stepsChoices[i] != s.Base.Steps {
			ns := s.Base
			ns.Steps = stepsChoices[i]
			cmds = append(cmds, Restart{Settings: &ns, Label: stepsLabel(ns.Steps)},
				windowCmd(func(u *UI) {
					u.say(false, "a new run with %s from the start; the earlier runs stay under BRANCHES", stepsLabel(ns.Steps))
				}))
		}
	}
	if p.official.Clicked(gtx) {
		ns := OfficialSettings(s.Base)
		cmds = append(cmds, Restart{Settings: &ns, Label: "official settings"})
	}
	if p.dice.Clicked(gtx) {
		cmds = append(cmds, windowCmd(func(u *UI) { u.do(dice(u)) }))
	}
	for {
		ev, ok := p.seed.Update(gtx)
		if !ok {
			break
		}
		if _, ok := ev.(widget.SubmitEvent); !ok {
			continue
		}
		seed, err := strconv.ParseUint(strings.TrimSpace(p.seed.Text()), 10, 64)
		if err != nil {
			cmds = append(cmds, sayErr(fmt.Errorf("seed %q is not a non-negative integer", p.seed.Text())))
			continue
		}
		ns := s.Base
		ns.Seed = seed
		cmds = append(cmds, Restart{Settings: &ns, Label: "seed " + itoa(seed)})
		gtx.Execute(focusNone())
	}
	for {
		ev, ok := p.labels.Update(gtx)
		if !ok {
			break
		}
		if _, ok := ev.(widget.SubmitEvent); !ok {
			continue
		}
		labels, err := ParseLabels(p.labels.Text(), s.Cfg.NumClasses)
		if err != nil {
			cmds = append(cmds, sayErr(fmt.Errorf("labels: %w", err)))
			continue
		}
		ns := s.Base
		ns.Labels = labels
		cmds = append(cmds, Restart{Settings: &ns, Label: "labels " + ns.LabelString()})
		gtx.Execute(focusNone())
	}
	return cmds
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

// stepsLabel names a Steps setting: "50 DDPM steps", "50 DDIM steps".
func stepsLabel(steps string) string {
	if n, ok := stepsCount(steps); ok {
		if strings.HasPrefix(steps, "ddim") {
			return fmt.Sprintf("%d DDIM steps", n)
		}
		return fmt.Sprintf("%d DDPM steps", n)
	}
	return "steps " + steps
}

func (p *samplingPanel) Layout(gtx C, u *UI) D {
	s := u.snap
	return section(gtx, u.th, "SAMPLING", func(gtx C) D {
		label74 := func(txt string) layout.Widget {
			return func(gtx C) D {
				gtx.Constraints.Min.X = gtx.Dp(78)
				return label(u.th, 12, colMuted, txt).Layout(gtx)
			}
		}
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
			layout.Rigid(func(gtx C) D {
				l := label(u.th, 11, colMuted, "M, CFG, rate and GHG branch the run at this step; steps, labels and seed start a new run. The runs stay under RUNS AND BRANCHES.")
				l.MaxLines = 3
				return layout.Inset{Bottom: 4}.Layout(gtx, l.Layout)
			}),
			layout.Rigid(func(gtx C) D { return p.m.Layout(gtx, u.th) }),
			layout.Rigid(func(gtx C) D { return p.cfg.Layout(gtx, u.th) }),
			layout.Rigid(func(gtx C) D { return p.rate.Layout(gtx, u.th) }),
			layout.Rigid(func(gtx C) D {
				return layout.Inset{Top: 4, Bottom: 4}.Layout(gtx, func(gtx C) D {
					return row(gtx, 8,
						label74("GHG"),
						func(gtx C) D {
							sw := material.Switch(u.th, &p.ghg, "Gene Heredity Guidance")
							sw.Color.Enabled = colAccent
							return sw.Layout(gtx)
						},
						label(u.th, 12, colText, map[bool]string{true: "on: cells carried across steps", false: "off: fresh seed each step"}[p.ghg.Value]).Layout,
					)
				})
			}),
			layout.Rigid(func(gtx C) D {
				ws := []layout.Widget{label74("steps")}
				for i, st := range stepsChoices {
					ws = append(ws, func(gtx C) D { return chip(gtx, u.th, &p.steps[i], st, s.Base.Steps == st) })
				}
				return wrapRow(gtx, 4, ws...)
			}),
			layout.Rigid(layout.Spacer{Height: 4}.Layout),
			layout.Rigid(func(gtx C) D {
				o := assets.OfficialSampler
				txt := fmt.Sprintf("official: DDPM %s, CFG %g", o.Steps, o.CFG)
				on := s.Base.Steps == o.Steps && s.Base.CFG == o.CFG
				return row(gtx, 6, label74(""), func(gtx C) D { return chip(gtx, u.th, &p.official, txt, on) })
			}),
			layout.Rigid(layout.Spacer{Height: 6}.Layout),
			layout.Rigid(func(gtx C) D {
				return row(gtx, 6,
					label74("labels"),
					func(gtx C) D { return editorBox(gtx, u.th, &p.labels, "e.g. 3,7", 80, text.Start) },
					label(u.th, 11, colMuted, labelHint(s)).Layout,
				)
			}),
			layout.Rigid(layout.Spacer{Height: 6}.Layout),
			layout.Rigid(func(gtx C) D {
				return row(gtx, 6,
					label74("seed"),
					func(gtx C) D { return editorBox(gtx, u.th, &p.seed, "seed", 80, text.Start) },
					func(gtx C) D { return button(gtx, u.th, &p.dice, "Dice", false) },
				)
			}),
		)
	})
}

// labelHint names the chosen classes, or says how many there are.
func labelHint(s *Snapshot) string {
	if len(s.Settings.Labels) > 0 && len(s.Classes) == s.Cfg.NumClasses {
		var names []string
		for _, l := range s.Settings.Labels {
			names = append(names, s.Classes[l])
		}
		return strings.Join(names, " + ") + " (Enter: new run)"
	}
	return fmt.Sprintf("of %d classes, Enter: new run", s.Cfg.NumClasses)
}
