// Package chart draws the small plots geca's commands write next to their
// numbers: line plots and heat maps with axes, tick values, a title and a
// legend, as plain RGBA images (text in the 7x13 bitmap font of
// golang.org/x/image, ASCII only). The numbers themselves always go to a CSV file too;
// the charts are for looking.
package chart

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

var (
	white = color.RGBA{255, 255, 255, 255}
	black = color.RGBA{0, 0, 0, 255}
	grey  = color.RGBA{225, 225, 225, 255}
	dark  = color.RGBA{90, 90, 90, 255}
)

// Palette is a set of distinguishable line colours.
var Palette = []color.RGBA{
	{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255},
	{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255},
}

// Series is one line: points (X[i], Y[i]); NaN values are gaps.
type Series struct {
	Name  string
	X, Y  []float64
	Color color.RGBA // zero: the next colour of Palette
}

// Mark is a labelled vertical line at X.
type Mark struct {
	X     float64
	Label string
}

// Line is a line plot.
type Line struct {
	Title, XLabel, YLabel string
	LogX, LogY            bool
	Series                []Series
	Marks                 []Mark
}

const lineH = 13 // the font's line height

// Draw renders the plot at w×h pixels.
func (p *Line) Draw(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(white), image.Point{}, draw.Src)
	left, right, top, bottom := 70, 20, 30, 45
	if len(p.Series) > 1 {
		top += lineH * ((len(p.Series) + 3) / 4)
	}
	area := image.Rect(left, top, w-right, h-bottom)
	text(img, w/2-textWidth(p.Title)/2, 18, p.Title, black)
	tx := func(v float64) float64 { return v }
	ty := tx
	if p.LogX {
		tx = math.Log10
	}
	if p.LogY {
		ty = math.Log10
	}
	x0, x1, y0, y1 := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range p.Series {
		for i := range s.X {
			if i >= len(s.Y) || !usable(s.X[i], p.LogX) || !usable(s.Y[i], p.LogY) {
				continue
			}
			x0, x1 = min(x0, tx(s.X[i])), max(x1, tx(s.X[i]))
			y0, y1 = min(y0, ty(s.Y[i])), max(y1, ty(s.Y[i]))
		}
	}
	if math.IsInf(x0, 0) {
		x0, x1, y0, y1 = 0, 1, 0, 1
	}
	if x1 == x0 {
		x0, x1 = x0-0.5, x1+0.5
	}
	if y1 == y0 {
		y0, y1 = y0-0.5, y1+0.5
	}
	pad := (y1 - y0) * 0.05
	y0, y1 = y0-pad, y1+pad
	px := func(v float64) int { return area.Min.X + int(math.Round((tx(v)-x0)/(x1-x0)*float64(area.Dx()-1))) }
	py := func(v float64) int { return area.Max.Y - 1 - int(math.Round((ty(v)-y0)/(y1-y0)*float64(area.Dy()-1))) }
	// Grid and ticks.
	for _, v := range ticks(x0, x1, p.LogX) {
		x := px(v)
		vline(img, x, area.Min.Y, area.Max.Y, grey)
		l := fmtTick(v)
		text(img, x-textWidth(l)/2, area.Max.Y+14, l, dark)
	}
	for _, v := range ticks(y0, y1, p.LogY) {
		y := py(v)
		hline(img, area.Min.X, area.Max.X, y, grey)
		l := fmtTick(v)
		text(img, area.Min.X-6-textWidth(l), y+4, l, dark)
	}
	rect(img, area, black)
	text(img, area.Min.X+area.Dx()/2-textWidth(p.XLabel)/2, h-8, p.XLabel, black)
	text(img, 4, top-8, p.YLabel, black)
	for _, m := range p.Marks {
		if !usable(m.X, p.LogX) || tx(m.X) < x0 || tx(m.X) > x1 {
			continue
		}
		x := px(m.X)
		for y := area.Min.Y; y < area.Max.Y; y += 6 {
			vline(img, x, y, min(y+3, area.Max.Y), dark)
		}
		text(img, x+4, area.Min.Y+12, m.Label, dark)
	}
	for i, s := range p.Series {
		c := s.Color
		if c.A == 0 {
			c = Palette[i%len(Palette)]
		}
		prev := image.Point{-1, -1}
		for k := range s.X {
			if k >= len(s.Y) || !usable(s.X[k], p.LogX) || !usable(s.Y[k], p.LogY) {
				prev = image.Point{-1, -1}
				continue
			}
			pt := image.Pt(px(s.X[k]), py(s.Y[k]))
			if prev.X >= 0 {
				segment(img, prev, pt, c)
			}
			dot(img, pt, c)
			prev = pt
		}
		if len(p.Series) > 1 {
			lx, ly := left+(i%4)*((w-left-right)/4), 30+lineH*(i/4)
			hline(img, lx, lx+14, ly-4, c)
			hline(img, lx, lx+14, ly-3, c)
			text(img, lx+18, ly, s.Name, black)
		}
	}
	return img
}

