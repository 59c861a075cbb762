package render

import (
	"fmt"
	"image"
	"image/color"
	"math"

	"geca/engine"
)

// View names one way of looking at the grid. Every view is an image with one
// pixel per pix-cell (except where noted), so a caller can map a pixel back to
// a cell.
type View int

const (
	ViewX0        View = iota // predicted x0: pixels, or the latent through Options.Preview
	ViewXt                    // the noisy input x_t (C_in)
	ViewEps                   // C_out ε̂ channel Options.Channel, diverging colours
	ViewV                     // C_out v channel Options.Channel, diverging colours
	ViewHidden                // three hidden channels Options.Hidden as RGB
	ViewHiddenPCA             // the first three principal components of C_h as RGB
	ViewUpdate                // |update| of the last cell update per cell, Heat colours
	ViewAlive                 // cells reached from the seed, brightened by activity
	ViewAttention             // the 3x3 attention of the selected cell, mean over heads
	ViewInfluence             // the seed influence per cell (Source.Influence), Heat colours on a log scale
	NumViews
)

var viewNames = [...]string{"x0", "x_t", "eps", "v", "hidden", "hidden PCA", "|update|", "alive", "attention", "seed influence"}

func (v View) String() string {
	if v >= 0 && v < NumViews {
		return viewNames[v]
	}
	return fmt.Sprintf("View(%d)", int(v))
}

// Preview maps a latent batch (b, C_in, h, w), channel-first, to RGB (b, 3, h, w)
// in [-1, 1]; vae.Preview has this shape.
type Preview func(latent []float32, b, h, w int) []float32

// Source is what a view is drawn from: the cell state and the sampler's
// per-frame data. Any slice may be nil when the view does not need it.
type Source struct {
	Cfg       engine.Config
	State     *engine.State // cell-major [B][H][W][C], channels [C_in | ε̂ | v | C_h]
	Xt, X0    []float32     // (B, C_in, H, W) channel-first
	Magnitude []float32     // (B, H, W): L2 norm of the last applied update per cell
	Attn      []float32     // heads·9 softmax weights of the selected cell, slot k = 3a+b
	AttnCell  image.Point   // selected cell: X = column j, Y = row i
	// Reached marks the cells of sample Options.Sample that the growth from
	// the seed has reached (see Spread); nil: cells with any non-zero C_out
	// or hidden value (Reached).
	Reached []bool
	// Influence is, per cell of the sample, how far its state differs from
	// the same timestep run without the seed cell (0: not at all).
	Influence []float32
}

// Options tune a view.
type Options struct {
	Sample  int     // which batch element
	Channel int     // ε̂ / v channel for ViewEps and ViewV
	Hidden  [3]int  // hidden channels shown as R, G, B by ViewHidden
	Limit   float32 // symmetric range for signed views; 0 means the largest |value| shown
	Preview Preview // latent -> RGB; nil shows the first three latent channels directly
}

