package main

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"geca/engine/vae"
	"geca/internal/npy"
)

func TestDecodeCommand(t *testing.T) {
	dir := t.TempDir()
	g, err := npy.ReadNPZ("../../engine/vae/testdata/mid/golden.npz")
	if err != nil {
		t.Fatal(err)
	}
	lat, want := g["latent"], g["image"]
	latPath := filepath.Join(dir, "lat.npy")
	if err := npy.WriteFile(latPath, lat.Shape, lat.Data); err != nil {
		t.Fatal(err)
	}
	out, outNpy := filepath.Join(dir, "img.png"), filepath.Join(dir, "img.npy")
	code, _, stderr := capture(t, "decode", "--vae", "../../engine/vae/testdata/mid", "--latent", latPath, "--out", out, "--npy", outNpy, "--cols", "2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got, err := npy.ReadFile(outNpy)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Shape) != 4 || got.Shape[0] != 2 || got.Shape[1] != 3 || got.Shape[2] != 28 || got.Shape[3] != 20 {
		t.Fatalf("npy shape %v, want [2 3 28 20]", got.Shape)
	}
	for i, v := range want.Data {
		if !(math.Abs(float64(got.Data[i]-v)) <= 1e-4) {
			t.Fatalf("value %d: %v, want %v", i, got.Data[i], v)
		}
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	im, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := im.Bounds(); b.Dx() != 2*20+2 || b.Dy() != 28 {
		t.Errorf("PNG is %v, want a 2x1 grid of 20x28 with a 2-pixel gap", b)
	}

	// TAESD through the same command.
	tg, err := npy.ReadNPZ("../../engine/vae/testdata/taesd/golden.npz")
	if err != nil {
		t.Fatal(err)
	}
	if err := npy.WriteFile(latPath, tg["latent"].Shape, tg["latent"].Data); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := capture(t, "decode", "--vae", "../../engine/vae/testdata/taesd", "--latent", latPath, "--npy", outNpy); code != 0 {
		t.Fatalf("taesd: exit %d: %s", code, stderr)
	}
	got, err = npy.ReadFile(outNpy)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range tg["image"].Data {
		if !(math.Abs(float64(got.Data[i]-v)) <= 1e-4) {
			t.Fatalf("taesd value %d: %v, want %v", i, got.Data[i], v)
		}
	}

	// The 4x3 approximation: pixel (y, x) of the output is Preview's pixel (y/8, x/8).
	if code, _, stderr := capture(t, "decode", "--approx", "--latent", latPath, "--npy", outNpy); code != 0 {
		t.Fatalf("approx: exit %d: %s", code, stderr)
	}
	got, err = npy.ReadFile(outNpy)
	if err != nil {
		t.Fatal(err)
	}
	tl := tg["latent"]
	pb, ph, pw := tl.Shape[0], tl.Shape[2], tl.Shape[3]
	pv := vae.Preview(tl.Data, pb, ph, pw)
	if len(got.Shape) != 4 || got.Shape[2] != 8*ph || got.Shape[3] != 8*pw {
		t.Fatalf("approx shape %v", got.Shape)
	}
	oh, ow := 8*ph, 8*pw
	for p := 0; p < pb*3; p++ {
		for y := 0; y < oh; y++ {
			for x := 0; x < ow; x++ {
				if g, w := got.Data[(p*oh+y)*ow+x], pv[(p*ph+y/8)*pw+x/8]; g != w {
					t.Fatalf("approx plane %d (%d, %d): %v, want %v", p, y, x, g, w)
				}
			}
		}
	}

	// Bad calls.
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"decode", "--latent", latPath, "--out", out}, 2, "--vae DIR (or --approx) is required"},
		{[]string{"decode", "--approx", "--vae", "x", "--latent", latPath, "--out", out}, 2, "not both"},
		{[]string{"decode", "--vae", "x", "--latent", latPath}, 2, "--out IMG.png and/or --npy"},
		{[]string{"decode", "--vae", dir, "--latent", latPath, "--out", out}, 1, "no config.json"},
		{[]string{"decode", "--vae", "../../engine/vae/testdata/mid", "--latent", filepath.Join(dir, "none.npy"), "--out", out}, 1, "none.npy"},
		{[]string{"decode", "--vae", "../../engine/vae/testdata/mid", "--latent", outNpy, "--out", out}, 1, "3 latent channels"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, stderr := capture(t, c.args...)
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Errorf("%v: exit %d %q, want exit %d with %q", c.args, code, stderr, c.code, c.want)
			}
		})
	}
}
