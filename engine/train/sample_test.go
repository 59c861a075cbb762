package train

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"

	"geca/engine"
	"geca/engine/sample"
)

// TestSampleIsAppSampler: Sample draws exactly what engine/sample draws from
// the same weights and settings, with the labels one-hot (−1: all zero), the
// images turned cell-major, and every scale ≤ 1 meaning no guidance.
func TestSampleIsAppSampler(t *testing.T) {
	cfg := engine.Config{Name: "sample", GridH: 5, GridW: 6, InChannels: 2, HiddenChannels: 3, EmbedDim: 8,
		Heads: 2, MLPDim: 12, NumClasses: 3, M: 3, UpdateRate: 0.5}
	p, err := NewParams[float32](cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.InitRandom(11, 0.1)
	ts, _ := p.Tensors()
	model, err := engine.NewModel(cfg, ts)
	if err != nil {
		t.Fatal(err)
	}
	labels := []int{2, -1, 0}
	onehot := [][]float32{{0, 0, 1}, {0, 0, 0}, {1, 0, 0}}
	// app runs engine/sample directly (default snapshots) and returns its
	// (N, C, H, W) result.
	app := func(opt sample.Options) []float32 {
		t.Helper()
		opt.Labels, opt.N = onehot, len(onehot)
		s, err := sample.New(model, opt)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RunToEnd(context.Background()); err != nil {
			t.Fatal(err)
		}
		x, err := s.Result()
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	N, C, cells := len(labels), cfg.InChannels, cfg.Cells()
	for _, tc := range []struct {
		name string
		opt  SampleOptions
		want sample.Options
	}{
		{"GHG, CFG 1.5", SampleOptions{Steps: 4, CFG: 1.5, Seed: 3}, sample.Options{Steps: "4", GHG: true, CFG: 1.5, Seed: 3}},
		{"GHG off, no guidance", SampleOptions{Steps: 5, CFG: 1, Seed: 4, NoGHG: true}, sample.Options{Steps: "5", CFG: 1, Seed: 4}},
		{"negative scale is no guidance", SampleOptions{Steps: 3, CFG: -2, Seed: 5}, sample.Options{Steps: "3", GHG: true, CFG: 0, Seed: 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Sample(p, labels, tc.opt)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			want := app(tc.want)
			if len(got) != N*cells*C {
				t.Fatalf("%s: %d values, want %d", tc.name, len(got), N*cells*C)
			}
			for b := 0; b < N; b++ {
				for i := 0; i < cells; i++ {
					for k := 0; k < C; k++ {
						g, w := got[(b*cells+i)*C+k], want[(b*C+k)*cells+i]
						if g != w {
							t.Fatalf("%s: image %d cell %d channel %d = %g, engine/sample %g", tc.name, b, i, k, g, w)
						}
						if math.IsNaN(float64(g)) || math.IsInf(float64(g), 0) {
							t.Fatalf("%s: non-finite sample %g", tc.name, g)
						}
					}
				}
			}
		})
	}
	// The seed matters and is the only source of randomness.
	a, _ := Sample(p, labels, SampleOptions{Steps: 3, Seed: 7})
	b, _ := Sample(p, labels, SampleOptions{Steps: 3, Seed: 7})
	c, _ := Sample(p, labels, SampleOptions{Steps: 3, Seed: 8})
	if !slices.Equal(a, b) || slices.Equal(a, c) {
		t.Fatal("Sample is not a deterministic function of its seed")
	}
}

func TestSampleRejectsBadInput(t *testing.T) {
	p, err := NewParams[float32](tinyConfig())
	if err != nil {
		t.Fatal(err)
	}
	for ci, tc := range []struct {
		labels []int
		opt    SampleOptions
	}{
		{[]int{0}, SampleOptions{Steps: 0}},
		{[]int{3}, SampleOptions{Steps: 2}},
		{[]int{-2}, SampleOptions{Steps: 2}},
		{[]int{0}, SampleOptions{Steps: 1001}},
		{nil, SampleOptions{Steps: 2}},
	} {
		t.Run(fmt.Sprint(ci), func(t *testing.T) {
			if _, err := Sample(p, tc.labels, tc.opt); err == nil {
				t.Errorf("labels %v, %+v accepted", tc.labels, tc.opt)
			}
		})
	}
}

// TestCellMajorPlanes: two RGB images of two cells, each value its own
// (image, cell, channel) code, moved both ways between the layouts.
func TestCellMajorPlanes(t *testing.T) {
	// planes: image b, channel k, cell i holds 100b + 10k + i
	planes := []float32{0, 1, 10, 11, 20, 21, 100, 101, 110, 111, 120, 121}
	cells := []float32{0, 10, 20, 1, 11, 21, 100, 110, 120, 101, 111, 121}
	if got := CellMajor(planes, 2, 3, 2); !slices.Equal(got, cells) {
		t.Fatalf("CellMajor = %v, want %v", got, cells)
	}
	if got := Planes(cells, 2, 3, 2); !slices.Equal(got, planes) {
		t.Fatalf("Planes = %v, want %v", got, planes)
	}
	if got := Planes(planes[:4], 2, 1, 2); &got[0] != &planes[0] {
		t.Fatal("with one channel the layouts are the same; Planes copied")
	}
}
