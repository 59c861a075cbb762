package train

import (
	"image"
	"image/color"
	"image/png"
	"io"
	"math"

	"geca/internal/safefile"
)

// WriteLossCurve draws the loss history (log scale; total in blue, noise MSE
// in orange) as a PNG. Grid lines mark powers of ten.
func WriteLossCurve(path string, h []LossPoint) error {
	const W, H, pad = 640, 320, 20
	img := image.NewRGBA(image.Rect(0, 0, W, H))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	if len(h) >= 2 {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, p := range h {
			for _, v := range []float64{p.Loss, p.MSE} {
				if v > 0 {
					lo, hi = min(lo, math.Log10(v)), max(hi, math.Log10(v))
				}
			}
		}
		lo, hi = math.Floor(lo), math.Ceil(hi)
		if hi <= lo {
			hi = lo + 1
		}
		x := func(s int) int { return pad + (W-2*pad)*(s-h[0].Step)/max(1, h[len(h)-1].Step-h[0].Step) }
		y := func(v float64) int { return H - pad - int(float64(H-2*pad)*(math.Log10(max(v, 1e-12))-lo)/(hi-lo)) }
		grey := color.RGBA{220, 220, 220, 255}
		for e := lo; e <= hi; e++ {
			yy := H - pad - int(float64(H-2*pad)*(e-lo)/(hi-lo))
			for xx := pad; xx < W-pad; xx++ {
				img.Set(xx, yy, grey)
			}
		}
		line := func(get func(LossPoint) float64, c color.RGBA) {
			for i := 1; i < len(h); i++ {
				x0, y0, x1, y1 := x(h[i-1].Step), y(get(h[i-1])), x(h[i].Step), y(get(h[i]))
				n := max(abs(x1-x0), abs(y1-y0), 1)
				for k := 0; k <= n; k++ {
					img.Set(x0+(x1-x0)*k/n, y0+(y1-y0)*k/n, c)
				}
			}
		}
		line(func(p LossPoint) float64 { return p.MSE }, color.RGBA{230, 120, 20, 255})
		line(func(p LossPoint) float64 { return p.Loss }, color.RGBA{30, 80, 200, 255})
	}
	return WritePNG(path, img)
}

func abs(a int) int {
	if a < 0 {
		return -a
	}
	return a
}

// SampleGrid lays out rows×cols images (cell-major, h×w×c each, values in
// [−1, 1], clamped) as one image with a 2-pixel gap, each pixel scaled up.
// c is 1 (gray) or 3 (RGB).
func SampleGrid(imgs []float32, rows, cols, h, w, c, scale int) *image.RGBA {
	const gap = 2
	W := cols*(w*scale+gap) + gap
	H := rows*(h*scale+gap) + gap
	img := image.NewRGBA(image.Rect(0, 0, W, H))
	for i := range img.Pix {
		img.Pix[i] = 255
		if i%4 != 3 {
			img.Pix[i] = 200
		}
	}
	u8 := func(v float32) uint8 { return uint8(min(max(127.5*float64(v)+128, 0), 255)) }
	for r := 0; r < rows; r++ {
		for k := 0; k < cols; k++ {
			n := r*cols + k
			if (n+1)*h*w*c > len(imgs) {
				continue
			}
			src := imgs[n*h*w*c:]
			x0, y0 := gap+k*(w*scale+gap), gap+r*(h*scale+gap)
			for i := 0; i < h*scale; i++ {
				for j := 0; j < w*scale; j++ {
					p := src[((i/scale)*w+j/scale)*c:]
					var col color.RGBA
					if c == 3 {
						col = color.RGBA{u8(p[0]), u8(p[1]), u8(p[2]), 255}
					} else {
						g := u8(p[0])
						col = color.RGBA{g, g, g, 255}
					}
					img.SetRGBA(x0+j, y0+i, col)
				}
			}
		}
	}
	return img
}

// WritePNG encodes img to path, whole or not at all (safefile.Write: a
// training run stopped while it writes keeps the previous picture).
func WritePNG(path string, img image.Image) error {
	return safefile.Write(path, func(w io.Writer) error { return png.Encode(w, img) })
}
