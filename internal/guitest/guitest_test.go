package guitest

import (
	"image"
	"image/color"
	"testing"

	"gioui.org/io/event"
	"gioui.org/io/key"
	"gioui.org/io/semantic"
	"gioui.org/layout"
	"gioui.org/op/clip"
	"gioui.org/op/paint"
	"gioui.org/unit"
	"gioui.org/widget"
	"gioui.org/widget/material"
)

var (
	red  = color.NRGBA{R: 220, A: 255}
	blue = color.NRGBA{B: 200, A: 255}
)

// testUI is a small widget tree: a red square in the top-left corner, a
// button below it, an editor, and a blue bar whose width follows the number
// of clicks.
type testUI struct {
	th     *material.Theme
	button widget.Clickable
	editor widget.Editor
	clicks int
	keys   []key.Name
}

const (
	squareSize = 40
	buttonTop  = 60
)

func (u *testUI) layout(gtx layout.Context) layout.Dimensions {
	// Global shortcuts, as the app will register them.
	for {
		ev, ok := gtx.Event(key.Filter{Name: key.NameSpace}, key.Filter{Name: "N"})
		if !ok {
			break
		}
		if e, ok := ev.(key.Event); ok && e.State == key.Press {
			u.keys = append(u.keys, e.Name)
		}
	}
	for u.button.Clicked(gtx) {
		u.clicks++
	}
	// Keep the tag for the keys in the tree.
	event.Op(gtx.Ops, u)

	paint.FillShape(gtx.Ops, red, clip.Rect{Max: image.Pt(squareSize, squareSize)}.Op())
	paint.FillShape(gtx.Ops, blue, clip.Rect{Min: image.Pt(0, 180), Max: image.Pt(10+20*u.clicks, 190)}.Op())
	return layout.Inset{Top: buttonTop}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
			layout.Rigid(func(gtx layout.Context) layout.Dimensions {
				gtx.Constraints.Min = image.Point{}
				return material.Button(u.th, &u.button, "Grow").Layout(gtx)
			}),
			layout.Rigid(layout.Spacer{Height: unit.Dp(10)}.Layout),
			layout.Rigid(func(gtx layout.Context) layout.Dimensions {
				gtx.Constraints.Min = image.Point{}
				gtx.Constraints.Max.X = 150
				return material.Editor(u.th, &u.editor, "steps").Layout(gtx)
			}),
		)
	})
}

func TestClickTypeAndKeys(t *testing.T) {
	w := New(t, 200, 200)
	u := &testUI{th: w.Theme}
	w.Frame(u.layout)
	inButton := image.Pt(20, buttonTop+10)

	w.Click(inButton)
	w.Frame(u.layout)
	if u.clicks != 1 {
		t.Fatalf("after one click the button saw %d clicks", u.clicks)
	}
	w.Click(inButton)
	w.Click(inButton)
	w.Frame(u.layout)
	if u.clicks != 3 {
		t.Fatalf("after three clicks the button saw %d clicks", u.clicks)
	}
	w.Click(image.Pt(190, 10)) // outside every widget
	w.Frame(u.layout)
	if u.clicks != 3 {
		t.Fatalf("a click outside the button counted: %d clicks", u.clicks)
	}

	w.Key(key.NameSpace, 0)
	w.Key("N", 0)
	w.Key("Q", 0) // nobody listens
	w.Frame(u.layout)
	if len(u.keys) != 2 || u.keys[0] != key.NameSpace || u.keys[1] != "N" {
		t.Fatalf("keys seen: %v, want [Space N]", u.keys)
	}

	// Focus the editor by clicking into it, then type.
	w.Click(image.Pt(30, buttonTop+60))
	w.Frame(u.layout)
	w.Type("25")
	w.Frame(u.layout)
	w.Type("0")
	w.Frame(u.layout)
	if got := u.editor.Text(); got != "250" {
		t.Fatalf("editor holds %q after typing, want %q", got, "250")
	}
	if w.Frames() != 8 {
		t.Errorf("Frames() = %d, want 8", w.Frames())
	}
}

