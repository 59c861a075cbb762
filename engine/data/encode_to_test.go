package data

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestEncodeFolderToRoundTrip(t *testing.T) {
	dir := t.TempDir()
	writeClassImages(t, dir, []string{"cat", "dog"}, 3, 12)
	opt := EncodeOptions{Batch: 4, Sample: true, Flip: true, Seed: 3}
	want, err := EncodeFolder(dir, 8, &poolEncoder{}, opt)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "latents")
	rep, err := EncodeFolderTo(context.Background(), dir, 8, &poolEncoder{}, opt, LatentFolder{Dir: out, VAE: "pool"})
	if err != nil {
		t.Fatal(err)
	}
	if rep != (EncodeReport{Total: 6, Encoded: 6}) {
		t.Errorf("report %+v", rep)
	}
	for _, f := range []string{"features_train/0.npy", "features_train/5.npy", "labels_train/5.npy", "classes.txt", "encode.json"} {
		t.Run(f, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(out, f)); err != nil {
				t.Error(err)
			}
		})
	}
	got, err := LoadLatents(out)
	if err != nil {
		t.Fatal(err)
	}
	if got.N != 6 || got.H != 4 || got.W != 4 || got.C != 3 || !slices.Equal(got.Pixels, want.Pixels) ||
		!slices.Equal(got.Labels, want.Labels) || !slices.Equal(got.Classes, []string{"cat", "dog"}) {
		t.Fatalf("read back %d x %dx%dx%d, classes %v, labels %v (want %v); pixels equal: %v",
			got.N, got.H, got.W, got.C, got.Classes, got.Labels, want.Labels, slices.Equal(got.Pixels, want.Pixels))
	}
	if !slices.Equal(got.Multi[:4], []float32{1, 0, 1, 0}) || !slices.Equal(got.Multi[6:8], []float32{0, 1}) {
		t.Errorf("one-hot labels %v", got.Multi)
	}
}

func TestEncodeFolderToResumes(t *testing.T) {
	dir := t.TempDir()
	writeClassImages(t, dir, []string{"a", "b", "c"}, 3, 10)
	opt := EncodeOptions{Batch: 2, Sample: true, Seed: 5}
	want, err := EncodeFolder(dir, 8, &poolEncoder{}, opt)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	to := LatentFolder{Dir: out, Fold: "0", VAE: "pool"}

	// Stopped after the second batch: the four latents written stay.
	ctx, cancel := context.WithCancel(context.Background())
	stop := opt
	stop.Progress = func(done, total int) {
		if done >= 4 {
			cancel()
		}
	}
	rep, err := EncodeFolderTo(ctx, dir, 8, &poolEncoder{}, stop, to)
	if !errors.Is(err, context.Canceled) || rep.Encoded != 4 {
		t.Fatalf("cancelled run: %+v, %v", rep, err)
	}
	// A half-written file of an earlier crash is ignored and replaced.
	os.WriteFile(filepath.Join(out, "features_0", "4.npy.tmp"), []byte("junk"), 0o644)
	part, err := LoadLatents(out)
	if err != nil || part.N != 4 {
		t.Fatalf("partial folder: %v images, %v", part, err)
	}

	enc := &poolEncoder{}
	rep, err = EncodeFolderTo(context.Background(), dir, 8, enc, opt, to)
	if err != nil || rep != (EncodeReport{Total: 9, Encoded: 5, Kept: 4}) || enc.calls != 3 {
		t.Fatalf("resumed run: %+v (%d encoder calls), %v", rep, enc.calls, err)
	}
	got, err := LoadLatents(out)
	if err != nil || !slices.Equal(got.Pixels, want.Pixels) || !slices.Equal(got.Labels, want.Labels) {
		t.Fatalf("resumed latents differ from one run's (%v)", err)
	}

	// Nothing left to do.
	rep, err = EncodeFolderTo(context.Background(), dir, 8, &poolEncoder{}, opt, to)
	if err != nil || rep != (EncodeReport{Total: 9, Kept: 9}) {
		t.Fatalf("third run: %+v, %v", rep, err)
	}
}