func usable(v float64, log bool) bool {
	return !math.IsNaN(v) && !math.IsInf(v, 0) && (!log || v > 0)
}

// Heat is a heat map: Values[r][c] is the cell in row r (top first) and
// column c.
type Heat struct {
	Title, XLabel, YLabel string
	Cols, Rows            []string // tick labels
	Values                [][]float64
	Log                   bool   // colour by log10 of the value
	MarkCol               int    // a column to outline (−1: none)
	MarkLabel             string // its label
	Cell                  int    // pixels per cell side (0: 36)
}

// Draw renders the map with its colour bar.
func (p *Heat) Draw() *image.RGBA {
	cell := p.Cell
	if cell == 0 {
		cell = 36
	}
	nr, nc := len(p.Values), 0
	if nr > 0 {
		nc = len(p.Values[0])
	}
	rowW := 0
	for _, r := range p.Rows {
		rowW = max(rowW, textWidth(r))
	}
	left, top := 20+rowW+10, 34
	w, h := max(left+nc*cell+110, textWidth(p.Title)+20), top+nr*cell+50
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(white), image.Point{}, draw.Src)
	text(img, w/2-textWidth(p.Title)/2, 18, p.Title, black)
	lo, hi := math.Inf(1), math.Inf(-1)
	val := func(v float64) float64 {
		if p.Log {
			return math.Log10(v)
		}
		return v
	}
	for _, row := range p.Values {
		for _, v := range row {
			if usable(v, p.Log) {
				lo, hi = min(lo, val(v)), max(hi, val(v))
			}
		}
	}
	if math.IsInf(lo, 0) {
		lo, hi = 0, 1
	}
	if hi == lo {
		hi = lo + 1
	}
	for r, row := range p.Values {
		for c, v := range row {
			cr := image.Rect(left+c*cell, top+r*cell, left+(c+1)*cell, top+(r+1)*cell)
			col := grey
			if usable(v, p.Log) {
				col = Viridis((val(v) - lo) / (hi - lo))
			}
			draw.Draw(img, cr, image.NewUniform(col), image.Point{}, draw.Src)
		}
	}
	for r, l := range p.Rows {
		text(img, left-6-textWidth(l), top+r*cell+cell/2+4, l, dark)
	}
	for c, l := range p.Cols {
		text(img, left+c*cell+cell/2-textWidth(l)/2, top+nr*cell+14, l, dark)
	}
	if p.MarkCol >= 0 && p.MarkCol < nc {
		rr := image.Rect(left+p.MarkCol*cell, top, left+(p.MarkCol+1)*cell, top+nr*cell)
		rect(img, rr, color.RGBA{255, 255, 255, 255})
		rect(img, rr.Inset(1), black)
		text(img, rr.Min.X+cell/2-textWidth(p.MarkLabel)/2, top-4, p.MarkLabel, black)
	}
	text(img, left+nc*cell/2-textWidth(p.XLabel)/2, h-10, p.XLabel, black)
	text(img, 4, top-4, p.YLabel, black)
	// Colour bar.
	bx, by, bh := left+nc*cell+20, top, max(nr*cell, 60)
	for y := 0; y < bh; y++ {
		hline(img, bx, bx+14, by+y, Viridis(1-float64(y)/float64(bh-1)))
	}
	rect(img, image.Rect(bx, by, bx+14, by+bh), black)
	for _, f := range []float64{0, 0.5, 1} {
		v := lo + f*(hi-lo)
		if p.Log {
			v = math.Pow(10, v)
		}
		text(img, bx+18, by+int((1-f)*float64(bh-1))+4, fmtTick(v), dark)
	}
	return img
}

