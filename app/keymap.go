package app

import (
	"image"
	"math/rand/v2"

	"gioui.org/f32"
	"gioui.org/io/key"
	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/op/clip"
	"gioui.org/op/paint"
	"gioui.org/widget"
	"gioui.org/widget/material"

	"geca/render"
)

// chord is a key with the modifiers it needs.
type chord struct {
	name  key.Name
	mods  key.Modifiers // required exactly (Shift and Ctrl)
	shift bool          // Shift may be held or not (keys typed with Shift, like ?)
}

// binding is one line of the keymap: the keys that do it, how the help
// overlay writes them, what it says, and what it does. The same table drives
// the keys and the help, so they cannot drift apart.
type binding struct {
	keys []chord
	shown,
	what string
	do func(u *UI) []Cmd
}

func k(name key.Name) chord               { return chord{name: name} }
func shiftK(name key.Name) chord          { return chord{name: name, mods: key.ModShift} }
func ctrlK(name key.Name) chord           { return chord{name: name, mods: key.ModCtrl} }
func anyShift(name key.Name) chord        { return chord{name: name, shift: true} }
func one(c Command) func(u *UI) []Cmd     { return func(*UI) []Cmd { return []Cmd{c} } }
func win(f func(u *UI)) func(u *UI) []Cmd { return func(u *UI) []Cmd { f(u); return nil } }

// keymap is the table of keyboard shortcuts.
func keymap() []binding {
	views := []binding{}
	for v := render.View(0); v < render.NumViews; v++ {
		views = append(views, binding{keys: []chord{k(key.Name(viewKey(v)))}, do: win(func(u *UI) { u.setView(v) })})
	}
	table := []binding{
		{[]chord{k(key.NameSpace)}, "Space", "play / pause", one(TogglePlay{})},
		{[]chord{k(key.NameRightArrow), k("N")}, "→  or  N", "step one cell update", one(StepUpdate{})},
		{[]chord{shiftK(key.NameRightArrow), k("T")}, "Shift+→  or  T", "step one timestep", one(StepTimestep{})},
		{[]chord{k(key.NameLeftArrow), shiftK(key.NameLeftArrow)}, "←  /  Shift+←", "back one update / one timestep (history)", stepBack},
		{[]chord{k(key.NameHome), k(key.NameEnd)}, "Home  /  End", "first / newest recorded frame", homeEnd},
		{[]chord{k("R")}, "R", "reset: back to the start (same seed; the history stays)", one(Restart{})},
		{[]chord{k("D")}, "D", "dice: a new random seed (a new run; the others stay)", func(u *UI) []Cmd { return []Cmd{dice(u)} }},
		{[]chord{shiftK("D")}, "Shift+D", "demo preset: the seed's growth, slowly, with captions", func(*UI) []Cmd { return []Cmd{demoPreset()} }},
		{[]chord{k("["), k("]")}, "[  /  ]", "M − 1 / M + 1 (branches)", stepM},
		{[]chord{k("G")}, "G", "GHG on / off (branches)", toggleGHG},
		{[]chord{k(","), k(".")}, ",  /  .", "slower / faster", speedKey},
		{nil, "1 … 9", "views: x₀, x_t, ε (v̂ for a v model), v, hidden, PCA, |update|, alive, attention", nil},
		{[]chord{k("I")}, "I", "view: seed influence (how far each cell differs without the seed)", win(func(u *UI) { u.setView(render.ViewInfluence) })},
		{[]chord{shiftK("I")}, "Shift+I", "dim the cells outside the seed's reach (any view)", win(func(u *UI) { u.reach = !u.reach; u.syncInfluence() })},
		{[]chord{k("V"), k("C")}, "V  /  C", "next view / next channel", nextViewOrChannel},
		{[]chord{shiftK("V")}, "Shift+V", "x₀ through the VAE decode (latent models with a VAE)", win(func(u *UI) { u.decoded = !u.decoded })},
		{[]chord{anyShift("+"), k("="), k("-"), k("0")}, "+  /  −  /  0", "zoom in / out / fit", zoomKey},
		{[]chord{k("B")}, "B", "damage brush: off → erase → perturb → blank the image", win(cycleBrush)},
		{[]chord{ctrlK("Z"), k("U")}, "Ctrl+Z  or  U", "undo the last damage stroke", one(Undo{})},
		{[]chord{k("K"), shiftK("K")}, "K  /  Shift+K", "compare M (the Compare field's values) from here / from the start; again: off", compareKey},
		{[]chord{k("P"), shiftK("P")}, "P  /  Shift+P", "export PNG of the view / GIF of this timestep", exportKey},
		{[]chord{shiftK("R")}, "Shift+R", "export GIF of the whole run", win(func(u *UI) { u.exportGIF(true) })},
		{[]chord{k("E"), shiftK("E")}, "E  /  Shift+E", "export the grid as .npy / the growth numbers as CSV", exportData},
		{[]chord{k("O")}, "O", "open a checkpoint", win(func(u *UI) { u.openDialog(false) })},
		{[]chord{k(key.NameEscape)}, "Esc", "close help, dismiss messages, clear the selected cell", escape},
		{[]chord{anyShift("?"), k(key.NameF1), shiftK("/")}, "?  or  F1", "this help", win(func(u *UI) { u.help = !u.help })},
	}
	return append(table, views...)
}

