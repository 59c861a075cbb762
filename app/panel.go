package app

import (
	"fmt"
	"image"
	"strings"

	"gioui.org/layout"
	"gioui.org/widget/material"

	"geca/render"
)

func (u *UI) layoutPanel(gtx C) D {
	sections := []layout.Widget{
		u.panelRun,
		u.panelSampling,
		u.panelInspector,
		u.panelPlots,
		u.panelDamage,
		u.panelCompare,
		u.panelBranches,
		u.panelFiles,
	}
	l := material.List(u.th, &u.panel)
	l.AnchorStrategy = material.Overlay
	return l.Layout(gtx, len(sections), func(gtx C, i int) D {
		gtx.Constraints.Min.X = gtx.Constraints.Max.X
		d := sections[i](gtx)
		fillRect(gtx.Ops, colLine, image.Rect(gtx.Dp(12), d.Size.Y-1, d.Size.X-gtx.Dp(12), d.Size.Y))
		return d
	})
}

func (u *UI) panelRun(gtx C) D {
	s := u.snap
	play := "Play"
	if s.Playing {
		play = "Pause"
	}
	return section(gtx, u.th, "RUN", func(gtx C) D {
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
			layout.Rigid(func(gtx C) D {
				return row(gtx, 6,
					func(gtx C) D { return button(gtx, u.th, &u.btnPlay, play, true) },
					func(gtx C) D { return button(gtx, u.th, &u.btnStep, "Step", false) },
					func(gtx C) D { return button(gtx, u.th, &u.btnStepT, "Step t", false) },
					func(gtx C) D { return button(gtx, u.th, &u.btnReset, "Reset", false) },
				)
			}),
			layout.Rigid(layout.Spacer{Height: 8}.Layout),
			layout.Rigid(func(gtx C) D {
				ws := []layout.Widget{label(u.th, 12, colMuted, "speed").Layout}
				for i, sp := range speeds {
					i, name := i, fmt.Sprintf("%g/s", sp)
					if sp == 0 {
						name = "max"
					}
					ws = append(ws, func(gtx C) D { return chip(gtx, u.th, &u.speedBtns[i], name, s.Speed == speeds[i]) })
				}
				return row(gtx, 4, ws...)
			}),
		)
	})
}

func (u *UI) panelSampling(gtx C) D {
	s := u.snap
	return section(gtx, u.th, "SAMPLING (changes branch from the current step)", func(gtx C) D {
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
			layout.Rigid(func(gtx C) D {
				return sliderRow(gtx, u.th, "M updates", &u.mSlider, fmt.Sprint(u.sliderM()))
			}),
			layout.Rigid(func(gtx C) D {
				v := fmt.Sprintf("%.2f", u.sliderCFG())
				if u.sliderCFG() <= 1 {
					v = "off"
				}
				return sliderRow(gtx, u.th, "CFG scale", &u.cfgSlider, v)
			}),
			layout.Rigid(func(gtx C) D {
				return sliderRow(gtx, u.th, "update rate", &u.rateSlider, fmt.Sprintf("%.2f", u.sliderRate()))
			}),
			layout.Rigid(func(gtx C) D {
				return layout.Inset{Top: 4, Bottom: 4}.Layout(gtx, func(gtx C) D {
					return row(gtx, 8,
						func(gtx C) D {
							gtx.Constraints.Min.X = gtx.Dp(74)
							return label(u.th, 12, colMuted, "GHG").Layout(gtx)
						},
						func(gtx C) D {
							sw := material.Switch(u.th, &u.ghg, "Gene Heredity Guidance")
							sw.Color.Enabled = colAccent
							return sw.Layout(gtx)
						},
						label(u.th, 12, colText, map[bool]string{true: "on: cells carried across steps", false: "off: fresh seed each step"}[u.ghg.Value]).Layout,
					)
				})
			}),
			layout.Rigid(func(gtx C) D {
				ws := []layout.Widget{func(gtx C) D {
					gtx.Constraints.Min.X = gtx.Dp(74)
					return label(u.th, 12, colMuted, "steps").Layout(gtx)
				}}
				for i, st := range stepsChoices {
					i, st := i, st
					ws = append(ws, func(gtx C) D { return chip(gtx, u.th, &u.stepsBtns[i], st, s.Base.Steps == st) })
				}
				return row(gtx, 4, ws...)
			}),
			layout.Rigid(layout.Spacer{Height: 6}.Layout),
			layout.Rigid(func(gtx C) D {
				return row(gtx, 6,
					func(gtx C) D {
						gtx.Constraints.Min.X = gtx.Dp(74)
						return label(u.th, 12, colMuted, "labels").Layout(gtx)
					},
					func(gtx C) D { return editorBox(gtx, u.th, &u.labelEd, "e.g. 3,7", 90) },
					label(u.th, 11, colMuted, u.labelHint()).Layout,
				)
			}),
			layout.Rigid(layout.Spacer{Height: 6}.Layout),
			layout.Rigid(func(gtx C) D {
				return row(gtx, 6,
					func(gtx C) D {
						gtx.Constraints.Min.X = gtx.Dp(74)
						return label(u.th, 12, colMuted, "seed").Layout(gtx)
					},
					func(gtx C) D { return editorBox(gtx, u.th, &u.seedEd, "seed", 90) },
					func(gtx C) D { return button(gtx, u.th, &u.btnDice, "Dice", false) },
				)
			}),
		)
	})
}