// Render draws view v of src.
func Render(v View, src *Source, opt Options) (*image.RGBA, error) {
	cfg := src.Cfg
	h, w, cin := cfg.GridH, cfg.GridW, cfg.InChannels
	if h <= 0 || w <= 0 || cin <= 0 {
		return nil, fmt.Errorf("render %v: empty grid %dx%d with %d input channels", v, h, w, cin)
	}
	needState := func() error {
		st := src.State
		if st == nil {
			return fmt.Errorf("render %v: no state", v)
		}
		if st.H != h || st.W != w || st.C != cfg.CellDim() {
			return fmt.Errorf("render %v: state is %dx%dx%d, config wants %dx%dx%d", v, st.H, st.W, st.C, h, w, cfg.CellDim())
		}
		if opt.Sample < 0 || opt.Sample >= st.B {
			return fmt.Errorf("render %v: sample %d out of range [0, %d)", v, opt.Sample, st.B)
		}
		return nil
	}
	planes := func(x []float32, what string) error {
		n := cin * h * w
		if len(x) < (opt.Sample+1)*n || len(x)%n != 0 {
			return fmt.Errorf("render %v: %s has %d values, want a multiple of %d covering sample %d", v, what, len(x), n, opt.Sample)
		}
		return nil
	}
	switch v {
	case ViewX0, ViewXt:
		x, what := src.X0, "x0"
		if v == ViewXt {
			x, what = src.Xt, "x_t"
		}
		if err := planes(x, what); err != nil {
			return nil, err
		}
		if cfg.Latent {
			return LatentImage(x, cin, h, w, opt.Sample, opt.Preview), nil
		}
		return PixelImage(x, cin, h, w, opt.Sample), nil
	case ViewEps, ViewV:
		if err := needState(); err != nil {
			return nil, err
		}
		if opt.Channel < 0 || opt.Channel >= cin {
			return nil, fmt.Errorf("render %v: channel %d out of range [0, %d)", v, opt.Channel, cin)
		}
		ch := cin + opt.Channel
		if v == ViewV {
			ch += cin
		}
		return ChannelImage(src.State, opt.Sample, ch, opt.Limit), nil
	case ViewHidden:
		if err := needState(); err != nil {
			return nil, err
		}
		return HiddenImage(src.State, opt.Sample, cin+cfg.OutChannels(), cfg.HiddenChannels, opt.Hidden, opt.Limit), nil
	case ViewHiddenPCA:
		if err := needState(); err != nil {
			return nil, err
		}
		return HiddenPCAImage(src.State, opt.Sample, cin+cfg.OutChannels(), cfg.HiddenChannels), nil
	case ViewUpdate:
		mag, err := sampleMagnitude(src.Magnitude, h, w, opt.Sample)
		if err != nil {
			return nil, fmt.Errorf("render %v: %w", v, err)
		}
		return HeatImage(mag, h, w, 0), nil
	case ViewAlive:
		if err := needState(); err != nil {
			return nil, err
		}
		var mag []float32
		if src.Magnitude != nil {
			m, err := sampleMagnitude(src.Magnitude, h, w, opt.Sample)
			if err != nil {
				return nil, fmt.Errorf("render %v: %w", v, err)
			}
			mag = m
		}
		reached := src.Reached
		if len(reached) != h*w {
			reached, _ = Reached(src.State, opt.Sample, cin)
		}
		return AliveImage(reached, mag, h, w), nil
	case ViewAttention:
		heads := cfg.Heads
		if heads <= 0 || len(src.Attn) != heads*9 {
			return nil, fmt.Errorf("render %v: have %d attention weights, want %d heads x 9", v, len(src.Attn), heads)
		}
		return AttentionGrid(h, w, src.AttnCell.Y, src.AttnCell.X, src.Attn, heads), nil
	case ViewInfluence:
		if len(src.Influence) != h*w {
			return nil, fmt.Errorf("render %v: the seed influence was not measured for this frame", v)
		}
		return InfluenceImage(src.Influence, h, w), nil
	}
	return nil, fmt.Errorf("render: unknown view %d", int(v))
}

func sampleMagnitude(mag []float32, h, w, b int) ([]float32, error) {
	n := h * w
	if len(mag) < (b+1)*n {
		return nil, fmt.Errorf("magnitude has %d values, want %d per sample for sample %d", len(mag), n, b)
	}
	return mag[b*n : (b+1)*n], nil
}

// ToU8 maps a value in [-1, 1] to a byte the way the reference sampler saves
// images: clamp(127.5·x + 128, 0, 255), truncated.
func ToU8(x float32) uint8 {
	y := 127.5*x + 128
	if !(y > 0) { // NaN too
		return 0
	}
	if y >= 255 {
		return 255
	}
	return uint8(y)
}

// PixelImage draws sample b of a channel-first (B, c, h, w) image in [-1, 1]:
// one channel as grey, three or more as RGB from the first three, two as
// red/green with blue at mid-grey.
func PixelImage(x []float32, c, h, w, b int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	n := h * w
	base := b * c * n
	for p := 0; p < n; p++ {
		var r, g, bl uint8
		switch {
		case c == 1:
			r = ToU8(x[base+p])
			g, bl = r, r
		case c == 2:
			r, g, bl = ToU8(x[base+p]), ToU8(x[base+n+p]), 128
		default:
			r, g, bl = ToU8(x[base+p]), ToU8(x[base+n+p]), ToU8(x[base+2*n+p])
		}
		img.Pix[4*p], img.Pix[4*p+1], img.Pix[4*p+2], img.Pix[4*p+3] = r, g, bl, 255
	}
	return img
}

// LatentImage draws sample b of a latent batch through prev (vae.Preview); with
// a nil prev it shows the first three latent channels as if they were pixels.
func LatentImage(x []float32, c, h, w, b int, prev Preview) *image.RGBA {
	if prev == nil {
		return PixelImage(x, c, h, w, b)
	}
	n := c * h * w
	rgb := prev(x[b*n:(b+1)*n], 1, h, w)
	if len(rgb) != 3*h*w {
		return PixelImage(x, c, h, w, b)
	}
	return PixelImage(rgb, 3, h, w, 0)
}

