package app

import (
	"fmt"

	"gioui.org/layout"
	"gioui.org/widget"

	"geca/engine"
	"geca/render"
)

// topBar chooses the view: one chip per view, the VAE decode, the reach
// overlay, the channel of channel views, the demo preset and the help.
type topBar struct {
	views          [render.NumViews]widget.Clickable
	decoded, reach widget.Clickable
	chPrev, chNext widget.Clickable
	demo, help     widget.Clickable
	height         int // in the last frame
}

func (t *topBar) Update(gtx C, l *look) []Cmd {
	var cmds []Cmd
	for i := range t.views {
		if t.views[i].Clicked(gtx) {
			v := render.View(i)
			cmds = append(cmds, windowCmd(func(u *UI) { u.setView(v) }))
		}
	}
	if t.decoded.Clicked(gtx) {
		l.decoded = !l.decoded
	}
	if t.reach.Clicked(gtx) {
		cmds = append(cmds, windowCmd(func(u *UI) { u.reach = !u.reach; u.syncInfluence() }))
	}
	if t.chPrev.Clicked(gtx) {
		cmds = append(cmds, windowCmd(func(u *UI) { u.cycleChannel(-1) }))
	}
	if t.chNext.Clicked(gtx) {
		cmds = append(cmds, windowCmd(func(u *UI) { u.cycleChannel(1) }))
	}
	if t.demo.Clicked(gtx) {
		cmds = append(cmds, demoPreset())
	}
	if t.help.Clicked(gtx) {
		l.help = !l.help
	}
	return cmds
}

func (t *topBar) Layout(gtx C, u *UI) D {
	return withBg(gtx, colPanel, func(gtx C) D {
		gtx.Constraints.Min.X = gtx.Constraints.Max.X
		return layout.Inset{Left: 12, Right: 12, Top: 6, Bottom: 6}.Layout(gtx, func(gtx C) D {
			return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
				layout.Flexed(1, func(gtx C) D {
					var ws []layout.Widget
					for i := render.View(0); i < render.NumViews; i++ {
						name := fmt.Sprintf("%s %s", viewKey(i), shortViewName(i, u.snap.Cfg.Prediction))
						ws = append(ws, func(gtx C) D { return chip(gtx, u.th, &t.views[i], name, u.view == i) })
					}
					if u.snap.Decode != nil {
						ws = append(ws, func(gtx C) D { return chip(gtx, u.th, &t.decoded, "VAE decode", u.decoded) })
					}
					ws = append(ws, func(gtx C) D { return chip(gtx, u.th, &t.reach, "dim unreached", u.reach) })
					if txt := t.channelText(u); txt != "" {
						ws = append(ws, func(gtx C) D {
							return row(gtx, 4,
								func(gtx C) D { return chip(gtx, u.th, &t.chPrev, "<", false) },
								label(u.th, 12, colText, txt).Layout,
								func(gtx C) D { return chip(gtx, u.th, &t.chNext, ">", false) },
							)
						})
					}
					return wrapRow(gtx, 4, ws...)
				}),
				layout.Rigid(layout.Spacer{Width: 8}.Layout),
				layout.Rigid(func(gtx C) D { return chip(gtx, u.th, &t.demo, "demo", u.demo) }),
				layout.Rigid(layout.Spacer{Width: 4}.Layout),
				layout.Rigid(func(gtx C) D { return chip(gtx, u.th, &t.help, "? keys", u.help) }),
			)
		})
	})
}

// channelText names the channel(s) a channel view shows ("" for other views).
func (t *topBar) channelText(u *UI) string {
	switch u.view {
	case render.ViewEps, render.ViewV:
		return fmt.Sprintf("channel %d/%d", u.channel+1, max(u.snap.Cfg.InChannels, 1))
	case render.ViewHidden:
		return fmt.Sprintf("hidden %d,%d,%d", u.hidden[0], u.hidden[1], u.hidden[2])
	}
	return ""
}

// shortViewName is a view's name on its chip, where the top bar is narrow.
func shortViewName(v render.View, p engine.Prediction) string {
	switch v {
	case render.ViewX0:
		return "x₀"
	case render.ViewHiddenPCA:
		return "PCA"
	case render.ViewInfluence:
		return "seed influence"
	}
	return viewName(v, p)
}