func (u *UI) panelInspector(gtx C) D {
	s := u.snap
	f, _, _ := u.paneFrame(s.Active)
	cfg := s.Cfg
	return section(gtx, u.th, "CELL INSPECTOR", func(gtx C) D {
		var children []layout.FlexChild
		hover := "hover a cell for a summary; click to select it"
		if u.hoverCell[0] >= 0 && f != nil && f.State != nil {
			i, j := u.hoverCell[0], u.hoverCell[1]
			cell := f.State.Cell(0, i, j)
			hover = fmt.Sprintf("cell (%d, %d)  x_t %s  |ε| %.2f  |h| %.2f", i, j, fmtVec(cell[:min(cfg.InChannels, 3)]),
				norm(cell[cfg.InChannels:cfg.InChannels*2]), norm(cell[cfg.InChannels+cfg.OutChannels():]))
			if f.Magnitude != nil {
				hover += fmt.Sprintf("  |Δ| %.3f", f.Magnitude[i*cfg.GridW+j])
			}
		}
		children = append(children, layout.Rigid(label(u.th, 12, colText, hover).Layout))
		sel := s.Selected
		if sel[0] >= 0 && f != nil && f.State != nil {
			cell := f.State.Cell(0, sel[0], sel[1])
			cin, cout := cfg.InChannels, cfg.OutChannels()
			children = append(children,
				layout.Rigid(layout.Spacer{Height: 6}.Layout),
				layout.Rigid(bold(label(u.th, 12, colAccent, fmt.Sprintf("selected cell (%d, %d)", sel[0], sel[1]))).Layout),
				layout.Rigid(func(gtx C) D {
					return barChart(gtx, u.th, "ε | v", cell[cin:cin+cout], cin)
				}),
				layout.Rigid(func(gtx C) D {
					return barChart(gtx, u.th, fmt.Sprintf("hidden (%d)", cfg.HiddenChannels), cell[cin+cout:], 0)
				}),
				layout.Rigid(func(gtx C) D { return u.attentionTiles(gtx, f) }),
			)
		}
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx, children...)
	})
}

func (u *UI) attentionTiles(gtx C, f *Frame) D {
	heads := u.snap.Cfg.Heads
	if len(f.Attn) != heads*9 || f.AttnCell != u.snap.Selected {
		return layout.Inset{Top: 4}.Layout(gtx, label(u.th, 11, colMuted, "attention: appears after the next update").Layout)
	}
	img := render.AttentionHeads(f.Attn, heads, 4)
	e := u.images.get(imgKey{frame: f, view: render.NumViews + 1}, func() (*image.RGBA, error) { return img, nil })
	return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
		layout.Rigid(func(gtx C) D {
			return layout.Inset{Top: 6, Bottom: 2}.Layout(gtx, label(u.th, 11, colMuted,
				fmt.Sprintf("3x3 attention per head (%d heads), self at centre", heads)).Layout)
		}),
		layout.Rigid(func(gtx C) D {
			// scale so the tiles fill the panel width at most 8 px per slot
			w := gtx.Constraints.Max.X
			sc := max(1, min(8, w/max(e.img.Rect.Dx(), 1)))
			return drawImage(gtx, e, sc)
		}),
	)
}