// symLimit is lim if positive, else the largest finite |value| (1 if all zero).
func symLimit(lim float32, vals func(yield func(float32))) float32 {
	if lim > 0 {
		return lim
	}
	var m float32
	vals(func(x float32) {
		if a := float32(math.Abs(float64(x))); a > m && !math.IsInf(float64(a), 0) {
			m = a
		}
	})
	if m == 0 {
		return 1
	}
	return m
}

// ChannelLimit is the largest finite |value| of channel ch of sample b (1
// when all are zero): the range ChannelImage uses when given no limit.
func ChannelLimit(st *engine.State, b, ch int) float32 {
	n := st.H * st.W
	return symLimit(0, func(y func(float32)) {
		for p := 0; p < n; p++ {
			y(st.Data[(b*n+p)*st.C+ch])
		}
	})
}

// MaxValue is the largest finite value of vals (1 when none is positive):
// the range HeatImage uses when given no maximum.
func MaxValue(vals []float32) float32 {
	var m float32
	for _, x := range vals {
		if x > m && !math.IsInf(float64(x), 0) {
			m = x
		}
	}
	if m == 0 {
		return 1
	}
	return m
}

// ChannelImage draws channel ch of sample b with the Diverging map on the
// symmetric range [-lim, lim] (lim 0: the channel's largest |value|).
// Colour index: round(255·(0.5 + 0.5·x/lim)).
func ChannelImage(st *engine.State, b, ch int, lim float32) *image.RGBA {
	h, w := st.H, st.W
	lim = symLimit(lim, func(y func(float32)) {
		for p := 0; p < h*w; p++ {
			y(st.Data[(b*h*w+p)*st.C+ch])
		}
	})
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for p := 0; p < h*w; p++ {
		x := st.Data[(b*h*w+p)*st.C+ch]
		setPix(img, p, Diverging.At(0.5+0.5*x/lim))
	}
	return img
}

// HiddenImage shows hidden channels chans (indices into C_h) as R, G, B. Each
// channel is scaled by its own largest |value| (or lim) to [-1, 1] and mapped
// with ToU8, so zero is mid-grey. Channels outside [0, nh) stay mid-grey.
func HiddenImage(st *engine.State, b, h0, nh int, chans [3]int, lim float32) *image.RGBA {
	h, w := st.H, st.W
	n := h * w
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for p := 0; p < n; p++ {
		img.Pix[4*p], img.Pix[4*p+1], img.Pix[4*p+2], img.Pix[4*p+3] = 128, 128, 128, 255
	}
	for k, c := range chans {
		if c < 0 || c >= nh {
			continue
		}
		ch := h0 + c
		l := symLimit(lim, func(y func(float32)) {
			for p := 0; p < n; p++ {
				y(st.Data[(b*n+p)*st.C+ch])
			}
		})
		for p := 0; p < n; p++ {
			img.Pix[4*p+k] = ToU8(st.Data[(b*n+p)*st.C+ch] / l)
		}
	}
	return img
}

// HiddenPCAImage projects the nh hidden channels (starting at channel h0) of
// every cell onto the first three principal components across cells and shows
// them as R, G, B, each scaled by its largest |projection|. Each component's
// sign is fixed so that its largest-|coefficient| entry is positive, which keeps
// colours stable from frame to frame.
func HiddenPCAImage(st *engine.State, b, h0, nh int) *image.RGBA {
	h, w := st.H, st.W
	n := h * w
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for p := 0; p < n; p++ {
		img.Pix[4*p], img.Pix[4*p+1], img.Pix[4*p+2], img.Pix[4*p+3] = 128, 128, 128, 255
	}
	if nh == 0 {
		return img
	}
	mean := make([]float64, nh)
	for p := 0; p < n; p++ {
		cell := st.Data[(b*n+p)*st.C+h0:]
		for c := 0; c < nh; c++ {
			mean[c] += float64(cell[c])
		}
	}
	for c := range mean {
		mean[c] /= float64(n)
	}
	cov := make([]float64, nh*nh)
	d := make([]float64, nh)
	for p := 0; p < n; p++ {
		cell := st.Data[(b*n+p)*st.C+h0:]
		for c := 0; c < nh; c++ {
			d[c] = float64(cell[c]) - mean[c]
		}
		for i := 0; i < nh; i++ {
			for j := i; j < nh; j++ {
				cov[i*nh+j] += d[i] * d[j]
			}
		}
	}
	for i := 0; i < nh; i++ {
		for j := 0; j < i; j++ {
			cov[i*nh+j] = cov[j*nh+i]
		}
	}
	vals, vecs := symEigen(cov, nh)
	proj := make([]float64, n)
	for k := 0; k < 3 && k < nh; k++ {
		if vals[k] <= 1e-12*math.Max(1, vals[0]) {
			break // no variance left: keep grey
		}
		vec := vecs[k]
		var m float64
		for p := 0; p < n; p++ {
			cell := st.Data[(b*n+p)*st.C+h0:]
			var s float64
			for c := 0; c < nh; c++ {
				s += (float64(cell[c]) - mean[c]) * vec[c]
			}
			proj[p] = s
			m = math.Max(m, math.Abs(s))
		}
		if m == 0 {
			continue
		}
		for p := 0; p < n; p++ {
			img.Pix[4*p+k] = ToU8(float32(proj[p] / m))
		}
	}
	return img
}

