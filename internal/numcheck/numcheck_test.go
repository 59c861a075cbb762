package numcheck

import (
	"math"
	"testing"
)

func TestMeasures(t *testing.T) {
	nan := float32(math.NaN())
	for _, c := range []struct {
		name           string
		got, want      []float32
		rel, maxRel    float64
		maxAbs, maxRef float64
	}{
		{"equal", []float32{1, -2}, []float32{1, -2}, 0, 0, 0, 2},
		// ‖(0, 1)‖ / ‖(3, 4)‖ = 1/5; max |d| / max |want| = 1/4
		{"off by one", []float32{3, 5}, []float32{3, 4}, 0.2, 0.25, 1, 4},
		{"zero reference", []float32{3, 4}, []float32{0, 0}, 5, 4, 4, 0},
		{"length", []float32{1}, []float32{1, 2}, math.Inf(1), math.Inf(1), math.Inf(1), 0},
		{"NaN", []float32{nan, 1}, []float32{1, 1}, math.Inf(1), math.Inf(1), math.Inf(1), 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			if r := RelErr(c.got, c.want); !(math.Abs(r-c.rel) <= 1e-12) && r != c.rel { // equal infinities pass
				t.Errorf("RelErr = %v, want %v", r, c.rel)
			}
			if r := MaxRelErr(c.got, c.want); !(math.Abs(r-c.maxRel) <= 1e-12) && r != c.maxRel {
				t.Errorf("MaxRelErr = %v, want %v", r, c.maxRel)
			}
			d, s := MaxAbsErr(c.got, c.want)
			if d != c.maxAbs || s != c.maxRef {
				t.Errorf("MaxAbsErr = %v, %v; want %v, %v", d, s, c.maxAbs, c.maxRef)
			}
		})
	}
}

func TestWorstOutside(t *testing.T) {
	nan := float32(math.NaN())
	want := []float32{1, 10, 100}
	for _, c := range []struct {
		name       string
		got        []float32
		rtol, atol float64
		at         int
	}{
		{"within", []float32{1.05, 10.5, 105}, 0.05, 0.01, -1},
		{"relative bound", []float32{1, 10.6, 104}, 0.05, 0, 1},
		{"absolute bound", []float32{1.2, 10, 100.1}, 0, 0.15, 0},
		{"worst of two", []float32{1.2, 10, 101}, 0, 0.15, 2},
		{"NaN", []float32{1.2, nan, 100}, 0, 0.15, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			if at := WorstOutside(c.got, want, c.rtol, c.atol); at != c.at {
				t.Errorf("WorstOutside = %d, want %d", at, c.at)
			}
		})
	}
}
