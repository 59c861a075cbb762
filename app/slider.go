package app

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"gioui.org/layout"
	"gioui.org/text"
	"gioui.org/widget"
	"gioui.org/widget/material"
)

// valueSlider is a setting's slider with a typed entry beside it. A drag
// shows the value it would set and commits it once, on release, so one drag
// is one branch; Enter in the entry commits the typed value, which may lie
// beyond the slider's range within the setting's limits.
type valueSlider struct {
	name     string
	lo, hi   float64 // the slider's range
	step     float64 // the slider's resolution
	min, max float64 // what the entry accepts
	integer  bool
	format   func(float64) string

	float    widget.Float
	entry    widget.Editor
	dragging bool
	value    float64 // the committed value, as the runner last reported it
}

func newValueSlider(name string, lo, hi, step, min, max float64, integer bool, format func(float64) string) *valueSlider {
	s := &valueSlider{name: name, lo: lo, hi: hi, step: step, min: min, max: max, integer: integer, format: format}
	s.entry.SingleLine, s.entry.Submit = true, true
	return s
}

// slid is the value under the slider's knob.
func (s *valueSlider) slid() float64 {
	v := s.lo + float64(s.float.Value)*(s.hi-s.lo)
	return math.Round(v/s.step) * s.step
}

// show puts value v on the slider and, unless it is being typed in, in the
// entry.
func (s *valueSlider) show(gtx C, v float64) {
	s.value = v
	if !s.dragging {
		s.float.Value = float32(min(max((v-s.lo)/(s.hi-s.lo), 0), 1))
	}
	if !gtx.Focused(&s.entry) {
		if t := s.format(v); s.entry.Text() != t {
			s.entry.SetText(t)
		}
	}
}

// Update reports a committed value: a drag just released, or an entry
// submitted. A typed value that is not valid comes back as err.
func (s *valueSlider) Update(gtx C) (v float64, committed bool, err error) {
	if s.float.Update(gtx) || s.float.Dragging() {
		s.dragging = true
	} else if s.dragging {
		s.dragging = false
		if v := s.slid(); v != s.value {
			return v, true, nil
		}
	}
	for {
		ev, ok := s.entry.Update(gtx)
		if !ok {
			break
		}
		if _, ok := ev.(widget.SubmitEvent); !ok {
			continue
		}
		v, err := s.parse(s.entry.Text())
		if err != nil {
			return 0, false, err
		}
		gtx.Execute(focusNone())
		return v, true, nil
	}
	return 0, false, nil
}

// parse reads a typed value within the setting's limits.
func (s *valueSlider) parse(t string) (float64, error) {
	t = strings.TrimSpace(t)
	if strings.EqualFold(t, "off") && s.min <= 1 && s.name == "CFG scale" {
		return 1, nil
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%s: %q is not a number", s.name, t)
	}
	if s.integer && v != math.Trunc(v) {
		return 0, fmt.Errorf("%s: %q is not a whole number", s.name, t)
	}
	if v < s.min || v > s.max {
		return 0, fmt.Errorf("%s: %s is outside [%s, %s]", s.name, t, s.format(s.min), s.format(s.max))
	}
	return v, nil
}

// Layout draws "name [slider] [entry]"; while dragging, the entry shows the
// value the release would set.
func (s *valueSlider) Layout(gtx C, th *material.Theme) D {
	if s.dragging {
		if t := s.format(s.slid()); s.entry.Text() != t {
			s.entry.SetText(t)
		}
	}
	return layout.Flex{Alignment: layout.Middle}.Layout(gtx,
		layout.Rigid(func(gtx C) D {
			gtx.Constraints.Min.X = gtx.Dp(78)
			return label(th, 12, colMuted, s.name).Layout(gtx)
		}),
		layout.Flexed(1, func(gtx C) D {
			sl := material.Slider(th, &s.float)
			sl.Color = colAccent
			return sl.Layout(gtx)
		}),
		layout.Rigid(layout.Spacer{Width: 6}.Layout),
		layout.Rigid(func(gtx C) D { return editorBox(gtx, th, &s.entry, s.name, 52, text.End) }),
	)
}
