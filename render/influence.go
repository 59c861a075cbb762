package render

import (
	"fmt"
	"image"
	"math"

	"geca/engine"
)

// InfluenceDecades is how many powers of ten below the largest value the
// seed-influence view still tells apart from zero.
const InfluenceDecades = 6

// InfluenceImage draws per-cell seed influence: exactly 0 (the seed's
// information has not got there) in UnreachedColor, anything else with the
// Heat map on a log scale over InfluenceDecades decades below the largest
// value, so the faint edge of the seed's light cone is as visible as its
// bright centre.
func InfluenceImage(vals []float32, h, w int) *image.RGBA {
	mx := MaxValue(vals[:h*w])
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for p := 0; p < h*w; p++ {
		v := vals[p]
		if !(v > 0) || mx <= 0 {
			setPix(img, p, UnreachedColor)
			continue
		}
		t := 1 + math.Log10(float64(v)/float64(mx))/InfluenceDecades
		setPix(img, p, Heat.At(float32(0.12+0.88*math.Max(t, 0))))
	}
	return img
}

// Dim darkens the pixels of img whose cell (of an h x w grid the image
// covers) is not marked in keep, to a quarter of their brightness. The image
// may have several pixels per cell (a VAE decode).
func Dim(img *image.RGBA, keep []bool, h, w int) *image.RGBA {
	out := image.NewRGBA(img.Rect)
	copy(out.Pix, img.Pix)
	b := img.Rect
	if len(keep) != h*w || b.Dx() <= 0 || b.Dy() <= 0 {
		return out
	}
	for y := 0; y < b.Dy(); y++ {
		i := y * h / b.Dy()
		row := out.Pix[y*out.Stride:]
		for x := 0; x < b.Dx(); x++ {
			if keep[i*w+x*w/b.Dx()] {
				continue
			}
			for c := 0; c < 3; c++ {
				row[4*x+c] /= 4
			}
		}
	}
	return out
}

// Difference draws how two frames of the same grid differ in view v: for
// the x₀ and x_t views the signed difference a − b of their first three
// channels' mean, in Diverging colours; for every other view the L2 distance
// of the cells' [C_out | C_h] channels, in Heat colours. It returns the
// largest |difference| (the colour scale's end).
func Difference(v View, a, b *Source, sample int) (*image.RGBA, float32, error) {
	cfg := a.Cfg
	h, w, cin := cfg.GridH, cfg.GridW, cfg.InChannels
	n := h * w
	if v == ViewX0 || v == ViewXt {
		xa, xb := a.X0, b.X0
		if v == ViewXt {
			xa, xb = a.Xt, b.Xt
		}
		per := cin * n
		if len(xa) < (sample+1)*per || len(xb) < (sample+1)*per {
			return nil, 0, fmt.Errorf("difference: missing %v", v)
		}
		nc := min(cin, 3)
		d := make([]float32, n)
		for c := 0; c < nc; c++ {
			for p := 0; p < n; p++ {
				d[p] += (xa[sample*per+c*n+p] - xb[sample*per+c*n+p]) / float32(nc)
			}
		}
		lim := float32(0)
		for _, x := range d {
			lim = max(lim, float32(math.Abs(float64(x))))
		}
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		for p, x := range d {
			t := float32(0.5)
			if lim > 0 {
				t = 0.5 + 0.5*x/lim
			}
			setPix(img, p, Diverging.At(t))
		}
		return img, lim, nil
	}
	sa, sb := a.State, b.State
	if sa == nil || sb == nil || len(sa.Data) != len(sb.Data) || sample >= sa.B {
		return nil, 0, fmt.Errorf("difference: the two grids do not match")
	}
	d := stateDistance(cfg, sa, sb, sample)
	mx := MaxValue(d)
	return HeatImage(d, h, w, mx), mx, nil
}

// stateDistance is the per-cell L2 distance of the [C_out | C_h] channels
// of grid b of two states.
func stateDistance(cfg engine.Config, a, b *engine.State, sample int) []float32 {
	n := a.H * a.W
	out := make([]float32, n)
	for p := 0; p < n; p++ {
		o := (sample*n + p) * a.C
		var s float64
		for k := cfg.InChannels; k < a.C; k++ {
			x := float64(a.Data[o+k]) - float64(b.Data[o+k])
			s += x * x
		}
		out[p] = float32(math.Sqrt(s))
	}
	return out
}
