package eval

import (
	"math"
	"math/rand/v2"
	"testing"

	"geca/engine"
	"geca/engine/data"
	"geca/engine/sample"
)

func TestAlignedError(t *testing.T) {
	const C, H, W = 3, 8, 8
	r := rand.New(rand.NewPCG(1, 2))
	tgt := make([]float32, C*H*W)
	for c := 0; c < C; c++ {
		for p := 0; p < H*W; p++ {
			i, j := p/W, p%W
			v := float32(1) // background in the corners and edges
			if i >= 2 && i < 6 && j >= 2 && j < 6 {
				v = float32(r.Float64()*2 - 1)
			}
			tgt[c*H*W+p] = v
		}
	}
	// The target moved right by 1 and up by 2: error 0 within ±2, not at ±0.
	moved := make([]float32, len(tgt))
	for c := 0; c < C; c++ {
		for i := 0; i < H; i++ {
			for j := 0; j < W; j++ {
				v := float32(1)
				if si, sj := i+2, j-1; si < H && sj >= 0 {
					v = tgt[c*H*W+si*W+sj]
				}
				moved[c*H*W+i*W+j] = v
			}
		}
	}
	if d := alignedError(moved, tgt, C, H, W, 2); d != 0 {
		t.Errorf("shifted copy: error %v, want 0", d)
	}
	if d := alignedError(moved, tgt, C, H, W, 0); d == 0 {
		t.Error("shifted copy without alignment: error 0")
	}
	black := make([]float32, len(tgt))
	for i := range black {
		black[i] = -1
	}
	white := make([]float32, len(tgt))
	for i := range white {
		white[i] = 1
	}
	if d := meanAbs(black, white); d != 1 {
		t.Errorf("black against white %v, want 1", d)
	}
}

// MatchTargets runs end to end on a tiny random model: every sample gets a
// closest target, and the numbers are in range.
func TestMatchTargetsRuns(t *testing.T) {
	cfg := engine.Config{Name: "tiny", GridH: 6, GridW: 6, InChannels: 3, HiddenChannels: 2, EmbedDim: 8, Heads: 2, MLPDim: 8, NumClasses: 2, M: 2, UpdateRate: 0.5}
	m, err := engine.NewRandomModel(cfg, 1, 0.3)
	if err != nil {
		t.Fatal(err)
	}
	tg := &data.Dataset{N: 2, H: 6, W: 6, C: 3, Classes: []string{"a", "b"}, Labels: []int{0, 1}, Pixels: make([]float32, 2*6*6*3)}
	for i := range tg.Pixels {
		tg.Pixels[i] = float32(i%7)/7 - 0.5
	}
	res, err := MatchTargets(m, tg, 3, 4, 1, sample.Options{Steps: "3", GHG: true, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for k := range res.Confusion {
		for _, c := range res.Confusion[k] {
			total += c
		}
		if !(res.Error[k] >= 0 && res.Error[k] <= 1) || !(res.Variety[k] >= 0 && res.Variety[k] <= 1) {
			t.Errorf("class %d: error %v, variety %v", k, res.Error[k], res.Variety[k])
		}
	}
	if total != 6 || len(res.Images) != 6*3*36 || res.Nearest < 0 || res.Nearest > 1 {
		t.Errorf("%d confusion entries, %d values, nearest %v", total, len(res.Images), res.Nearest)
	}
	if _, err := MatchTargets(m, &data.Dataset{N: 1, H: 6, W: 6, C: 3}, 1, 1, 0, sample.Options{}); err == nil {
		t.Error("one target for two classes accepted")
	}
}

// Nearest names the target an image is a copy of (error 0 to it) from the
// data set's cell-major images, whatever their channel count.
func TestTargetsNearest(t *testing.T) {
	ds := &data.Dataset{N: 3, H: 4, W: 4, C: 3, Labels: []int{0, 1, 2}, Classes: []string{"a", "b", "c"}}
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < ds.N*ds.H*ds.W*ds.C; i++ {
		ds.Pixels = append(ds.Pixels, float32(r.Float64()*2-1))
	}
	tg := NewTargets(ds)
	// image 1 in the sampler's (C, H, W) layout
	x := make([]float32, 3*16)
	for p := 0; p < 16; p++ {
		for c := 0; c < 3; c++ {
			x[c*16+p] = ds.Image(1)[p*3+c]
		}
	}
	k, errs := tg.Nearest(x, 1)
	if k != 1 || errs[1] != 0 || !(errs[0] > 0 && errs[2] > 0) {
		t.Fatalf("nearest %d, errors %v: want 1 with error 0", k, errs)
	}
}

// Variety averages meanAbs over every pair within a class, and only within:
// class 0 holds three copies of one image, class 1 black, white and 3 (shown
// clamped to white), so its pairs differ by 1, 1 and 0.
func TestVariety(t *testing.T) {
	const n = 4
	img := func(v float32) []float32 { return []float32{v, v, v, v} }
	var imgs []float32
	for _, v := range []float32{0.5, 0.5, 0.5, -1, 1, 3} {
		imgs = append(imgs, img(v)...)
	}
	got := Variety(imgs, 2, 3, n)
	if want := []float64{0, 2.0 / 3}; got[0] != want[0] || math.Abs(got[1]-want[1]) > 1e-15 {
		t.Errorf("variety %v, want %v", got, want)
	}
	if got := Variety(img(1), 1, 1, n); got[0] != 0 {
		t.Errorf("one image: variety %v, want 0", got)
	}
}
