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
			if r := RelErr(c.got, c.want); math.Abs(r-c.rel) > 1e-12 && r != c.rel {
				t.Errorf("RelErr = %v, want %v", r, c.rel)
			}
			if r := MaxRelErr(c.got, c.want); math.Abs(r-c.maxRel) > 1e-12 && r != c.maxRel {
				t.Errorf("MaxRelErr = %v, want %v", r, c.maxRel)
			}
			d, s := MaxAbsErr(c.got, c.want)
			if d != c.maxAbs || s != c.maxRef {
				t.Errorf("MaxAbsErr = %v, %v; want %v, %v", d, s, c.maxAbs, c.maxRef)
			}
		})
	}
}