// mouseHelp is the help overlay's account of the mouse.
const mouseHelp = "Mouse: click a cell to inspect it · drag to pan · wheel to zoom · hover a bar or a plot for its value · " +
	"with the brush on (B), drag on the grid to damage it"

func (c chord) matches(e key.Event) bool {
	if e.Name != c.name {
		return false
	}
	mods := e.Modifiers & (key.ModShift | key.ModCtrl)
	if c.shift {
		mods &^= key.ModShift
	}
	return mods == c.mods
}

// handleKeys turns key presses into commands through the keymap. While an
// editor has the focus the keys are left to it (Enter, arrows, Backspace),
// except Esc, which gives the focus back to the window.
func (u *UI) handleKeys(gtx C) []Cmd {
	if u.side.editing(gtx) {
		for {
			ev, ok := gtx.Event(key.Filter{Name: key.NameEscape})
			if !ok {
				break
			}
			if e, ok := ev.(key.Event); ok && e.State == key.Press {
				cancelKeyFocus(gtx, u)
			}
		}
		return nil
	}
	var cmds []Cmd
	for {
		ev, ok := gtx.Event(key.Filter{Name: "", Optional: key.ModShift | key.ModCtrl})
		if !ok {
			break
		}
		e, ok := ev.(key.Event)
		if !ok || e.State != key.Press {
			continue
		}
		if b := u.binding(e); b != nil {
			u.pressed = e
			cmds = append(cmds, b.do(u)...)
		}
	}
	return cmds
}

// binding returns the keymap line that key event e triggers.
func (u *UI) binding(e key.Event) *binding {
	for i := range u.keys {
		for _, c := range u.keys[i].keys {
			if c.matches(e) && u.keys[i].do != nil {
				return &u.keys[i]
			}
		}
	}
	return nil
}

func (u *UI) shiftHeld() bool { return u.pressed.Modifiers.Contain(key.ModShift) }

func stepBack(u *UI) []Cmd {
	p := u.snap.Panes[u.snap.Active]
	switch {
	case u.shiftHeld():
		return []Cmd{Seek{K: max(p.K-1, 0), U: 0}}
	case p.U > 0:
		return []Cmd{Seek{K: p.K, U: p.U - 1}}
	case p.K > 0:
		return []Cmd{Seek{K: p.K - 1, U: 1 << 30}}
	}
	return nil
}

func homeEnd(u *UI) []Cmd {
	if u.pressed.Name == key.NameHome {
		return []Cmd{Seek{K: 0, U: 0}}
	}
	return []Cmd{Seek{K: 1 << 30, U: 1 << 30}}
}

func dice(u *UI) Cmd {
	ns := u.snap.Base
	ns.Seed = rand.Uint64() % 1000000
	return Restart{Settings: &ns, Label: "seed " + itoa(ns.Seed)}
}

func stepM(u *UI) []Cmd {
	m := u.snap.Settings.M - 1
	if u.pressed.Name == "]" {
		m = u.snap.Settings.M + 1
	}
	if m < 1 || m > MaxM {
		return nil
	}
	return []Cmd{Change{M: &m}}
}

func toggleGHG(u *UI) []Cmd {
	v := !u.snap.Settings.GHG
	return []Cmd{Change{GHG: &v}}
}

func speedKey(u *UI) []Cmd {
	i := 0
	for j, sp := range speeds {
		if sp == u.snap.Speed {
			i = j
		}
	}
	if u.pressed.Name == "," {
		i = max(i-1, 0)
	} else {
		i = min(i+1, len(speeds)-1)
	}
	return []Cmd{SetSpeed{UpdatesPerSecond: speeds[i]}}
}

func nextViewOrChannel(u *UI) []Cmd {
	if u.pressed.Name == "V" {
		u.setView((u.view + 1) % render.NumViews)
	} else {
		u.cycleChannel(1)
	}
	return nil
}

func zoomKey(u *UI) []Cmd {
	switch u.pressed.Name {
	case "+", "=":
		u.canvas.zoomAll(1.25)
	case "-":
		u.canvas.zoomAll(0.8)
	default:
		u.canvas.fit()
	}
	return nil
}

