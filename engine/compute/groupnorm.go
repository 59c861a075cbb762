package compute

import (
	"fmt"
	"math"
)

// GroupNorm normalises src, batch images of (c, hw) channel-first, over each
// of `groups` groups of c/groups consecutive channels (torch.nn.GroupNorm:
// biased variance, y = (x-mean)/sqrt(var+eps)·gamma + beta), and applies SiLU
// (x·sigmoid(x)) afterwards when silu is set, as every decoder norm but the
// attention one is followed by it. dst may alias src. Statistics are summed
// in float64, so they do not depend on the image size.
func GroupNorm(dst, src []float32, batch, c, hw, groups int, gamma, beta []float32, eps float32, silu bool) {
	if groups <= 0 || c%groups != 0 {
		panic(fmt.Sprintf("compute.GroupNorm: %d channels do not split into %d groups", c, groups))
	}
	if len(src) != batch*c*hw || len(dst) != len(src) || len(gamma) != c || len(beta) != c {
		panic(fmt.Sprintf("compute.GroupNorm: src/dst/gamma/beta have %d/%d/%d/%d values, want %d/%d/%d/%d",
			len(src), len(dst), len(gamma), len(beta), batch*c*hw, batch*c*hw, c, c))
	}
	cg := c / groups
	gsize := cg * hw
	ParallelFunc(batch*groups, func(j0, j1 int) {
		for j := j0; j < j1; j++ {
			g := j % groups
			in := src[j*gsize : (j+1)*gsize]
			out := dst[j*gsize : (j+1)*gsize]
			mean, invStd := groupStats(in, eps)
			for ci := 0; ci < cg; ci++ {
				ch := g*cg + ci
				a := float32(float64(gamma[ch]) * invStd)
				b := float32(float64(beta[ch]) - mean*float64(gamma[ch])*invStd)
				x := in[ci*hw : (ci+1)*hw]
				y := out[ci*hw : (ci+1)*hw]
				if silu {
					siluAffine(y, x, a, b)
				} else {
					for i, v := range x {
						y[i] = float32(v*a) + b
					}
				}
			}
		}
	})
}

// siluAffineGo is the portable siluAffine.
func siluAffineGo(y, x []float32, a, b float32) {
	y = y[:len(x)]
	for i, v := range x {
		t := float32(v*a) + b
		y[i] = t / (1 + gnExp(-t))
	}
}

// groupStats returns the mean and 1/sqrt(var+eps) of x (biased variance).
func groupStats(x []float32, eps float32) (mean, invStd float64) {
	var s0, s1, s2, s3, q0, q1, q2, q3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		a, b, c, d := float64(x[i]), float64(x[i+1]), float64(x[i+2]), float64(x[i+3])
		s0, s1, s2, s3 = s0+a, s1+b, s2+c, s3+d
		q0, q1, q2, q3 = q0+a*a, q1+b*b, q2+c*c, q3+d*d
	}
	for ; i < len(x); i++ {
		a := float64(x[i])
		s0 += a
		q0 += a * a
	}
	n := float64(len(x))
	mean = (s0 + s1 + s2 + s3) / n
	v := (q0+q1+q2+q3)/n - mean*mean
	if v < 0 {
		v = 0
	}
	return mean, 1 / math.Sqrt(v+float64(eps))
}

// gnExp is exp(x) in float32 to about 2 ulp, several times faster than
// math.Exp: SiLU runs on every activation of the decoder (~10^8 values for a
// 256x256 image), where math.Exp would cost seconds. Cephes expf: x = n·ln2 +
// r with |r| <= ln2/2, exp(r) by a degree-6 polynomial, times 2^n.
func gnExp(x float32) float32 {
	switch {
	case x > 88.3:
		return float32(math.Inf(1))
	case x < -87.3:
		return 0
	case x != x:
		return x
	}
	n := float32(math.Floor(float64(x*1.44269504088896341 + 0.5)))
	r := x - n*0.693359375
	r -= n * -2.12194440e-4
	z := r * r
	p := ((((1.9875691500e-4*r+1.3981999507e-3)*r+8.3334519073e-3)*r+4.1665795894e-2)*r+1.6666665459e-1)*r + 5.0000001201e-1
	p = p*z + r + 1
	return p * math.Float32frombits(uint32(int32(n)+127)<<23)
}