func TestScreenshot(t *testing.T) {
	w := New(t, 200, 200)
	u := &testUI{th: w.Theme}
	w.Frame(u.layout)
	w.Click(image.Pt(20, buttonTop+10))
	w.Click(image.Pt(20, buttonTop+10))
	w.Frame(u.layout)
	// The pointer still hovers over the button, which tints it.
	hovered := At(w.Screenshot(), 5, buttonTop+15)
	w.Move(image.Pt(190, 150))
	w.Frame(u.layout)
	img := w.Screenshot()
	SavePNG(t, img, t.Name())

	if got := img.Bounds(); got != image.Rect(0, 0, 200, 200) {
		t.Fatalf("screenshot bounds %v", got)
	}
	const tol = 2
	white := color.RGBA{255, 255, 255, 255}
	for _, c := range []struct {
		name string
		p    image.Point
		want color.RGBA
	}{
		{"square top-left", image.Pt(1, 1), color.RGBA{220, 0, 0, 255}},
		{"square centre", image.Pt(20, 20), color.RGBA{220, 0, 0, 255}},
		{"square bottom-right", image.Pt(squareSize-1, squareSize-1), color.RGBA{220, 0, 0, 255}},
		{"right of the square", image.Pt(squareSize, 20), white},
		{"below the square", image.Pt(20, squareSize+5), white},
		{"background corner", image.Pt(199, 0), white},
		{"bar after two clicks", image.Pt(49, 185), color.RGBA{0, 0, 200, 255}},
		{"past the bar", image.Pt(50, 185), white},
	} {
		if got := At(img, c.p.X, c.p.Y); !Near(got, c.want, tol) {
			t.Errorf("%s at %v: got %v, want %v", c.name, c.p, got, c.want)
		}
	}
	if n := Count(img, image.Rect(0, 0, squareSize, squareSize), color.RGBA{220, 0, 0, 255}, tol); n != squareSize*squareSize {
		t.Errorf("square has %d red pixels, want %d", n, squareSize*squareSize)
	}
	// The button is drawn in the theme's contrast colour behind white text:
	// both must show up in its box.
	btn := image.Rect(0, buttonTop, 80, buttonTop+40)
	bg := w.Theme.Palette.ContrastBg
	if n := Count(img, btn, color.RGBA{bg.R, bg.G, bg.B, 255}, 8); n < 200 {
		t.Errorf("button background: %d pixels of %v in %v", n, bg, btn)
	}
	if got := At(img, 5, buttonTop+15); got == hovered || !Near(got, color.RGBA{bg.R, bg.G, bg.B, 255}, tol) {
		t.Errorf("button colour after the pointer left: %v (hovered: %v), want %v", got, hovered, bg)
	}
	if n := Count(img, btn, white, 8); n < 20 {
		t.Errorf("button label: %d white pixels in %v", n, btn)
	}
}

func TestNear(t *testing.T) {
	a := color.RGBA{10, 20, 30, 255}
	if !Near(a, color.RGBA{12, 18, 30, 253}, 2) || Near(a, color.RGBA{13, 20, 30, 255}, 2) {
		t.Error("Near tolerance is wrong")
	}
}

// TestDragMovesSlider drags a slider's thumb: the router must accept the
// queued moves and deliver them to the slider as a drag.
func TestDragMovesSlider(t *testing.T) {
	w := New(t, 200, 40)
	var f widget.Float
	ui := func(gtx layout.Context) layout.Dimensions {
		gtx.Constraints.Min.X = gtx.Constraints.Max.X
		return material.Slider(w.Theme, &f).Layout(gtx)
	}
	w.Frame(ui)
	w.Drag(image.Pt(5, 10), image.Pt(150, 10), 5)
	w.Frame(ui)
	if f.Value < 0.6 || f.Value > 0.9 {
		t.Fatalf("slider value after dragging to x=150 of 200: %v, want about 0.75", f.Value)
	}
}

// TestFindAndClickOn finds two buttons by their semantic description and
// clicks one through it.
func TestFindAndClickOn(t *testing.T) {
	w := New(t, 200, 120)
	var a, b widget.Clickable
	clicks := map[string]int{}
	ui := func(gtx layout.Context) layout.Dimensions {
		for a.Clicked(gtx) {
			clicks["a"]++
		}
		for b.Clicked(gtx) {
			clicks["b"]++
		}
		btn := func(c *widget.Clickable, name string) layout.Widget {
			return func(gtx layout.Context) layout.Dimensions {
				return c.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
					semantic.DescriptionOp(name).Add(gtx.Ops)
					return layout.Dimensions{Size: image.Pt(60, 30)}
				})
			}
		}
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
			layout.Rigid(btn(&a, "first")),
			layout.Rigid(layout.Spacer{Height: 20}.Layout),
			layout.Rigid(btn(&b, "second")))
	}
	w.Frame(ui)
	r, ok := w.Find("second")
	if !ok || r != image.Rect(0, 50, 60, 80) {
		t.Fatalf("second button at %v (found %v), want (0,50)-(60,80)", r, ok)
	}
	if _, ok := w.Find("third"); ok {
		t.Error("found a control that does not exist")
	}
	w.ClickOn("second")
	w.Frame(ui)
	if clicks["b"] != 1 || clicks["a"] != 0 {
		t.Errorf("clicks %v after ClickOn(second)", clicks)
	}
}

func TestLabels(t *testing.T) {
	w := New(t, 200, 60)
	ui := func(gtx layout.Context) layout.Dimensions {
		return material.Label(w.Theme, 12, "mean |ε| 0.42").Layout(gtx)
	}
	w.Frame(ui)
	if !w.HasLabel("|ε| 0.42") || w.HasLabel("0.43") {
		t.Errorf("labels %q", w.Labels())
	}
}
