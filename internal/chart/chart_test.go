package chart

import (
	"image/color"
	"math"
	"slices"
	"testing"
)

func TestTicks(t *testing.T) {
	if got := ticks(0, 1, false); !slices.Equal(got, []float64{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1}) && len(got) != 6 {
		t.Errorf("ticks(0, 1) = %v", got)
	}
	if got := ticks(0, math.Log10(64), true); !slices.Equal(got, []float64{1, 2, 5, 10, 20, 50}) {
		t.Errorf("log ticks 1…64 = %v", got)
	}
	for _, c := range [][2]float64{{-3, 7}, {0.001, 0.0013}, {100, 5000}} {
		got := ticks(c[0], c[1], false)
		if len(got) < 2 || len(got) > 7 || got[0] < c[0]-1e-12 || got[len(got)-1] > c[1]+1e-9 {
			t.Errorf("ticks(%v, %v) = %v", c[0], c[1], got)
		}
	}
}

func TestLineDrawsSeriesAndMark(t *testing.T) {
	p := &Line{Title: "error vs M", XLabel: "M", YLabel: "MSE", LogX: true,
		Series: []Series{{Name: "t=100", X: []float64{1, 2, 4, 8}, Y: []float64{0.5, 0.3, 0.2, 0.25}, Color: color.RGBA{255, 0, 0, 255}},
			{Name: "gap", X: []float64{1, 2}, Y: []float64{math.NaN(), 0.4}}},
		Marks: []Mark{{X: 4, Label: "trained"}}}
	img := p.Draw(480, 300)
	red := 0
	for i := 0; i < len(img.Pix); i += 4 {
		if img.Pix[i] == 255 && img.Pix[i+1] == 0 && img.Pix[i+2] == 0 {
			red++
		}
	}
	if red < 100 {
		t.Errorf("%d red pixels: the series is not drawn", red)
	}
	// The point at M=1 (leftmost) is higher than the one at M=4.
	col := func(x int) (top int) {
		for y := 0; y < 300; y++ {
			if c := img.RGBAAt(x, y); c.R == 255 && c.G == 0 && c.B == 0 {
				return y
			}
		}
		return -1
	}
	if l, r := col(71), col(70+(480-90)*2/3); l < 0 || r < 0 || l >= r {
		t.Errorf("first point at y=%d, M=4 at y=%d: want the first higher", l, r)
	}
}

func TestHeatColoursByValue(t *testing.T) {
	p := &Heat{Title: "x", Cols: []string{"1", "2"}, Rows: []string{"a", "b"}, Values: [][]float64{{1, 2}, {3, math.NaN()}}, MarkCol: 1, MarkLabel: "M"}
	img := p.Draw()
	lo, hi := img.RGBAAt(p.leftForTest()+5, 34+5), img.RGBAAt(p.leftForTest()+5, 34+36+5)
	if lo != Viridis(0) || hi != Viridis(1) {
		t.Errorf("cells coloured %v and %v, want the ends of the scale", lo, hi)
	}
	if nan := img.RGBAAt(p.leftForTest()+36+10, 34+36+10); nan != grey {
		t.Errorf("NaN cell %v, want grey", nan)
	}
}

func (p *Heat) leftForTest() int {
	w := 0
	for _, r := range p.Rows {
		w = max(w, textWidth(r))
	}
	return 20 + w + 10
}
