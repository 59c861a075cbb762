package app

import (
	"fmt"
	"image"
	"os"
	"strconv"
	"strings"
	"time"

	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/widget"

	"geca/internal/membudget"
)

// statusBar is the bottom line: what the runner does and how fast, the
// latest message (which wins the space), background work, and the model,
// device and memory in short.
type statusBar struct {
	rss residentMemory
	// shown records the message as laid out in the last frame: its text,
	// the width it got and the width it needs (tests read it).
	shown struct {
		text        string
		given, need int
	}
}

// playState says what the runner does: "paused", "finished", or the play
// rate asked for and the rate achieved.
func playState(s *Snapshot, atEnd bool) string {
	switch {
	case s.Playing && s.Speed > 0:
		if s.Achieved > 0 {
			return fmt.Sprintf("playing %g/s · achieved %.1f upd/s", s.Speed, s.Achieved)
		}
		return fmt.Sprintf("playing %g/s", s.Speed)
	case s.Playing:
		if s.Achieved > 0 {
			return fmt.Sprintf("playing max · achieved %.1f upd/s", s.Achieved)
		}
		return "playing max"
	case atEnd:
		return "finished"
	}
	return "paused"
}

// shortDevice is the device line up to its first explanation, for the
// status bar; the model panel shows all of it.
func shortDevice(d string) string {
	if i := strings.IndexAny(d, "(;:"); i > 0 {
		d = strings.TrimSpace(d[:i])
	}
	return d
}

func (b *statusBar) Layout(gtx C, u *UI) D {
	s := u.snap
	return withBg(gtx, colPanelAlt, func(gtx C) D {
		gtx.Constraints.Min.X = gtx.Constraints.Max.X
		return layout.Inset{Left: 12, Right: 12, Top: 4, Bottom: 4}.Layout(gtx, func(gtx C) D {
			atEnd := len(s.Panes) > 0 && allDone(s)
			state := playState(s, atEnd)
			if bz := u.r.Busy(); bz > 150*time.Millisecond {
				state += fmt.Sprintf(" · computing %.1f s", bz.Seconds())
			}
			if s.Status != "" {
				state += " · " + s.Status
			}
			var children []layout.FlexChild
			if s.Untrained {
				children = append(children, layout.Rigid(func(gtx C) D {
					return layout.Inset{Right: 10}.Layout(gtx, bold(label(u.th, 12, colWarn, "UNTRAINED random weights: open a checkpoint (O)")).Layout)
				}))
			}
			children = append(children,
				layout.Rigid(func(gtx C) D {
					c := colText
					if atEnd && !s.Playing {
						c = colGreen
					}
					return label(u.th, 12, c, state).Layout(gtx)
				}),
				layout.Rigid(layout.Spacer{Width: 14}.Layout),
			)
			for _, j := range u.bg.running() {
				txt := j.name + "…"
				if j.total > 0 {
					txt = fmt.Sprintf("%s %d/%d", j.name, j.done, j.total)
				}
				children = append(children, layout.Rigid(func(gtx C) D {
					return layout.Inset{Right: 14}.Layout(gtx, label(u.th, 12, colAccent, txt).Layout)
				}))
			}
			// the message is laid out before the model and device line, so it
			// gets the width it needs and they get what is left
			if u.msg.text != "" {
				c := colGreen
				if u.msg.err {
					c = colError
				}
				children = append(children, layout.Rigid(func(gtx C) D {
					l := label(u.th, 12, c, u.msg.text)
					b.shown.text, b.shown.given, b.shown.need = u.msg.text, gtx.Constraints.Max.X, naturalWidth(gtx, l)
					return layout.Inset{Right: 14}.Layout(gtx, func(gtx C) D { return u.checked(gtx, l) })
				}))
			} else {
				b.shown.text = ""
			}
			mem := ""
			if rss := b.rss.bytes(); rss > 0 {
				mem = "memory " + membudget.Format(rss) + " · "
			}
			right := fmt.Sprintf("%s · %s · %shistory %s of %s · update %.0f ms · ui %.1f ms", s.Model, shortDevice(s.Device),
				mem, membudget.Format(s.History), membudget.Format(s.Budget), float64(s.LastUpdate.Microseconds())/1000, u.medianFrameMs())
			if s.Device == "" {
				right = strings.Replace(right, " ·  · ", " · ", 1)
			}
			children = append(children, layout.Flexed(1, func(gtx C) D {
				l := label(u.th, 12, colMuted, right)
				if s.OverBudget {
					l.Color = colWarn
				}
				l.Alignment = 2 // text.End
				gtx.Constraints.Min.X = gtx.Constraints.Max.X
				return l.Layout(gtx)
			}))
			return layout.Flex{Alignment: layout.Middle}.Layout(gtx, children...)
		})
	})
}

// allDone reports whether every pane shows its final sample.
func allDone(s *Snapshot) bool {
	for _, p := range s.Panes {
		if p.Frame == nil || !p.Frame.Done {
			return false
		}
	}
	return true
}

// errorBanner shows the runner's error over the canvas until dismissed
// (its button or Esc).
type errorBanner struct {
	dismiss widget.Clickable
	at      image.Point // the dismiss button's centre in the last frame
}

func (b *errorBanner) Update(gtx C, l *look) []Cmd {
	if b.dismiss.Clicked(gtx) {
		return []Cmd{ClearError{}}
	}
	return nil
}

func (b *errorBanner) Layout(gtx C, u *UI) {
	off := image.Pt(gtx.Dp(16), u.top.height+gtx.Dp(8))
	defer op.Offset(off).Push(gtx.Ops).Pop()
	w := min(gtx.Constraints.Max.X-gtx.Dp(32+sidePanelWidth), gtx.Dp(820))
	gtx.Constraints = layout.Constraints{Min: image.Pt(w, 0), Max: image.Pt(w, gtx.Constraints.Max.Y)}
	var btn D
	d := withBg(gtx, colError, func(gtx C) D {
		return layout.Inset{Left: 12, Right: 8, Top: 8, Bottom: 8}.Layout(gtx, func(gtx C) D {
			return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
				layout.Flexed(1, func(gtx C) D {
					l := label(u.th, 13, colText, u.snap.Error)
					l.MaxLines = 4
					return l.Layout(gtx)
				}),
				layout.Rigid(layout.Spacer{Width: 8}.Layout),
				layout.Rigid(func(gtx C) D {
					btn = button(gtx, u.th, &b.dismiss, "dismiss (Esc)", false)
					return btn
				}),
			)
		})
	})
	b.at = off.Add(image.Pt(d.Size.X-gtx.Dp(8)-btn.Size.X/2, d.Size.Y/2))
}

// errorDismissAt is the window position of the error banner's dismiss
// button in the last frame.
func (u *UI) errorDismissAt() image.Point { return u.banner.at }

// residentMemory reads the process's resident memory (Linux), at most once
// a second: the history's budget is what the viewer controls, this is what
// the machine sees (the Go heap, the model, BLAS buffers, Gio).
type residentMemory struct {
	at   time.Time
	last int64
}

func (m *residentMemory) bytes() int64 {
	if time.Since(m.at) < time.Second {
		return m.last
	}
	m.at = time.Now()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0
	}
	m.last = pages * int64(os.Getpagesize())
	return m.last
}
