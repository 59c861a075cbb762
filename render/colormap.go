// Package render turns GeCA state and sampler output into images: the
// predicted x0, the noisy input x_t, the C_out channels, the hidden state,
// update magnitudes and attention, plus upscaling, labelled montages and PNG
// and GIF writers. It knows nothing of windows; the engine knows nothing of it.
package render

import (
	"image/color"
	"math"
)

// Colormap is a 256-entry lookup table from [0, 1] to colour.
type Colormap [256]color.RGBA

// Index returns the LUT index of t in [0, 1]: round(255·t), clamped. NaN maps to 0.
func Index(t float32) int {
	if !(t > 0) { // also catches NaN
		return 0
	}
	if t >= 1 {
		return 255
	}
	return int(t*255 + 0.5)
}

// At returns the colour of t in [0, 1] (clamped).
func (c *Colormap) At(t float32) color.RGBA { return c[Index(t)] }

// The colour maps are generated, not copied: piecewise-linear paths through
// OKLab between a few anchor colours, sampled at 256 points. OKLab makes equal
// steps look roughly equal, so a map whose anchors rise in lightness stays
// perceptually ordered (TestHeatLightnessMonotone checks this).
var (
	// Heat runs from near-black through violet, red and orange to pale
	// yellow: magnitudes, attention weights, activity.
	Heat = buildMap([]color.RGBA{
		{0, 0, 4, 255}, {40, 11, 84, 255}, {101, 21, 110, 255}, {159, 42, 99, 255},
		{212, 72, 66, 255}, {245, 125, 21, 255}, {250, 193, 39, 255}, {252, 255, 164, 255},
	})
	// Diverging runs from blue through a light neutral at 0.5 to red: signed
	// quantities (ε̂, v, hidden channels) on a symmetric scale.
	Diverging = buildMap([]color.RGBA{
		{33, 72, 168, 255}, {98, 138, 212, 255}, {178, 196, 230, 255}, {238, 238, 238, 255},
		{236, 186, 164, 255}, {210, 110, 88, 255}, {165, 28, 38, 255},
	})
	// Grey is the identity ramp.
	Grey = func() (c Colormap) {
		for i := range c {
			c[i] = color.RGBA{uint8(i), uint8(i), uint8(i), 255}
		}
		return c
	}()
)

func buildMap(anchors []color.RGBA) Colormap {
	labs := make([][3]float64, len(anchors))
	for i, a := range anchors {
		labs[i] = toOKLab(a)
	}
	var c Colormap
	segs := float64(len(anchors) - 1)
	for i := range c {
		p := float64(i) / 255 * segs
		k := int(p)
		if k >= len(anchors)-1 {
			k = len(anchors) - 2
		}
		f := p - float64(k)
		var lab [3]float64
		for d := 0; d < 3; d++ {
			lab[d] = labs[k][d]*(1-f) + labs[k+1][d]*f
		}
		c[i] = fromOKLab(lab)
	}
	c[0], c[255] = anchors[0], anchors[len(anchors)-1]
	return c
}

func srgbToLinear(u uint8) float64 {
	x := float64(u) / 255
	if x <= 0.04045 {
		return x / 12.92
	}
	return math.Pow((x+0.055)/1.055, 2.4)
}

func linearToSRGB(x float64) uint8 {
	if x <= 0.0031308 {
		x *= 12.92
	} else {
		x = 1.055*math.Pow(x, 1/2.4) - 0.055
	}
	return uint8(math.Max(0, math.Min(255, math.Round(x*255))))
}

// toOKLab and fromOKLab use Björn Ottosson's published OKLab matrices.
func toOKLab(c color.RGBA) [3]float64 {
	r, g, b := srgbToLinear(c.R), srgbToLinear(c.G), srgbToLinear(c.B)
	l := math.Cbrt(0.4122214708*r + 0.5363325363*g + 0.0514459929*b)
	m := math.Cbrt(0.2119034982*r + 0.6806995451*g + 0.1073969566*b)
	s := math.Cbrt(0.0883024619*r + 0.2817188376*g + 0.6299787005*b)
	return [3]float64{
		0.2104542553*l + 0.7936177850*m - 0.0040720468*s,
		1.9779984951*l - 2.4285922050*m + 0.4505937099*s,
		0.0259040371*l + 0.7827717662*m - 0.8086757660*s,
	}
}

func fromOKLab(lab [3]float64) color.RGBA {
	l := lab[0] + 0.3963377774*lab[1] + 0.2158037573*lab[2]
	m := lab[0] - 0.1055613458*lab[1] - 0.0638541728*lab[2]
	s := lab[0] - 0.0894841775*lab[1] - 1.2914855480*lab[2]
	l, m, s = l*l*l, m*m*m, s*s*s
	return color.RGBA{
		linearToSRGB(4.0767416621*l - 3.3077115913*m + 0.2309699292*s),
		linearToSRGB(-1.2684380046*l + 2.6097574011*m - 0.3413193965*s),
		linearToSRGB(-0.0041960863*l - 0.7034186147*m + 1.7076147010*s),
		255,
	}
}
