package vae

import (
	"fmt"
	"image"
)

// Images turns decoded images (b, 3, h, w) in [-1, 1] into RGBA pictures
// with the official byte mapping (ToUint8, docs/model.md §7).
func Images(img []float32, b, h, w int) ([]*image.RGBA, error) {
	if b < 0 || h <= 0 || w <= 0 || len(img) != b*3*h*w {
		return nil, fmt.Errorf("vae: images: %d values do not make %d RGB images of %dx%d", len(img), b, h, w)
	}
	u8 := ToUint8(img)
	hw := h * w
	out := make([]*image.RGBA, b)
	for n := range out {
		m := image.NewRGBA(image.Rect(0, 0, w, h))
		p := u8[n*3*hw : (n+1)*3*hw]
		for i := 0; i < hw; i++ {
			m.Pix[4*i], m.Pix[4*i+1], m.Pix[4*i+2], m.Pix[4*i+3] = p[i], p[hw+i], p[2*hw+i], 255
		}
		out[n] = m
	}
	return out, nil
}

// Grid lays pictures of equal size out in rows of cols (left to right, top
// to bottom) with gap pixels of black between them.
func Grid(imgs []*image.RGBA, cols, gap int) *image.RGBA {
	if len(imgs) == 0 {
		return image.NewRGBA(image.Rect(0, 0, 0, 0))
	}
	cols = max(1, min(cols, len(imgs)))
	rows := (len(imgs) + cols - 1) / cols
	w, h := imgs[0].Bounds().Dx(), imgs[0].Bounds().Dy()
	g := image.NewRGBA(image.Rect(0, 0, cols*w+(cols-1)*gap, rows*h+(rows-1)*gap))
	for i := 3; i < len(g.Pix); i += 4 {
		g.Pix[i] = 255
	}
	for n, m := range imgs {
		x0, y0 := (n%cols)*(w+gap), (n/cols)*(h+gap)
		for y := 0; y < h; y++ {
			copy(g.Pix[(y0+y)*g.Stride+4*x0:(y0+y)*g.Stride+4*(x0+w)], m.Pix[y*m.Stride:y*m.Stride+4*w])
		}
	}
	return g
}
