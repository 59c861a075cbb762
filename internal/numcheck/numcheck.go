// Package numcheck measures how far computed values are from reference
// values, for the tests that hold the engine to its PyTorch goldens, its
// emulator and its GPU: one definition of each error measure, so a bound
// means the same in every package.
package numcheck

import "math"

// RelErr is the norm-wise relative error ‖got − want‖₂ / ‖want‖₂ (the plain
// ‖got − want‖₂ when want is all zeros). Slices of different lengths, or a
// NaN anywhere, give +Inf, so that no bound passes them.
func RelErr(got, want []float32) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var num, den float64
	for i, w := range want {
		d := float64(got[i]) - float64(w)
		num += d * d
		den += float64(w) * float64(w)
	}
	return finite(math.Sqrt(num / nonzero(den)))
}

// MaxRelErr is the largest error relative to the largest reference value:
// max |got − want| / max |want| (the plain max |got − want| when want is
// all zeros). Slices of different lengths, or a NaN anywhere, give +Inf.
func MaxRelErr(got, want []float32) float64 {
	diff, scale := MaxAbsErr(got, want)
	return finite(diff / nonzero(scale))
}

// MaxAbsErr is max |got − want|, with max |want| for scale. Slices of
// different lengths, or a NaN anywhere, give an error of +Inf.
func MaxAbsErr(got, want []float32) (diff, scale float64) {
	if len(got) != len(want) {
		return math.Inf(1), 0
	}
	for i, w := range want {
		d := math.Abs(float64(got[i]) - float64(w))
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		diff = max(diff, d)
		scale = max(scale, math.Abs(float64(w)))
	}
	return diff, scale
}

func nonzero(x float64) float64 {
	if x == 0 {
		return 1
	}
	return x
}

func finite(x float64) float64 {
	if math.IsNaN(x) {
		return math.Inf(1)
	}
	return x
}

// WorstOutside is the index of the value farthest outside the element-wise
// bound |got − want| <= atol + rtol·|want|, or −1 when every value is within
// it (a NaN is infinitely far outside). The slices must be of equal length.
func WorstOutside(got, want []float32, rtol, atol float64) int {
	worst, at := 0.0, -1
	for i, w := range want {
		d := math.Abs(float64(got[i]) - float64(w))
		lim := atol + rtol*math.Abs(float64(w))
		if d <= lim {
			continue
		}
		excess := d - lim
		if math.IsNaN(excess) {
			excess = math.Inf(1)
		}
		if at < 0 || excess > worst {
			worst, at = excess, i
		}
	}
	return at
}
