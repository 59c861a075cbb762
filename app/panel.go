package app

import (
	"image"

	"gioui.org/layout"
	"gioui.org/widget"
	"gioui.org/widget/material"
)

// sidePanel is the right-hand panel: the run controls pinned at its top,
// the other sections below in a list that scrolls. Each section owns its
// widgets and turns their events into commands.
type sidePanel struct {
	run       runPanel
	sampling  samplingPanel
	inspector inspectorPanel
	plots     plotsPanel
	damage    damagePanel
	compare   comparePanel
	branches  branchesPanel
	model     modelPanel
	export    exportPanel
	list      widget.List
}

func (p *sidePanel) init() {
	p.list.Axis = layout.Vertical
	p.sampling.init()
	p.compare.init()
	p.model.init()
	p.damage.init()
}

// sync copies the runner's settings into the controls not being edited.
func (p *sidePanel) sync(l *look) {
	p.sampling.dirty = true
	p.model.dirty = true
}

// editing reports whether an editor of the panel has the keyboard.
func (p *sidePanel) editing(gtx C) bool {
	for _, e := range p.editors() {
		if gtx.Focused(e) {
			return true
		}
	}
	return false
}

func (p *sidePanel) editors() []*widget.Editor {
	return []*widget.Editor{&p.sampling.m.entry, &p.sampling.cfg.entry, &p.sampling.rate.entry, &p.sampling.seed, &p.sampling.labels,
		&p.compare.values, &p.model.ckpt, &p.model.vae, &p.model.budget, &p.damage.radius.entry}
}

func (p *sidePanel) Update(gtx C, l *look) []Cmd {
	var cmds []Cmd
	cmds = append(cmds, p.run.Update(gtx, l)...)
	cmds = append(cmds, p.sampling.Update(gtx, l)...)
	cmds = append(cmds, p.damage.Update(gtx, l)...)
	cmds = append(cmds, p.compare.Update(gtx, l)...)
	cmds = append(cmds, p.branches.Update(gtx, l)...)
	cmds = append(cmds, p.model.Update(gtx, l)...)
	cmds = append(cmds, p.export.Update(gtx, l)...)
	return cmds
}

func (p *sidePanel) Layout(gtx C, u *UI) D {
	if p.sampling.dirty {
		p.sampling.show(gtx, u.snap)
	}
	if p.model.dirty {
		p.model.show(gtx, u)
	}
	p.compare.defaultValues(gtx, u.snap)
	sections := []func(C, *UI) D{
		p.sampling.Layout,
		p.inspector.Layout,
		p.plots.Layout,
		p.damage.Layout,
		p.compare.Layout,
		p.branches.Layout,
		p.export.Layout,
		p.model.Layout,
	}
	return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
		// the run controls stay in view whatever the list's scroll
		layout.Rigid(func(gtx C) D {
			gtx.Constraints.Min.X = gtx.Constraints.Max.X
			d := p.run.Layout(gtx, u)
			fillRect(gtx.Ops, colLine, image.Rect(0, d.Size.Y-1, d.Size.X, d.Size.Y))
			return d
		}),
		layout.Flexed(1, func(gtx C) D {
			l := material.List(u.th, &p.list)
			l.AnchorStrategy = material.Overlay
			return l.Layout(gtx, len(sections), func(gtx C, i int) D {
				gtx.Constraints.Min.X = gtx.Constraints.Max.X
				d := sections[i](gtx, u)
				fillRect(gtx.Ops, colLine, image.Rect(gtx.Dp(12), d.Size.Y-1, d.Size.X-gtx.Dp(12), d.Size.Y))
				return d
			})
		}),
	)
}