// Viridis maps [0, 1] to a perceptually even blue–green–yellow scale.
func Viridis(f float64) color.RGBA {
	stops := [][3]float64{{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}}
	f = min(max(f, 0), 1) * float64(len(stops)-1)
	i := min(int(f), len(stops)-2)
	t := f - float64(i)
	a, b := stops[i], stops[i+1]
	return color.RGBA{uint8(a[0] + t*(b[0]-a[0])), uint8(a[1] + t*(b[1]-a[1])), uint8(a[2] + t*(b[2]-a[2])), 255}
}

// ticks returns about five round values in [lo, hi] (transformed space
// for log axes: powers of ten and their 2 and 5 multiples).
func ticks(lo, hi float64, log bool) []float64 {
	var out []float64
	if log {
		for e := math.Floor(lo); e <= math.Ceil(hi); e++ {
			for _, m := range []float64{1, 2, 5} {
				v := m * math.Pow(10, e)
				if lv := math.Log10(v); lv >= lo-1e-9 && lv <= hi+1e-9 {
					out = append(out, v)
				}
			}
		}
		if len(out) > 8 {
			var thin []float64
			for _, v := range out {
				if m := v / math.Pow(10, math.Floor(math.Log10(v)+1e-9)); math.Abs(m-1) < 1e-9 {
					thin = append(thin, v)
				}
			}
			out = thin
		}
		return out
	}
	step := math.Pow(10, math.Floor(math.Log10((hi-lo)/5)))
	for _, m := range []float64{1, 2, 5, 10} {
		if (hi-lo)/(step*m) <= 6 {
			step *= m
			break
		}
	}
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		out = append(out, v)
	}
	return out
}

func fmtTick(v float64) string {
	if v == 0 {
		return "0"
	}
	a := math.Abs(v)
	if a >= 1e5 || a < 1e-3 {
		return strconv.FormatFloat(v, 'e', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

var face = basicfont.Face7x13

func text(img *image.RGBA, x, y int, s string, c color.RGBA) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: face, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func textWidth(s string) int { return font.MeasureString(face, s).Ceil() }

func hline(img *image.RGBA, x0, x1, y int, c color.RGBA) {
	for x := x0; x < x1; x++ {
		img.SetRGBA(x, y, c)
	}
}

func vline(img *image.RGBA, x, y0, y1 int, c color.RGBA) {
	for y := y0; y < y1; y++ {
		img.SetRGBA(x, y, c)
	}
}

func rect(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	hline(img, r.Min.X, r.Max.X, r.Min.Y, c)
	hline(img, r.Min.X, r.Max.X, r.Max.Y-1, c)
	vline(img, r.Min.X, r.Min.Y, r.Max.Y, c)
	vline(img, r.Max.X-1, r.Min.Y, r.Max.Y, c)
}

func dot(img *image.RGBA, p image.Point, c color.RGBA) {
	for dy := -2; dy <= 2; dy++ {
		for dx := -2; dx <= 2; dx++ {
			if dx*dx+dy*dy <= 5 {
				img.SetRGBA(p.X+dx, p.Y+dy, c)
			}
		}
	}
}

// segment draws a 2-pixel-wide line.
func segment(img *image.RGBA, a, b image.Point, c color.RGBA) {
	n := max(abs(b.X-a.X), abs(b.Y-a.Y), 1)
	for k := 0; k <= n; k++ {
		x, y := a.X+(b.X-a.X)*k/n, a.Y+(b.Y-a.Y)*k/n
		img.SetRGBA(x, y, c)
		img.SetRGBA(x, y+1, c)
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// String renders values for a CSV cell: shortest exact form.
func String(v float64) string { return fmt.Sprint(v) }
