package eval

import (
	"context"
	"fmt"
	"math"

	"geca/engine"
	"geca/engine/data"
	"geca/engine/sample"
	"geca/engine/train"
)

// TargetResult scores samples of a model trained on a few fixed targets (one
// image per class, such as the emoji model) against those targets.
type TargetResult struct {
	PerClass int
	// Error is, per class, the mean absolute difference between a sample (as
	// shown: clamped to [−1, 1]) and its class's target, per pixel and
	// channel, in [0, 1] (1: black against white), at the best alignment within ±Shift pixels (the training
	// images are shifted copies).
	Error []float64
	// Variety is, per class, the mean absolute difference between two
	// samples of the class (same units, no alignment): 0 when every sample
	// is the same image.
	Variety []float64
	// Nearest is the fraction of samples whose closest target (aligned as
	// for Error) is the requested one, and Confusion[requested][closest]
	// counts them.
	Nearest   float64
	Confusion [][]int
	Shift     int
	Images    []float32 // the samples, class-major, (C, H, W) each
}

// Targets are one target image per class, for scoring images (in the
// sampler's (C, H, W) layout) against them.
type Targets struct {
	C, H, W int
	img     [][]float32 // per class, (C, H, W)
}

// NewTargets takes image k of ds as the target of class k (the data set's
// cell-major layout, pixels in [−1, 1]).
func NewTargets(ds *data.Dataset) *Targets {
	t := &Targets{C: ds.C, H: ds.H, W: ds.W, img: make([][]float32, ds.N)}
	planes := train.Planes(ds.Pixels, ds.N, ds.C, ds.H*ds.W)
	sz := ds.C * ds.H * ds.W
	for k := range t.img {
		t.img[k] = planes[k*sz : (k+1)*sz : (k+1)*sz]
	}
	return t
}

// Nearest scores image x (C, H, W) against every target at the best
// alignment within ±shift pixels (Error's measure): the class of the
// closest target and the error to each.
func (t *Targets) Nearest(x []float32, shift int) (int, []float64) {
	errs := make([]float64, len(t.img))
	best := 0
	for k, tg := range t.img {
		errs[k] = alignedError(x, tg, t.C, t.H, t.W, shift)
		if errs[k] < errs[best] {
			best = k
		}
	}
	return best, errs
}

// MatchTargets samples perClass images of every class with opt and scores
// them against targets (one image per class, in the data set's cell-major
// layout, pixels in [−1, 1]).
func MatchTargets(m *engine.Model, targets *data.Dataset, perClass, batch, shift int, opt sample.Options) (*TargetResult, error) {
	cfg := m.Cfg
	K := cfg.NumClasses
	if targets.N != K || targets.H != cfg.GridH || targets.W != cfg.GridW || targets.C != cfg.InChannels {
		return nil, fmt.Errorf("targets: %d images of %dx%dx%d for a model of %d classes on %dx%dx%d",
			targets.N, targets.H, targets.W, targets.C, K, cfg.GridH, cfg.GridW, cfg.InChannels)
	}
	n := cfg.InChannels * cfg.Cells()
	tg := NewTargets(targets)
	res := &TargetResult{PerClass: perClass, Error: make([]float64, K), Variety: make([]float64, K), Confusion: make([][]int, K), Shift: shift}
	for k := range res.Confusion {
		res.Confusion[k] = make([]int, K)
	}
	var labels []int
	for k := 0; k < K; k++ {
		for i := 0; i < perClass; i++ {
			labels = append(labels, k)
		}
	}
	for s := 0; s < len(labels); s += batch {
		e := min(s+batch, len(labels))
		o := opt
		o.Seed, o.N, o.Labels = opt.Seed+uint64(s), e-s, nil
		for _, l := range labels[s:e] {
			y := make([]float32, K)
			y[l] = 1
			o.Labels = append(o.Labels, y)
		}
		imgs, err := sample.Run(context.Background(), m, o)
		if err != nil {
			return nil, err
		}
		res.Images = append(res.Images, imgs...)
	}
	ok := 0
	for i, l := range labels {
		bestK, errs := tg.Nearest(res.Images[i*n:(i+1)*n], shift)
		res.Error[l] += errs[l] / float64(perClass)
		res.Confusion[l][bestK]++
		if bestK == l {
			ok++
		}
	}
	res.Nearest = float64(ok) / float64(len(labels))
	res.Variety = Variety(res.Images, K, perClass, n)
	return res, nil
}

// Variety is, for each of K classes of perClass images of n values each
// (class-major), the mean absolute difference between two images of the
// class (meanAbs over every pair): 0 when all are the same image, about 0.5
// between independent images of black and white noise. It shows what
// guidance trades for agreement: strong guidance draws one image per class.
func Variety(imgs []float32, K, perClass, n int) []float64 {
	v := make([]float64, K)
	for k := range v {
		var sum float64
		pairs := 0
		for a := 0; a < perClass; a++ {
			for b := a + 1; b < perClass; b++ {
				sum += meanAbs(imgs[(k*perClass+a)*n:(k*perClass+a+1)*n], imgs[(k*perClass+b)*n:(k*perClass+b+1)*n])
				pairs++
			}
		}
		if pairs > 0 {
			v[k] = sum / float64(pairs)
		}
	}
	return v
}

// clamp1 is a value as an image shows it: clamped to [−1, 1].
func clamp1(v float32) float64 { return math.Min(math.Max(float64(v), -1), 1) }

// meanAbs is the mean |a − b| of two images as shown (values clamped to
// [−1, 1]), in [0, 1] units.
func meanAbs(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += math.Abs(clamp1(a[i]) - clamp1(b[i]))
	}
	return s / float64(len(a)) / 2
}

// alignedError is the smallest meanAbs between x and t moved by up to
// shift pixels; pixels moved in from outside count as t's corner colour
// (the background).
func alignedError(x, t []float32, C, H, W, shift int) float64 {
	best := math.Inf(1)
	hw := H * W
	for dy := -shift; dy <= shift; dy++ {
		for dx := -shift; dx <= shift; dx++ {
			var s float64
			for c := 0; c < C; c++ {
				bg := t[c*hw]
				for i := 0; i < H; i++ {
					for j := 0; j < W; j++ {
						v := bg
						if si, sj := i-dy, j-dx; si >= 0 && si < H && sj >= 0 && sj < W {
							v = t[c*hw+si*W+sj]
						}
						s += math.Abs(clamp1(x[c*hw+i*W+j]) - float64(v))
					}
				}
			}
			best = min(best, s/float64(C*hw)/2)
		}
	}
	return best
}
