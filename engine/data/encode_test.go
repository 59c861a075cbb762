package data

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"geca/engine/vae"
)

// poolEncoder is a stand-in VAE whose output is easy to compute from the
// pixels: latent channel c at (y, x) is the mean of image channel c over the
// 2x2 block (2y.., 2x..); the posterior sample adds the noise.
type poolEncoder struct{ calls int }

func (p *poolEncoder) InChannels() int     { return 3 }
func (p *poolEncoder) LatentChannels() int { return 3 }
func (p *poolEncoder) Downscale() int      { return 2 }

func (p *poolEncoder) Encode(img []float32, b, h, w int) ([]float32, error) {
	p.calls++
	out := make([]float32, b*3*(h/2)*(w/2))
	for n := 0; n < b; n++ {
		for c := 0; c < 3; c++ {
			plane := img[(n*3+c)*h*w : (n*3+c+1)*h*w]
			for y := 0; y < h/2; y++ {
				for x := 0; x < w/2; x++ {
					s := plane[2*y*w+2*x] + plane[2*y*w+2*x+1] + plane[(2*y+1)*w+2*x] + plane[(2*y+1)*w+2*x+1]
					out[((n*3+c)*(h/2)+y)*(w/2)+x] = s / 4
				}
			}
		}
	}
	return out, nil
}

func (p *poolEncoder) EncodeSample(img []float32, b, h, w int, noise []float32) ([]float32, error) {
	out, _ := p.Encode(img, b, h, w)
	for i := range out {
		out[i] += noise[i]
	}
	return out, nil
}

// writeClassImages makes a class folder of n small gradient PNGs per class.
func writeClassImages(t *testing.T, dir string, classes []string, n, side int) {
	t.Helper()
	for ci, cls := range classes {
		os.MkdirAll(filepath.Join(dir, cls), 0o755)
		for k := 0; k < n; k++ {
			img := image.NewRGBA(image.Rect(0, 0, side+3*k, side))
			for y := 0; y < side; y++ {
				for x := 0; x < side+3*k; x++ {
					img.Set(x, y, color.RGBA{uint8(9 * x), uint8(13 * y), uint8(60*ci + 20*k), 255})
				}
			}
			f, err := os.Create(filepath.Join(dir, cls, string(rune('a'+k))+".png"))
			if err != nil {
				t.Fatal(err)
			}
			png.Encode(f, img)
			f.Close()
		}
	}
}

func TestEncodeFolderLayout(t *testing.T) {
	dir := t.TempDir()
	writeClassImages(t, dir, []string{"cat", "dog"}, 3, 12)
	const size = 8
	// The reference: LoadFolder's cell-major pixels, pooled by hand.
	ref, err := LoadFolder(dir, size, 3)
	if err != nil {
		t.Fatal(err)
	}
	var calls [][2]int
	enc := &poolEncoder{}
	ds, err := EncodeFolder(dir, size, enc, EncodeOptions{Batch: 4, Progress: func(done, total int) { calls = append(calls, [2]int{done, total}) }})
	if err != nil {
		t.Fatal(err)
	}
	if ds.N != 6 || ds.H != 4 || ds.W != 4 || ds.C != 3 || !slices.Equal(ds.Classes, []string{"cat", "dog"}) || !slices.Equal(ds.Labels, ref.Labels) {
		t.Fatalf("dataset %d x %dx%dx%d, classes %v, labels %v", ds.N, ds.H, ds.W, ds.C, ds.Classes, ds.Labels)
	}
	if enc.calls != 2 || !slices.Equal(calls, [][2]int{{0, 6}, {4, 6}, {6, 6}}) {
		t.Errorf("%d encoder calls, progress %v; want 2 and [[0 6] [4 6] [6 6]]", enc.calls, calls)
	}
	for n := 0; n < ds.N; n++ {
		src, got := ref.Image(n), ds.Image(n)
		for y := 0; y < 4; y++ {
			for x := 0; x < 4; x++ {
				for c := 0; c < 3; c++ {
					px := func(yy, xx int) float32 { return src[(yy*size+xx)*3+c] }
					want := (px(2*y, 2*x) + px(2*y, 2*x+1) + px(2*y+1, 2*x) + px(2*y+1, 2*x+1)) / 4
					if g := got[(y*4+x)*3+c]; math.Abs(float64(g-want)) > 1e-6 {
						t.Fatalf("image %d latent (%d, %d, c%d) = %v, want %v", n, y, x, c, g, want)
					}
				}
			}
		}
	}

	// Posterior samples: the noise of image i depends on (seed, i) only,
	// not on the batching; another seed gives other noise.
	a, err := EncodeFolder(dir, size, &poolEncoder{}, EncodeOptions{Batch: 1, Sample: true, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	b, err := EncodeFolder(dir, size, &poolEncoder{}, EncodeOptions{Batch: 5, Sample: true, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	c, err := EncodeFolder(dir, size, &poolEncoder{}, EncodeOptions{Sample: true, Seed: 8})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Pixels, b.Pixels) {
		t.Error("posterior samples depend on the batch size")
	}
	if slices.Equal(a.Pixels, c.Pixels) || slices.Equal(a.Pixels, ds.Pixels) {
		t.Error("posterior samples do not depend on the seed")
	}

	if _, err := EncodeFolder(dir, 9, enc, EncodeOptions{}); err == nil || !strings.Contains(err.Error(), "multiple of 2") {
		t.Errorf("size 9: %v", err)
	}
	if _, err := EncodeFolder(t.TempDir(), 8, enc, EncodeOptions{}); err == nil || !strings.Contains(err.Error(), "no class subfolders") {
		t.Errorf("empty folder: %v", err)
	}
}

func TestEncodeFolderVAE(t *testing.T) {
	// The real encoder (the tiny fixture, 8x downscale) gives, for each image,
	// what vae.Encoder.Encode gives for LoadFolder's pixels in channel-first order.
	enc, err := vae.LoadEncoder("../vae/testdata/enc_tiny")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeClassImages(t, dir, []string{"a", "b"}, 2, 20)
	const size = 16
	ds, err := EncodeFolder(dir, size, enc, EncodeOptions{Batch: 3})
	if err != nil {
		t.Fatal(err)
	}
	if ds.N != 4 || ds.H != 2 || ds.W != 2 || ds.C != 4 {
		t.Fatalf("dataset %d x %dx%dx%d", ds.N, ds.H, ds.W, ds.C)
	}
	ref, err := LoadFolder(dir, size, 3)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < ref.N; n++ {
		img := make([]float32, 3*size*size)
		for p := 0; p < size*size; p++ {
			for c := 0; c < 3; c++ {
				img[c*size*size+p] = ref.Image(n)[p*3+c]
			}
		}
		z, err := enc.Encode(img, 1, size, size)
		if err != nil {
			t.Fatal(err)
		}
		for p := 0; p < 4; p++ {
			for c := 0; c < 4; c++ {
				if g, w := ds.Image(n)[p*4+c], z[c*4+p]; g != w {
					t.Fatalf("image %d cell %d channel %d: %v, want %v", n, p, c, g, w)
				}
			}
		}
	}
	if _, err := EncodeFolder(dir, 12, enc, EncodeOptions{}); err == nil || !strings.Contains(err.Error(), "multiple of 8") {
		t.Errorf("size 12: %v", err)
	}
}
