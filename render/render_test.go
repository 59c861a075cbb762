package render

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"geca/engine"
)

// tinyCfg is a 2x3 pixel-space grid with one input channel, so cells hold
// [x | eps | v | h0 h1].
func tinyCfg() engine.Config {
	return engine.Config{Name: "tiny", GridH: 2, GridW: 3, InChannels: 1, HiddenChannels: 2,
		EmbedDim: 4, Heads: 2, MLPDim: 4, NumClasses: 1, M: 1, UpdateRate: 1}
}

func rgba(r, g, b uint8) color.RGBA { return color.RGBA{r, g, b, 255} }

// wantPixels compares img with want in row-major order.
func wantPixels(t *testing.T, img *image.RGBA, w int, want []color.RGBA) {
	t.Helper()
	if img.Rect.Dx()*img.Rect.Dy() != len(want) || img.Rect.Dx() != w {
		t.Fatalf("image is %v, want %d pixels %d wide", img.Rect, len(want), w)
	}
	for p, c := range want {
		x, y := p%w, p/w
		if got := img.RGBAAt(x, y); got != c {
			t.Errorf("pixel (%d,%d) = %v, want %v", x, y, got, c)
		}
	}
}

func TestToU8(t *testing.T) {
	for _, c := range []struct {
		x    float32
		want uint8
	}{{-1, 0}, {-2, 0}, {0, 128}, {1, 255}, {3, 255}, {0.5, 191}, {-0.5, 64}, {float32(math.NaN()), 0}} {
		if got := ToU8(c.x); got != c.want {
			t.Errorf("ToU8(%v) = %d, want %d", c.x, got, c.want)
		}
	}
}

func TestIndex(t *testing.T) {
	for _, c := range []struct {
		t    float32
		want int
	}{{-1, 0}, {0, 0}, {0.5, 128}, {0.25, 64}, {0.75, 191}, {1, 255}, {7, 255}, {float32(math.NaN()), 0}} {
		if got := Index(c.t); got != c.want {
			t.Errorf("Index(%v) = %d, want %d", c.t, got, c.want)
		}
	}
}

func TestColormapEndpointsAndOrder(t *testing.T) {
	if Heat[0] != rgba(0, 0, 4) || Heat[255] != rgba(252, 255, 164) {
		t.Errorf("Heat endpoints %v %v", Heat[0], Heat[255])
	}
	if Diverging[0] != rgba(33, 72, 168) || Diverging[255] != rgba(165, 28, 38) {
		t.Errorf("Diverging endpoints %v %v", Diverging[0], Diverging[255])
	}
	if Grey[77] != rgba(77, 77, 77) {
		t.Errorf("Grey[77] = %v", Grey[77])
	}
	// Heat must rise in perceived lightness everywhere (tolerating the
	// rounding of 8-bit output).
	prev := -1.0
	for i, c := range Heat {
		l := toOKLab(c)[0]
		if l < prev-0.004 {
			t.Errorf("Heat lightness drops at %d: %.4f < %.4f", i, l, prev)
		}
		prev = l
	}
	// Diverging: the centre is the lightest, and lightness is symmetric
	// enough that +x and -x look equally strong.
	mid := math.Max(toOKLab(Diverging[127])[0], toOKLab(Diverging[128])[0])
	for i := 0; i < 128; i++ {
		lo, hi := toOKLab(Diverging[i])[0], toOKLab(Diverging[255-i])[0]
		if lo > mid+1e-9 || hi > mid+1e-9 {
			t.Fatalf("Diverging[%d] lighter than the centre", i)
		}
		if !(math.Abs(lo-hi) <= 0.08) {
			t.Errorf("Diverging lightness asymmetric at %d: %.3f vs %.3f", i, lo, hi)
		}
	}
	// OKLab round trip is exact at 8 bits for a few colours
	for _, c := range []color.RGBA{rgba(0, 0, 0), rgba(255, 255, 255), rgba(12, 200, 77), rgba(255, 0, 0)} {
		if got := fromOKLab(toOKLab(c)); got != c {
			t.Errorf("OKLab round trip %v -> %v", c, got)
		}
	}
}

