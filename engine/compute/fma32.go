package compute

import "math"

// fma32 returns x·y + z rounded once to float32 (round to nearest, ties to
// even), as the FMA instructions of the matrix-product kernels compute it.
//
// float32(math.FMA(…)) would round twice, to float64 and then to float32,
// which differs when the float64 result lands exactly halfway between two
// float32 values while the exact one does not. The product of two float32s
// is exact in float64; the sum's rounding error e comes from TwoSum; only at
// such a halfway point does e decide the direction.
func fma32(x, y, z float32) float32 {
	p := float64(x) * float64(y) // exact: 24+24 significant bits
	s := p + float64(z)
	r := float32(s)
	if math.IsInf(s, 0) || math.IsNaN(s) || float64(r) == s {
		return r
	}
	// TwoSum: s + e == p + z exactly.
	bp := s - float64(z)
	e := (p - bp) + (float64(z) - (s - bp))
	if e == 0 {
		return r
	}
	// The float32 neighbour of r on the other side of s.
	var other float32
	if float64(r) < s {
		other = math.Nextafter32(r, float32(math.Inf(1)))
	} else {
		other = math.Nextafter32(r, float32(math.Inf(-1)))
	}
	var mid float64
	if math.IsInf(float64(other), 0) || math.IsInf(float64(r), 0) {
		// Halfway between ±MaxFloat32 and the next power of two, where
		// rounding overflows to ±Inf.
		mid = math.Copysign(math.Ldexp(2-math.Ldexp(1, -24), 127), s)
	} else {
		mid = (float64(r) + float64(other)) / 2 // exact
	}
	if s != mid {
		return r
	}
	// s is a halfway point and the exact sum lies beyond it by e.
	if (e > 0) == (float64(other) > s) {
		return other
	}
	return r
}