// symEigen returns the eigenvalues of the symmetric n x n matrix a (row-major)
// in decreasing order and their unit eigenvectors, by cyclic Jacobi rotations.
// Each vector's largest-|entry| is made positive.
func symEigen(a []float64, n int) ([]float64, [][]float64) {
	a = append([]float64(nil), a...)
	v := make([]float64, n*n)
	for i := 0; i < n; i++ {
		v[i*n+i] = 1
	}
	for sweep := 0; sweep < 60; sweep++ {
		var off, diag float64
		for i := 0; i < n; i++ {
			diag += a[i*n+i] * a[i*n+i]
			for j := i + 1; j < n; j++ {
				off += a[i*n+j] * a[i*n+j]
			}
		}
		if off <= 1e-30*diag || off == 0 {
			break
		}
		for p := 0; p < n; p++ {
			for q := p + 1; q < n; q++ {
				apq := a[p*n+q]
				if apq == 0 {
					continue
				}
				theta := (a[q*n+q] - a[p*n+p]) / (2 * apq)
				t := 1 / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				if theta < 0 {
					t = -t
				}
				c := 1 / math.Sqrt(t*t+1)
				s := t * c
				for k := 0; k < n; k++ { // columns p, q
					akp, akq := a[k*n+p], a[k*n+q]
					a[k*n+p], a[k*n+q] = c*akp-s*akq, s*akp+c*akq
				}
				for k := 0; k < n; k++ { // rows p, q
					apk, aqk := a[p*n+k], a[q*n+k]
					a[p*n+k], a[q*n+k] = c*apk-s*aqk, s*apk+c*aqk
				}
				for k := 0; k < n; k++ {
					vkp, vkq := v[k*n+p], v[k*n+q]
					v[k*n+p], v[k*n+q] = c*vkp-s*vkq, s*vkp+c*vkq
				}
			}
		}
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	// insertion sort by decreasing eigenvalue; ties keep the lower index first
	for i := 1; i < n; i++ {
		for j := i; j > 0 && a[idx[j]*n+idx[j]] > a[idx[j-1]*n+idx[j-1]]; j-- {
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
	vals := make([]float64, n)
	vecs := make([][]float64, n)
	for r, i := range idx {
		vals[r] = a[i*n+i]
		vec := make([]float64, n)
		big := 0
		for k := 0; k < n; k++ {
			vec[k] = v[k*n+i]
			if math.Abs(vec[k]) > math.Abs(vec[big])+1e-12 {
				big = k
			}
		}
		if vec[big] < 0 {
			for k := range vec {
				vec[k] = -vec[k]
			}
		}
		vecs[r] = vec
	}
	return vals, vecs
}

// HeatImage draws h·w non-negative values with the Heat map on [0, max]
// (max 0: the largest value). Colour index: round(255·x/max).
func HeatImage(vals []float32, h, w int, max float32) *image.RGBA {
	if max <= 0 {
		for _, x := range vals[:h*w] {
			if x > max && !math.IsInf(float64(x), 0) {
				max = x
			}
		}
		if max == 0 {
			max = 1
		}
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for p := 0; p < h*w; p++ {
		setPix(img, p, Heat.At(vals[p]/max))
	}
	return img
}

// Reached reports, for sample b, which cells hold any non-zero C_out or hidden
// value (the cells the growth from the seed has reached), and their fraction.
func Reached(st *engine.State, b, cin int) ([]bool, float64) {
	n := st.H * st.W
	out := make([]bool, n)
	count := 0
	for p := 0; p < n; p++ {
		cell := st.Data[(b*n+p)*st.C : (b*n+p+1)*st.C]
		for _, x := range cell[cin:] {
			if x != 0 {
				out[p] = true
				count++
				break
			}
		}
	}
	return out, float64(count) / float64(n)
}

// Spread advances the set of cells reached from the seed by one cell update.
// Information moves only through the 3x3 attention neighbourhood, and only
// into cells the update changed (mag > 0, i.e. the stochastic mask let them
// update): a cell becomes reached when it was updated while itself or one of
// its eight neighbours was reached. prev is not modified.
func Spread(prev []bool, mag []float32, h, w int) []bool {
	out := append([]bool(nil), prev...)
	for i := 0; i < h; i++ {
		for j := 0; j < w; j++ {
			p := i*w + j
			if prev[p] || !(mag[p] > 0) {
				continue
			}
			for di := -1; di <= 1 && !out[p]; di++ {
				for dj := -1; dj <= 1; dj++ {
					y, x := i+di, j+dj
					if y >= 0 && x >= 0 && y < h && x < w && prev[y*w+x] {
						out[p] = true
						break
					}
				}
			}
		}
	}
	return out
}

// Colours of the alive view.
var (
	UnreachedColor = color.RGBA{18, 18, 24, 255}
)

// AliveImage draws cells not yet reached in UnreachedColor and reached cells
// with the Heat map at 0.35 + 0.65·mag/max(mag) (0.35 when mag is nil), so the
// cells the last update changed most glow brightest.
func AliveImage(reached []bool, mag []float32, h, w int) *image.RGBA {
	var max float32
	for _, m := range mag {
		if m > max && !math.IsInf(float64(m), 0) {
			max = m
		}
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for p := 0; p < h*w; p++ {
		if !reached[p] {
			setPix(img, p, UnreachedColor)
			continue
		}
		t := float32(0.35)
		if max > 0 {
			t += 0.65 * mag[p] / max
		}
		setPix(img, p, Heat.At(t))
	}
	return img
}

// AttentionMean averages heads·9 attention weights over heads: 9 values, slot
// k = 3a+b is the neighbour at (row offset a-1, column offset b-1).
func AttentionMean(attn []float32, heads int) [9]float32 {
	var m [9]float32
	for hd := 0; hd < heads; hd++ {
		for k := 0; k < 9; k++ {
			m[k] += attn[hd*9+k]
		}
	}
	for k := range m {
		m[k] /= float32(heads)
	}
	return m
}

// AttentionGrid draws an h x w grid where the 3x3 neighbourhood of cell (i, j)
// shows its head-averaged attention weights with the Heat map on [0, max
// weight]; every other cell is UnreachedColor. Slots that fall outside the grid
// (zero-padded keys) are not drawn.
func AttentionGrid(h, w, i, j int, attn []float32, heads int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for p := 0; p < h*w; p++ {
		setPix(img, p, UnreachedColor)
	}
	m := AttentionMean(attn, heads)
	var max float32
	for _, x := range m {
		max = float32(math.Max(float64(max), float64(x)))
	}
	if max == 0 {
		max = 1
	}
	for k := 0; k < 9; k++ {
		y, x := i+k/3-1, j+k%3-1
		if y < 0 || y >= h || x < 0 || x >= w {
			continue
		}
		setPix(img, y*w+x, Heat.At(m[k]/max))
	}
	return img
}

// AttentionHeads draws one 3x3 tile per head, left to right, each slot cell x
// cell pixels with a 1-pixel gap (GapColor) between tiles, in Heat colours on
// [0, largest weight over all heads] so heads are comparable.
func AttentionHeads(attn []float32, heads, cell int) *image.RGBA {
	if cell < 1 {
		cell = 1
	}
	tile := 3 * cell
	img := image.NewRGBA(image.Rect(0, 0, heads*tile+(heads-1), tile))
	fill(img, img.Bounds(), GapColor)
	var max float32
	for _, x := range attn[:heads*9] {
		max = float32(math.Max(float64(max), float64(x)))
	}
	if max == 0 {
		max = 1
	}
	for hd := 0; hd < heads; hd++ {
		x0 := hd * (tile + 1)
		for k := 0; k < 9; k++ {
			r := image.Rect(x0+(k%3)*cell, (k/3)*cell, x0+(k%3+1)*cell, (k/3+1)*cell)
			fill(img, r, Heat.At(attn[hd*9+k]/max))
		}
	}
	return img
}

// GapColor separates tiles and montage cells.
var GapColor = color.RGBA{40, 40, 46, 255}

func setPix(img *image.RGBA, p int, c color.RGBA) {
	img.Pix[4*p], img.Pix[4*p+1], img.Pix[4*p+2], img.Pix[4*p+3] = c.R, c.G, c.B, c.A
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}
