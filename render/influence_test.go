package render

import (
	"image"
	"image/color"
	"testing"

	"geca/engine"
)

func TestInfluenceImage(t *testing.T) {
	vals := []float32{0, 1e-9, 1e-3, 1, 0, 0}
	img := InfluenceImage(vals, 2, 3)
	if c := img.RGBAAt(0, 0); c != UnreachedColor {
		t.Errorf("zero influence drawn %v, want the unreached colour", c)
	}
	if c := img.RGBAAt(1, 0); c == UnreachedColor {
		t.Error("a tiny but non-zero influence is drawn as zero")
	}
	if c := img.RGBAAt(1, 0); c != Heat.At(0.12) {
		t.Errorf("influence below the log range drawn %v, want the scale's start %v", c, Heat.At(0.12))
	}
	if c := img.RGBAAt(0, 1); c != Heat[255] {
		t.Errorf("largest influence drawn %v, want %v", c, Heat[255])
	}
	// 1e-3 of the largest: half way along the 6-decade log scale
	if got, want := img.RGBAAt(2, 0), Heat.At(0.12+0.88*0.5); got != want {
		t.Errorf("1e-3 of the largest drawn %v, want %v", got, want)
	}
}

func TestDimKeepsReachedCells(t *testing.T) {
	// a 2x2 grid drawn 2 pixels per cell
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	for i := range img.Pix {
		img.Pix[i] = 200
	}
	out := Dim(img, []bool{true, false, false, true}, 2, 2)
	if c := out.RGBAAt(1, 1); c != (color.RGBA{200, 200, 200, 200}) {
		t.Errorf("reached cell changed to %v", c)
	}
	if c := out.RGBAAt(3, 0); c != (color.RGBA{50, 50, 50, 200}) {
		t.Errorf("cell outside the reach drawn %v, want a quarter", c)
	}
	if img.RGBAAt(3, 0).R != 200 {
		t.Error("Dim changed its input")
	}
}

func TestDifference(t *testing.T) {
	cfg := engine.Config{GridH: 1, GridW: 3, InChannels: 1, HiddenChannels: 1}
	a := &Source{Cfg: cfg, X0: []float32{0.5, 0, -1}, State: engine.NewState(1, 1, 3, cfg.CellDim())}
	b := &Source{Cfg: cfg, X0: []float32{0, 0, 1}, State: engine.NewState(1, 1, 3, cfg.CellDim())}
	img, lim, err := Difference(ViewX0, a, b, 0)
	if err != nil {
		t.Fatal(err)
	}
	if lim != 2 || img.RGBAAt(1, 0) != Diverging.At(0.5) || img.RGBAAt(2, 0) != Diverging.At(0) || img.RGBAAt(0, 0) != Diverging.At(0.625) {
		t.Errorf("x0 difference: lim %v, pixels %v %v %v", lim, img.RGBAAt(0, 0), img.RGBAAt(1, 0), img.RGBAAt(2, 0))
	}
	// any other view: the distance of the cells' C_out and C_h
	a.State.Cell(0, 0, 1)[1], a.State.Cell(0, 0, 1)[3] = 3, 4
	img, lim, err = Difference(ViewHidden, a, b, 0)
	if err != nil {
		t.Fatal(err)
	}
	if lim != 5 || img.RGBAAt(1, 0) != Heat[255] || img.RGBAAt(0, 0) != Heat[0] {
		t.Errorf("state distance: lim %v, pixels %v %v", lim, img.RGBAAt(0, 0), img.RGBAAt(1, 0))
	}
}
