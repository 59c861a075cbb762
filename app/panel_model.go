package app

import (
	"fmt"
	"strings"

	"gioui.org/io/key"
	"gioui.org/layout"
	"gioui.org/text"
	"gioui.org/widget"

	"geca/assets"
	"geca/internal/membudget"
)

// modelPanel is the model picker: the built-in models, the opened
// checkpoints (each keeps its history) and the recent ones; it also opens a
// VAE and sets the memory budget.
type modelPanel struct {
	ckpt, vae, budget widget.Editor
	open, openVAE     widget.Clickable
	models            []widget.Clickable
	builtins          [8]widget.Clickable
	recent            [8]widget.Clickable
	dirty             bool
	focusCkpt         bool
}

func (p *modelPanel) init() {
	for _, e := range []*widget.Editor{&p.ckpt, &p.vae, &p.budget} {
		e.SingleLine, e.Submit = true, true
	}
}

func (p *modelPanel) show(gtx C, u *UI) {
	p.dirty = false
	if !gtx.Focused(&p.budget) {
		setText(&p.budget, membudget.Format(u.snap.Budget))
	}
}

// submitted reports whether Enter was pressed in editor e.
func submitted(gtx C, e *widget.Editor) bool {
	sub := false
	for {
		ev, ok := e.Update(gtx)
		if !ok {
			break
		}
		if _, ok := ev.(widget.SubmitEvent); ok {
			sub = true
		}
	}
	return sub
}

func (p *modelPanel) Update(gtx C, l *look) []Cmd {
	var cmds []Cmd
	if p.focusCkpt {
		p.focusCkpt = false
		gtx.Execute(key.FocusCmd{Tag: &p.ckpt})
	}
	if submitted(gtx, &p.ckpt) {
		cmds = append(cmds, LoadModel{Ckpt: strings.TrimSpace(p.ckpt.Text())})
		gtx.Execute(focusNone())
	}
	if submitted(gtx, &p.vae) {
		cmds = append(cmds, LoadVAE{Path: strings.TrimSpace(p.vae.Text())})
		gtx.Execute(focusNone())
	}
	if submitted(gtx, &p.budget) {
		n, err := membudget.Parse(p.budget.Text())
		if err != nil {
			cmds = append(cmds, sayErr(fmt.Errorf("memory budget: %w", err)))
		} else {
			cmds = append(cmds, SetBudget{Bytes: n})
		}
		gtx.Execute(focusNone())
	}
	if p.open.Clicked(gtx) {
		cmds = append(cmds, windowCmd(func(u *UI) { u.openDialog(false) }))
	}
	if p.openVAE.Clicked(gtx) {
		cmds = append(cmds, windowCmd(func(u *UI) { u.openDialog(true) }))
	}
	for i := range p.models {
		if p.models[i].Clicked(gtx) && i < len(l.snap.Models) && !l.snap.Models[i].Current {
			cmds = append(cmds, SwitchModel{ID: l.snap.Models[i].ID})
		}
	}
	for i, b := range builtinList() {
		if p.builtins[i].Clicked(gtx) && b.Name != l.snap.Builtin {
			cmds = append(cmds, LoadModel{Ckpt: BuiltinPrefix + b.Name})
		}
	}
	for i, path := range recentShown(l.snap) {
		if p.recent[i].Clicked(gtx) {
			cmds = append(cmds, LoadModel{Ckpt: path})
		}
	}
	return cmds
}