func (u *UI) panelDamage(gtx C) D {
	return section(gtx, u.th, "DAMAGE BRUSH", func(gtx C) D {
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
			layout.Rigid(func(gtx C) D {
				return row(gtx, 4,
					func(gtx C) D { return chip(gtx, u.th, &u.btnBrushOff, "off", !u.brushOn) },
					func(gtx C) D { return chip(gtx, u.th, &u.btnErase, "erase", u.brushOn && u.brush == BrushErase) },
					func(gtx C) D { return chip(gtx, u.th, &u.btnPerturb, "perturb", u.brushOn && u.brush == BrushPerturb) },
					layout.Spacer{Width: 8}.Layout,
					func(gtx C) D {
						if !u.snap.CanUndo {
							gtx = gtx.Disabled()
						}
						return button(gtx, u.th, &u.btnUndo, "Undo", false)
					},
				)
			}),
			layout.Rigid(func(gtx C) D {
				return sliderRow(gtx, u.th, "radius", &u.radius, fmt.Sprintf("%.1f", u.brushRadius()))
			}),
		)
	})
}

func (u *UI) panelCompare(gtx C) D {
	s := u.snap
	return section(gtx, u.th, "COMPARE (same seed and noise, lock-step)", func(gtx C) D {
		return row(gtx, 4,
			func(gtx C) D { return chip(gtx, u.th, &u.btnCompareOff, "off", s.Compare == "") },
			func(gtx C) D { return chip(gtx, u.th, &u.btnCompareM, "M:", s.Compare == "M") },
			func(gtx C) D { return editorBox(gtx, u.th, &u.compareEd, "4, 12, 24", 80) },
			func(gtx C) D { return chip(gtx, u.th, &u.btnCompareGHG, "GHG on|off", s.Compare == "GHG") },
		)
	})
}

func (u *UI) panelBranches(gtx C) D {
	s := u.snap
	for len(u.runClicks) < len(s.Runs) {
		u.runClicks = append(u.runClicks, widgetClickable())
	}
	return section(gtx, u.th, fmt.Sprintf("BRANCHES (%d)", len(s.Runs)), func(gtx C) D {
		children := []layout.FlexChild{}
		start := max(0, len(s.Runs)-8) // the newest eight
		for i := start; i < len(s.Runs); i++ {
			i := i
			r := s.Runs[i]
			children = append(children, layout.Rigid(func(gtx C) D {
				txt := fmt.Sprintf("#%d %s · %d steps", r.ID, r.Label, r.Steps)
				return layout.Inset{Bottom: 3}.Layout(gtx, func(gtx C) D {
					return chip(gtx, u.th, &u.runClicks[i], txt, r.Current)
				})
			}))
		}
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx, children...)
	})
}

func (u *UI) panelFiles(gtx C) D {
	return section(gtx, u.th, "EXPORT AND MODEL", func(gtx C) D {
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
			layout.Rigid(func(gtx C) D {
				return row(gtx, 4,
					func(gtx C) D { return button(gtx, u.th, &u.btnPNG, "PNG", false) },
					func(gtx C) D { return button(gtx, u.th, &u.btnGIFStep, "GIF step", false) },
					func(gtx C) D { return button(gtx, u.th, &u.btnGIFRun, "GIF run", false) },
					func(gtx C) D { return button(gtx, u.th, &u.btnNPY, ".npy", false) },
				)
			}),
			layout.Rigid(layout.Spacer{Height: 8}.Layout),
			layout.Rigid(func(gtx C) D {
				return row(gtx, 6,
					func(gtx C) D { return editorBox(gtx, u.th, &u.ckptEd, "checkpoint path, Enter", 210) },
					func(gtx C) D { return button(gtx, u.th, &u.btnOpen, "Open…", false) },
				)
			}),
			layout.Rigid(layout.Spacer{Height: 4}.Layout),
			layout.Rigid(func(gtx C) D {
				return row(gtx, 6,
					func(gtx C) D { return editorBox(gtx, u.th, &u.vaeEd, "VAE folder (optional)", 210) },
					func(gtx C) D { return button(gtx, u.th, &u.btnOpenVAE, "VAE…", false) },
				)
			}),
			layout.Rigid(layout.Spacer{Height: 6}.Layout),
		)
	})
}

// labelHint names the chosen classes, or says how many there are.
func (u *UI) labelHint() string {
	s := u.snap
	if len(s.Settings.Labels) > 0 && len(s.Classes) == s.Cfg.NumClasses {
		var names []string
		for _, l := range s.Settings.Labels {
			names = append(names, s.Classes[l])
		}
		return strings.Join(names, " + ") + " (Enter applies)"
	}
	return fmt.Sprintf("of %d classes, Enter applies", s.Cfg.NumClasses)
}