func TestPixelImage(t *testing.T) {
	// grey: (1, 1, 2, 2)
	g := PixelImage([]float32{-1, 0, 0.5, 1}, 1, 2, 2, 0)
	wantPixels(t, g, 2, []color.RGBA{rgba(0, 0, 0), rgba(128, 128, 128), rgba(191, 191, 191), rgba(255, 255, 255)})
	// RGB, second sample of a batch of 2, 1x2 image
	x := []float32{
		0, 0, 0, 0, 0, 0, // sample 0
		-1, 1, // R
		0, 0.5, // G
		1, -0.5, // B
	}
	c := PixelImage(x, 3, 1, 2, 1)
	wantPixels(t, c, 2, []color.RGBA{rgba(0, 128, 255), rgba(255, 191, 64)})
	// two channels: blue is mid-grey
	two := PixelImage([]float32{1, -1}, 2, 1, 1, 0)
	wantPixels(t, two, 1, []color.RGBA{rgba(255, 0, 128)})
}

func TestLatentImage(t *testing.T) {
	// a fake preview: R = channel 0, G = -channel 1, B = 0
	prev := func(lat []float32, b, h, w int) []float32 {
		n := h * w
		out := make([]float32, 3*n)
		for p := 0; p < n; p++ {
			out[p], out[n+p] = lat[p], -lat[n+p]
		}
		return out
	}
	lat := []float32{
		9, 9, 9, 9, 9, 9, 9, 9, // sample 0 (4 channels, 1x2)
		1, -1, 0.5, 0, 0, 0, 0, 0, // sample 1
	}
	img := LatentImage(lat, 4, 1, 2, 1, prev)
	wantPixels(t, img, 2, []color.RGBA{rgba(255, 64, 128), rgba(0, 128, 128)})
	raw := LatentImage(lat, 4, 1, 2, 1, nil) // first three channels
	wantPixels(t, raw, 2, []color.RGBA{rgba(255, 191, 128), rgba(0, 128, 128)})
}

// tinyState: cell p = (i, j) holds x = p/10, eps, v, h0, h1 as given.
func tinyState() *engine.State {
	st := engine.NewState(1, 2, 3, 5)
	vals := [6][5]float32{
		{0.0, -2, 0.5, 0, 0},
		{0.1, 0, -1, 0, 0},
		{0.2, 1, 0, -2, 1},
		{0.3, 2, 0, 0, 0},
		{0.4, 0, 0, 1, -4},
		{0.5, 0, 0, 0, 0},
	}
	for p, v := range vals {
		copy(st.Data[p*5:], v[:])
	}
	return st
}