func cycleBrush(u *UI) {
	switch {
	case !u.brushOn:
		u.brushOn, u.brush = true, BrushErase
	case u.brush == BrushErase:
		u.brush = BrushPerturb
	case u.brush == BrushPerturb:
		u.brush = BrushBlank
	default:
		u.brushOn = false
	}
}

func compareKey(u *UI) []Cmd {
	if u.snap.Compare.Kind != CompareOff {
		return []Cmd{Compare{}}
	}
	return u.side.compare.compareM(u, u.shiftHeld())
}

func exportKey(u *UI) []Cmd {
	if u.shiftHeld() {
		u.exportGIF(false)
	} else {
		u.exportPNG()
	}
	return nil
}

func exportData(u *UI) []Cmd {
	if u.shiftHeld() {
		u.exportCSV()
	} else {
		u.exportNPY()
	}
	return nil
}

// escape closes the help, else dismisses the error banner and the status
// message, else clears the selected cell.
func escape(u *UI) []Cmd {
	switch {
	case u.help:
		u.help = false
	case u.snap.Error != "" || u.msg.text != "":
		u.msg = message{}
		if u.snap.Error != "" {
			return []Cmd{ClearError{}}
		}
	default:
		return []Cmd{Select{I: -1}}
	}
	return nil
}

func (u *UI) cycleChannel(d int) {
	cin := u.snap.Cfg.InChannels
	switch u.view {
	case render.ViewHidden:
		nh := u.snap.Cfg.HiddenChannels
		if nh > 0 {
			for i := range u.hidden {
				u.hidden[i] = ((u.hidden[i]+3*d)%nh + nh) % nh
			}
		}
	default:
		if cin > 0 {
			u.channel = ((u.channel+d)%cin + cin) % cin
		}
	}
}

// helpOverlay lists the keymap.
type helpOverlay struct {
	close  widget.Clickable
	list   widget.List
	bottom int // where the overlay ended in the last frame (window y)
}

func (h *helpOverlay) Layout(gtx C, u *UI) {
	if h.close.Clicked(gtx) {
		u.help = false
	}
	paint.FillShape(gtx.Ops, colorA(colCanvas, 0xd8), clip.Rect{Max: gtx.Constraints.Max}.Op())
	w := min(gtx.Dp(620), gtx.Constraints.Max.X-gtx.Dp(24))
	x := (gtx.Constraints.Max.X - w) / 2
	top := gtx.Dp(12)
	defer op.Offset(image.Pt(max(x, 0), top)).Push(gtx.Ops).Pop()
	gtx.Constraints = layout.Constraints{Min: image.Pt(w, 0), Max: image.Pt(w, gtx.Constraints.Max.Y-2*top)}
	var lines []binding
	for _, b := range u.keys {
		if b.shown != "" {
			lines = append(lines, b)
		}
	}
	h.list.Axis = layout.Vertical
	d := withBg(gtx, colPanel, func(gtx C) D {
		gtx.Constraints.Min.X = w
		return layout.UniformInset(14).Layout(gtx, func(gtx C) D {
			return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
				layout.Rigid(func(gtx C) D {
					return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
						layout.Flexed(1, bold(label(u.th, 16, colText, "Keyboard shortcuts")).Layout),
						layout.Rigid(func(gtx C) D { return button(gtx, u.th, &h.close, "close (Esc)", false) }),
					)
				}),
				// the mouse comes first, so a short window never cuts it off
				layout.Rigid(func(gtx C) D {
					l := label(u.th, 12, colMuted, mouseHelp)
					l.MaxLines = 0
					return layout.Inset{Top: 6, Bottom: 8}.Layout(gtx, l.Layout)
				}),
				// the keys scroll when the window is too short for all of them
				layout.Flexed(1, func(gtx C) D {
					return material.List(u.th, &h.list).Layout(gtx, len(lines), func(gtx C, i int) D {
						b := lines[i]
						return layout.Inset{Bottom: 1}.Layout(gtx, func(gtx C) D {
							return layout.Flex{}.Layout(gtx,
								layout.Rigid(func(gtx C) D {
									gtx.Constraints.Min.X = gtx.Dp(130)
									return bold(label(u.th, 12, colAccent, b.shown)).Layout(gtx)
								}),
								layout.Flexed(1, func(gtx C) D {
									l := label(u.th, 12, colText, b.what)
									l.MaxLines = 0 // wraps: never cut off
									return l.Layout(gtx)
								}),
							)
						})
					})
				}),
			)
		})
	})
	h.bottom = top + d.Size.Y
}

// opAffineAt pushes a scale by (sx, sy) and a move to (x, y).
func opAffineAt(gtx C, x, y int, sx, sy float32) op.TransformStack {
	return op.Affine(f32.Affine2D{}.Scale(f32.Point{}, f32.Pt(sx, sy)).Offset(f32.Pt(float32(x), float32(y)))).Push(gtx.Ops)
}