func TestEncodeFolderToRefuses(t *testing.T) {
	dir := t.TempDir()
	writeClassImages(t, dir, []string{"a", "b"}, 2, 10)
	out := t.TempDir()
	opt := EncodeOptions{Seed: 1}
	if _, err := EncodeFolderTo(context.Background(), dir, 8, &poolEncoder{}, opt, LatentFolder{Dir: out, VAE: "pool"}); err != nil {
		t.Fatal(err)
	}
	more := t.TempDir()
	writeClassImages(t, more, []string{"a", "b"}, 3, 10)
	foreign := t.TempDir()
	os.WriteFile(filepath.Join(foreign, "notes.txt"), []byte("mine"), 0o644)
	for ci, c := range []struct {
		images string
		opt    EncodeOptions
		to     LatentFolder
		want   string
	}{
		{dir, EncodeOptions{Seed: 2}, LatentFolder{Dir: out, VAE: "pool"}, "(seed: 1, now 2)"},
		{dir, EncodeOptions{Seed: 1, Flip: true}, LatentFolder{Dir: out, VAE: "pool"}, "(flip: false, now true)"},
		{dir, opt, LatentFolder{Dir: out, VAE: "other"}, "(vae: pool, now other)"},
		{more, opt, LatentFolder{Dir: out, VAE: "pool"}, "holds latents of other images or settings (images:"},
		{dir, opt, LatentFolder{Dir: foreign, VAE: "pool"}, "not empty and has no encode.json"},
		{dir, opt, LatentFolder{Dir: t.TempDir(), Fold: "../x"}, `fold "../x": want a plain name`},
		{dir, opt, LatentFolder{Dir: filepath.Join(dir, "lat")}, "the latents folder is inside the images folder"},
	} {
		t.Run(fmt.Sprint(ci), func(t *testing.T) {
			_, err := EncodeFolderTo(context.Background(), c.images, 8, &poolEncoder{}, c.opt, c.to)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%+v: %v, want %q", c.to, err, c.want)
			}
		})
	}
	if b, _ := os.ReadFile(filepath.Join(foreign, "notes.txt")); string(b) != "mine" {
		t.Error("a foreign folder was touched")
	}
}

func TestEncodeFlip(t *testing.T) {
	// Each latent is the pooled image or the pooled mirror image; the flips
	// depend on the seed and image index only, and both occur.
	dir := t.TempDir()
	writeClassImages(t, dir, []string{"x", "y"}, 4, 12)
	plain, err := EncodeFolder(dir, 8, &poolEncoder{}, EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := EncodeFolder(dir, 8, &poolEncoder{}, EncodeOptions{Flip: true, Seed: 9, Batch: 3})
	if err != nil {
		t.Fatal(err)
	}
	b, err := EncodeFolder(dir, 8, &poolEncoder{}, EncodeOptions{Flip: true, Seed: 9, Batch: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Pixels, b.Pixels) {
		t.Error("flips depend on the batch size")
	}
	flipped := 0
	for n := 0; n < plain.N; n++ {
		p, g := plain.Image(n), a.Image(n)
		mirror := make([]float32, len(p))
		for y := 0; y < 4; y++ {
			for x := 0; x < 4; x++ {
				copy(mirror[(y*4+x)*3:(y*4+x+1)*3], p[(y*4+3-x)*3:(y*4+4-x)*3])
			}
		}
		// (the pooling's sums run in mirrored order: equal up to rounding)
		near := func(u, v []float32) bool {
			for i := range u {
				if !(math.Abs(float64(u[i]-v[i])) <= 1e-6) {
					return false
				}
			}
			return true
		}
		switch {
		case near(g, p):
		case near(g, mirror):
			flipped++
		default:
			t.Fatalf("image %d is neither the image nor its mirror", n)
		}
	}
	if flipped == 0 || flipped == plain.N {
		t.Errorf("%d of %d images flipped", flipped, plain.N)
	}
}