func TestChannelImage(t *testing.T) {
	st := tinyState()
	// eps = [-2, 0, 1, 2, 0, 0], auto limit 2: t = 0, .5, .75, 1, .5, .5
	img := ChannelImage(st, 0, 1, 0)
	d := Diverging
	wantPixels(t, img, 3, []color.RGBA{d[0], d[128], d[191], d[255], d[128], d[128]})
	// fixed limit 4: -2 -> 0.25 -> 64, 1 -> 0.625 -> 159, 2 -> 0.75 -> 191
	img = ChannelImage(st, 0, 1, 4)
	wantPixels(t, img, 3, []color.RGBA{d[64], d[128], d[159], d[191], d[128], d[128]})
	// through Render: ViewV channel 0 is state channel 2 = [.5, -1, 0, 0, 0, 0]
	src := &Source{Cfg: tinyCfg(), State: st}
	v, err := Render(ViewV, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantPixels(t, v, 3, []color.RGBA{d[191], d[0], d[128], d[128], d[128], d[128]})
}

func TestHiddenImage(t *testing.T) {
	st := tinyState()
	// h0 = [0,0,-2,0,1,0] scaled by 2 -> [0,0,-1,0,.5,0]; h1 = [0,0,1,0,-4,0] scaled by 4
	src := &Source{Cfg: tinyCfg(), State: st}
	img, err := Render(ViewHidden, src, Options{Hidden: [3]int{0, 1, 5}})
	if err != nil {
		t.Fatal(err)
	}
	wantPixels(t, img, 3, []color.RGBA{
		rgba(128, 128, 128), rgba(128, 128, 128), rgba(0, 159, 128),
		rgba(128, 128, 128), rgba(191, 0, 128), rgba(128, 128, 128),
	})
}

func TestHiddenPCA(t *testing.T) {
	// two hidden channels along (1, 1)/√2 with projections ±2√2, ±√2 (mean 0)
	st := engine.NewState(1, 1, 4, 3)
	for p, s := range []float32{-2, -1, 1, 2} {
		st.Data[p*3+1], st.Data[p*3+2] = s, s
	}
	img := HiddenPCAImage(st, 0, 1, 2)
	// first PC: -1, -.5, .5, 1 -> 0, 64, 191, 255; no variance left for G; no third channel
	wantPixels(t, img, 4, []color.RGBA{rgba(0, 128, 128), rgba(64, 128, 128), rgba(191, 128, 128), rgba(255, 128, 128)})

	// flipping every value flips the projections, but the sign rule keeps the
	// component itself fixed: the image is mirrored
	for i := range st.Data {
		st.Data[i] = -st.Data[i]
	}
	img = HiddenPCAImage(st, 0, 1, 2)
	wantPixels(t, img, 4, []color.RGBA{rgba(255, 128, 128), rgba(191, 128, 128), rgba(64, 128, 128), rgba(0, 128, 128)})
}

func TestSymEigen(t *testing.T) {
	// [[2,1,0],[1,2,0],[0,0,5]]: eigenvalues 5, 3, 1
	vals, vecs := symEigen([]float64{2, 1, 0, 1, 2, 0, 0, 0, 5}, 3)
	want := []float64{5, 3, 1}
	for i := range want {
		if !(math.Abs(vals[i]-want[i]) <= 1e-12) {
			t.Errorf("eigenvalue %d = %v, want %v", i, vals[i], want[i])
		}
	}
	r := 1 / math.Sqrt2
	wantVecs := [][]float64{{0, 0, 1}, {r, r, 0}, {-r, r, 0}}
	// the third vector's largest entries tie; either sign pattern with a
	// positive largest entry is fine, so compare up to sign for it
	for i, wv := range wantVecs {
		dot := 0.0
		for k := range wv {
			dot += wv[k] * vecs[i][k]
		}
		if i < 2 && math.Abs(dot-1) > 1e-12 || i == 2 && math.Abs(math.Abs(dot)-1) > 1e-12 {
			t.Errorf("eigenvector %d = %v, want %v", i, vecs[i], wv)
		}
	}
}

func TestHeatAndUpdateView(t *testing.T) {
	mag := []float32{0, 1, 2, 4, 3, 0}
	src := &Source{Cfg: tinyCfg(), Magnitude: mag}
	img, err := Render(ViewUpdate, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := Heat
	wantPixels(t, img, 3, []color.RGBA{h[0], h[64], h[128], h[255], h[191], h[0]})
	img = HeatImage(mag, 2, 3, 8)
	wantPixels(t, img, 3, []color.RGBA{h[0], h[32], h[64], h[128], h[96], h[0]})
}

func TestReachedAndAlive(t *testing.T) {
	st := tinyState()
	reached, frac := Reached(st, 0, 1)
	want := []bool{true, true, true, true, true, false}
	for i := range want {
		if reached[i] != want[i] {
			t.Errorf("reached[%d] = %v", i, reached[i])
		}
	}
	if frac != 5.0/6 {
		t.Errorf("fraction %v", frac)
	}
	src := &Source{Cfg: tinyCfg(), State: st, Magnitude: []float32{0, 2, 0, 1, 0, 0}}
	img, err := Render(ViewAlive, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// t = .35 + .65·mag/2 -> .35 (89), 1 (255), .675 (172); unreached dark
	h := Heat
	wantPixels(t, img, 3, []color.RGBA{h[89], h[255], h[89], h[172], h[89], UnreachedColor})
}

func TestAttention(t *testing.T) {
	// two heads; head 0 puts everything on self, head 1 splits over left/right
	attn := make([]float32, 18)
	attn[4] = 1
	attn[9+3], attn[9+5] = 0.5, 0.5
	m := AttentionMean(attn, 2)
	if m[4] != 0.5 || m[3] != 0.25 || m[5] != 0.25 || m[0] != 0 {
		t.Fatalf("mean %v", m)
	}
	// cell (0, 0) of a 2x3 grid: slots with a row or column offset of -1
	// fall outside; self 0.5 -> 255, right 0.25 -> 128, below 0 -> 0
	src := &Source{Cfg: tinyCfg(), Attn: attn, AttnCell: image.Pt(0, 0)}
	img, err := Render(ViewAttention, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h, u := Heat, UnreachedColor
	wantPixels(t, img, 3, []color.RGBA{h[255], h[128], u, h[0], h[0], u})

	tiles := AttentionHeads(attn, 2, 2)
	if tiles.Rect != image.Rect(0, 0, 13, 6) {
		t.Fatalf("tiles %v", tiles.Rect)
	}
	check := func(x, y int, c color.RGBA) {
		t.Helper()
		if got := tiles.RGBAAt(x, y); got != c {
			t.Errorf("tile pixel (%d,%d) = %v, want %v", x, y, got, c)
		}
	}
	check(2, 2, h[255]) // head 0 self (slot 4 at column 1, row 1, 2 px cells)
	check(3, 3, h[255])
	check(0, 0, h[0])
	check(6, 0, GapColor)
	check(7, 2, h[128]) // head 1 slot 3 (left), weight .5 of max 1
	check(11, 3, h[128])
	check(9, 2, h[0])
}

func TestRenderErrors(t *testing.T) {
	cfg := tinyCfg()
	bad := []struct {
		v   View
		src *Source
		opt Options
	}{
		{ViewX0, &Source{Cfg: cfg}, Options{}},
		{ViewX0, &Source{Cfg: cfg, X0: make([]float32, 5)}, Options{}},
		{ViewXt, &Source{Cfg: cfg, Xt: make([]float32, 6)}, Options{Sample: 1}},
		{ViewEps, &Source{Cfg: cfg}, Options{}},
		{ViewEps, &Source{Cfg: cfg, State: engine.NewState(1, 2, 3, 4)}, Options{}},
		{ViewEps, &Source{Cfg: cfg, State: tinyState()}, Options{Channel: 1}},
		{ViewHidden, &Source{Cfg: cfg, State: tinyState()}, Options{Sample: 1}},
		{ViewUpdate, &Source{Cfg: cfg, Magnitude: make([]float32, 3)}, Options{}},
		{ViewAttention, &Source{Cfg: cfg, Attn: make([]float32, 9)}, Options{}},
		{View(99), &Source{Cfg: cfg}, Options{}},
		{ViewX0, &Source{}, Options{}},
	}
	for i, c := range bad {
		if _, err := Render(c.v, c.src, c.opt); err == nil {
			t.Errorf("case %d (%v): no error", i, c.v)
		}
	}
	if ViewHiddenPCA.String() != "hidden PCA" || View(42).String() != "View(42)" {
		t.Error("View.String")
	}
}

func TestRenderX0Pixels(t *testing.T) {
	src := &Source{Cfg: tinyCfg(), X0: []float32{-1, 0, 1, 0.5, -0.5, 0}}
	img, err := Render(ViewX0, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := func(v uint8) color.RGBA { return rgba(v, v, v) }
	wantPixels(t, img, 3, []color.RGBA{g(0), g(128), g(255), g(191), g(64), g(128)})
}

func TestUpscale(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 2, 1))
	src.SetRGBA(0, 0, rgba(1, 2, 3))
	src.SetRGBA(1, 0, rgba(4, 5, 6))
	up := Upscale(src, 3)
	a, b := rgba(1, 2, 3), rgba(4, 5, 6)
	wantPixels(t, up, 6, []color.RGBA{a, a, a, b, b, b, a, a, a, b, b, b, a, a, a, b, b, b})
}

func TestMontage(t *testing.T) {
	tile := func(c color.RGBA) image.Image {
		im := image.NewRGBA(image.Rect(0, 0, 2, 2))
		fill(im, im.Rect, c)
		return im
	}
	red, blue := rgba(255, 0, 0), rgba(0, 0, 255)
	// without labels: gap 4, tiles 2x2 scaled by 3 = 6x6
	m := Montage([][]image.Image{{tile(red), tile(blue)}}, nil, nil, 3).(*image.RGBA)
	if m.Rect != image.Rect(0, 0, 4+6+4+6+4, 4+6+4) {
		t.Fatalf("montage %v", m.Rect)
	}
	for _, c := range []struct {
		x, y int
		c    color.RGBA
	}{{4, 4, red}, {9, 9, red}, {10, 4, MontageBackground}, {14, 4, blue}, {19, 9, blue}, {3, 3, MontageBackground}} {
		if got := m.RGBAAt(c.x, c.y); got != c.c {
			t.Errorf("(%d,%d) = %v, want %v", c.x, c.y, got, c.c)
		}
	}
	// with labels the tiles move right and down, and the label areas have ink
	l := Montage([][]image.Image{{tile(red), nil}, {nil, tile(blue)}}, []string{"M=4", "M=12"}, []string{"t=999", "t=0"}, 8).(*image.RGBA)
	ink := func(r image.Rectangle) bool {
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				if l.RGBAAt(x, y) != MontageBackground {
					return true
				}
			}
		}
		return false
	}
	face := LabelFace()
	lineH := (face.Metrics().Ascent + face.Metrics().Descent).Ceil()
	if !ink(image.Rect(0, 0, l.Rect.Dx(), lineH+4)) {
		t.Error("no column label ink")
	}
	if !ink(image.Rect(0, lineH+8, 30, l.Rect.Dy())) {
		t.Error("no row label ink")
	}
	// find the red tile: its top-left is the first red pixel
	found := false
	for y := 0; y < l.Rect.Dy() && !found; y++ {
		for x := 0; x < l.Rect.Dx(); x++ {
			if l.RGBAAt(x, y) == red {
				if y != 4+lineH+4 || l.RGBAAt(x+15, y+15) != red || l.RGBAAt(x+16, y+16) == red {
					t.Errorf("red tile at (%d,%d) has the wrong place or size", x, y)
				}
				found = true
				break
			}
		}
	}
	if !found {
		t.Error("red tile missing")
	}
}

func TestGIFExactPalette(t *testing.T) {
	var frames []image.Image
	cols := []color.RGBA{rgba(10, 20, 30), rgba(200, 100, 0), rgba(0, 255, 0)}
	for i := 0; i < 3; i++ {
		im := image.NewRGBA(image.Rect(0, 0, 4, 2))
		fill(im, im.Rect, cols[i])
		im.SetRGBA(i, 1, cols[(i+1)%3])
		frames = append(frames, im)
	}
	var buf bytes.Buffer
	if err := EncodeGIF(&buf, frames, 7); err != nil {
		t.Fatal(err)
	}
	g, err := gif.DecodeAll(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Image) != 3 || g.Delay[2] != 7 || g.LoopCount != 0 {
		t.Fatalf("gif: %d frames, delays %v, loop %d", len(g.Image), g.Delay, g.LoopCount)
	}
	for i, pm := range g.Image {
		src := frames[i].(*image.RGBA)
		for y := 0; y < 2; y++ {
			for x := 0; x < 4; x++ {
				r, gg, b, _ := pm.At(x, y).RGBA()
				if got := rgba(uint8(r>>8), uint8(gg>>8), uint8(b>>8)); got != src.RGBAAt(x, y) {
					t.Errorf("frame %d (%d,%d) = %v, want %v", i, x, y, got, src.RGBAAt(x, y))
				}
			}
		}
	}
}

func TestGIFManyColours(t *testing.T) {
	// a 64x64 gradient has 4096 colours: the palette is median cut to 256 and
	// the dithered frame stays close to the source on average
	im := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for y := 0; y < 64; y++ {
		for x := 0; x < 64; x++ {
			im.SetRGBA(x, y, rgba(uint8(4*x), uint8(4*y), uint8(2*(x+y))))
		}
	}
	pal, exact := Palette([]image.Image{im}, 256)
	if exact || len(pal) != 256 {
		t.Fatalf("palette: %d colours, exact %v", len(pal), exact)
	}
	var buf bytes.Buffer
	if err := EncodeGIF(&buf, []image.Image{im}, 10); err != nil {
		t.Fatal(err)
	}
	g, err := gif.DecodeAll(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for y := 0; y < 64; y++ {
		for x := 0; x < 64; x++ {
			r, gg, b, _ := g.Image[0].At(x, y).RGBA()
			s := im.RGBAAt(x, y)
			sum += math.Abs(float64(r>>8)-float64(s.R)) + math.Abs(float64(gg>>8)-float64(s.G)) + math.Abs(float64(b>>8)-float64(s.B))
		}
	}
	if mean := sum / (64 * 64 * 3); mean > 6 {
		t.Errorf("mean abs error per channel %.2f, want <= 6", mean)
	}
}

func TestWriters(t *testing.T) {
	dir := t.TempDir()
	im := PixelImage([]float32{-1, 1}, 1, 1, 2, 0)
	p := filepath.Join(dir, "a.png")
	if err := WritePNG(p, im); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	back, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if r, _, _, _ := back.At(1, 0).RGBA(); r>>8 != 255 {
		t.Error("png round trip")
	}
	if err := WriteGIF(filepath.Join(dir, "a.gif"), []image.Image{im, im}, 5); err != nil {
		t.Fatal(err)
	}
	if err := WriteGIF(filepath.Join(dir, "b.gif"), nil, 5); err == nil {
		t.Error("no error for no frames")
	}
	other := image.NewRGBA(image.Rect(0, 0, 3, 3))
	if err := WriteGIF(filepath.Join(dir, "c.gif"), []image.Image{im, other}, 5); err == nil {
		t.Error("no error for mismatched sizes")
	}
	if err := WritePNG(filepath.Join(dir, "missing", "x.png"), im); err == nil {
		t.Error("no error for a missing directory")
	}
}

func TestSpread(t *testing.T) {
	// 3x4 grid, seed at (1, 1); the update changed every cell but (0, 0)
	// and (1, 3); (2, 3) is outside the light cone of (1, 1)
	prev := []bool{
		false, false, false, false,
		false, true, false, false,
		false, false, false, false,
	}
	mag := []float32{
		0, 1, 1, 1,
		1, 1, 1, 0,
		1, 1, 1, 1,
	}
	got := Spread(prev, mag, 3, 4)
	want := []bool{
		false, true, true, false,
		true, true, true, false,
		true, true, true, false,
	}
	for p := range want {
		if got[p] != want[p] {
			t.Errorf("cell %d: %v, want %v", p, got[p], want[p])
		}
	}
	if prev[0] || !prev[5] || prev[6] {
		t.Error("Spread modified its input")
	}
	// the alive view draws the given mask rather than the state's non-zeros
	src := &Source{Cfg: tinyCfg(), State: tinyState(), Reached: []bool{true, false, false, false, false, false}}
	img, err := Render(ViewAlive, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	u := UnreachedColor
	wantPixels(t, img, 3, []color.RGBA{Heat[89], u, u, u, u, u})
}

func TestRanges(t *testing.T) {
	st := tinyState()
	if l := ChannelLimit(st, 0, 1); l != 2 {
		t.Errorf("eps limit %v, want 2", l)
	}
	if l := ChannelLimit(engine.NewState(1, 1, 1, 2), 0, 1); l != 1 {
		t.Errorf("zero channel limit %v, want 1", l)
	}
	if m := MaxValue([]float32{0, 3, float32(math.Inf(1)), 2}); m != 3 {
		t.Errorf("max %v, want 3", m)
	}
	if m := MaxValue(nil); m != 1 {
		t.Errorf("max of nothing %v, want 1", m)
	}
}