func (p *modelPanel) Layout(gtx C, u *UI) D {
	s := u.snap
	for len(p.models) < len(s.Models) {
		p.models = append(p.models, widget.Clickable{})
	}
	return section(gtx, u.th, "MODEL AND MEMORY", func(gtx C) D {
		rows := []layout.FlexChild{}
		heading := func(txt string) {
			rows = append(rows, layout.Rigid(func(gtx C) D {
				return layout.Inset{Top: 2, Bottom: 2}.Layout(gtx, label(u.th, 11, colMuted, txt).Layout)
			}))
		}
		heading("built in")
		for i, b := range builtinList() {
			rows = append(rows, layout.Rigid(func(gtx C) D {
				return layout.Inset{Bottom: 3}.Layout(gtx, func(gtx C) D {
					return chip(gtx, u.th, &p.builtins[i], b.Title, b.Name == s.Builtin)
				})
			}))
		}
		files := false
		for i, m := range s.Models {
			if m.Builtin != "" {
				continue // in the row above
			}
			if !files {
				heading("opened")
				files = true
			}
			rows = append(rows, layout.Rigid(func(gtx C) D {
				return layout.Inset{Bottom: 3}.Layout(gtx, func(gtx C) D { return chip(gtx, u.th, &p.models[i], m.Name, m.Current) })
			}))
		}
		if rs := recentShown(s); len(rs) > 0 {
			heading("recent")
			for i, path := range rs {
				rows = append(rows, layout.Rigid(func(gtx C) D {
					return layout.Inset{Bottom: 3}.Layout(gtx, func(gtx C) D { return chip(gtx, u.th, &p.recent[i], baseName(path), false) })
				}))
			}
		}
		if s.Device != "" {
			rows = append(rows, layout.Rigid(func(gtx C) D {
				l := label(u.th, 11, colMuted, "computes on: "+s.Device)
				l.MaxLines = 4
				return l.Layout(gtx)
			}))
		}
		rows = append(rows,
			layout.Rigid(layout.Spacer{Height: 6}.Layout),
			layout.Rigid(func(gtx C) D {
				return row(gtx, 6,
					func(gtx C) D { return editorBox(gtx, u.th, &p.ckpt, "checkpoint path, Enter", 220, text.Start) },
					func(gtx C) D { return button(gtx, u.th, &p.open, "Open…", false) },
				)
			}),
			layout.Rigid(layout.Spacer{Height: 4}.Layout),
			layout.Rigid(func(gtx C) D {
				return row(gtx, 6,
					func(gtx C) D { return editorBox(gtx, u.th, &p.vae, "VAE folder or file, Enter", 220, text.Start) },
					func(gtx C) D { return button(gtx, u.th, &p.openVAE, "VAE…", false) },
				)
			}),
			layout.Rigid(func(gtx C) D {
				txt := "VAE: none (latent models show the cheap preview)"
				if s.VAE != "" {
					txt = "VAE: " + s.VAE
				}
				return layout.Inset{Top: 2}.Layout(gtx, label(u.th, 11, colMuted, txt).Layout)
			}),
			layout.Rigid(layout.Spacer{Height: 6}.Layout),
			layout.Rigid(func(gtx C) D {
				return row(gtx, 6,
					label(u.th, 12, colMuted, "memory budget").Layout,
					func(gtx C) D { return editorBox(gtx, u.th, &p.budget, "e.g. 512M", 80, text.Start) },
				)
			}),
			layout.Rigid(func(gtx C) D {
				c := colMuted
				txt := fmt.Sprintf("history holds %s of %s; beyond it the inner frames of old steps are recomputed when revisited, then unseen branches are dropped",
					membudget.Format(s.History), membudget.Format(s.Budget))
				if s.OverBudget {
					c = colWarn
				}
				l := label(u.th, 11, c, txt)
				l.MaxLines = 3
				return layout.Inset{Top: 2}.Layout(gtx, l.Layout)
			}),
		)
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx, rows...)
	})
}

// openDialog asks the platform's file dialog for a checkpoint (or a VAE
// file) without blocking the UI; without a dialog the path field takes the
// keyboard.
func (u *UI) openDialog(vae bool) {
	if u.opt.ChooseFile == nil {
		u.say(false, "type the path in the field under MODEL AND MEMORY and press Enter")
		u.side.model.focusCkpt = !vae
		u.side.list.Position.First, u.side.list.Position.Offset = 7, 0
		return
	}
	exts := []string{".pt", ".safetensors", ".pth"}
	if vae {
		exts = []string{".json", ".safetensors", ".bin", ".ckpt"}
	}
	var chosen string
	u.bg.Go("file dialog", func(*job) error {
		p, err := u.opt.ChooseFile(exts...)
		chosen = p
		return err
	}, func(err error) {
		switch {
		case err != nil && err.Error() == "cancelled":
		case err != nil:
			u.say(true, "no file dialog here (%v): type or paste the path in the field under MODEL AND MEMORY and press Enter", err)
			u.side.model.focusCkpt = !vae
		case vae:
			// a file inside a diffusers folder stands for the folder
			if strings.HasSuffix(chosen, "config.json") || strings.HasPrefix(baseName(chosen), "diffusion_pytorch_model") {
				if i := strings.LastIndexAny(chosen, `/\`); i > 0 {
					chosen = chosen[:i]
				}
			}
			u.side.model.vae.SetText(chosen)
			u.do(LoadVAE{Path: chosen})
		default:
			u.side.model.ckpt.SetText(chosen)
			u.do(LoadModel{Ckpt: chosen})
		}
	})
}

// builtinList is the built-in models the picker offers (as many as it has
// buttons for).
func builtinList() []*assets.Builtin { return assets.Builtins[:min(len(assets.Builtins), 8)] }

// recentShown is the recent checkpoints the picker offers: those not open
// now (an open one is under "opened"), at most 8.
func recentShown(s *Snapshot) []string {
	var out []string
	for _, path := range s.Recent {
		open := false
		for _, m := range s.Models {
			if m.Path == path {
				open = true
			}
		}
		if !open && len(out) < 8 {
			out = append(out, path)
		}
	}
	return out
}
