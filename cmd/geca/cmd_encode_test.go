package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"geca/engine/ckpt"
	"geca/internal/npy"
)

func TestEncodeThenTrain(t *testing.T) {
	dir := writeImageFolder(t)
	lat := filepath.Join(t.TempDir(), "latents")
	args := []string{"encode", "--images", dir, "--vae", tinyVAE, "--size", "32", "--out", lat, "--sample", "--flip", "--seed", "4"}
	code, _, stderr := capture(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"posterior sample, random horizontal flips", "32x32 images to 4x4x4 latents", "encoded 6 images", "geca train --latents " + lat} {
		t.Run(want, func(t *testing.T) {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr)
			}
		})
	}
	a, err := npy.ReadFile(filepath.Join(lat, "features_train", "5.npy"))
	if err != nil || len(a.Shape) != 4 || a.Shape[0] != 1 || a.Shape[1] != 4 || a.Shape[2] != 4 || a.Shape[3] != 4 {
		t.Fatalf("features_train/5.npy: %v, %v", a, err)
	}
	l, err := npy.ReadFile(filepath.Join(lat, "labels_train", "5.npy"))
	if err != nil || len(l.Data) != 2 || l.Data[0] != 0 || l.Data[1] != 1 {
		t.Fatalf("labels_train/5.npy: %v, %v", l, err)
	}

	// Again: nothing to do; the latents are untouched.
	code, _, stderr = capture(t, args...)
	if code != 0 || !strings.Contains(stderr, "6 of 6 latents were already in") || !strings.Contains(stderr, "encoded 0 images") {
		t.Fatalf("second run: exit %d: %s", code, stderr)
	}
	b, err := npy.ReadFile(filepath.Join(lat, "features_train", "5.npy"))
	if err != nil || !slices.Equal(a.Data, b.Data) {
		t.Fatalf("second run changed a latent (%v)", err)
	}
	// Other settings into the same folder are refused.
	code, _, stderr = capture(t, "encode", "--images", dir, "--vae", tinyVAE, "--size", "32", "--out", lat)
	if code != 1 || !strings.Contains(stderr, "holds latents of other images or settings (sample: true, now false)") {
		t.Fatalf("other settings: exit %d: %s", code, stderr)
	}

	out := filepath.Join(t.TempDir(), "m.safetensors")
	code, _, stderr = capture(t, "train", "--latents", lat, "--config", "tiny", "--steps", "2", "--batch", "2", "--preview-minutes", "0", "--out", out)
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	m, _, err := ckpt.LoadModel(out, ckpt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c := m.Cfg; !c.Latent || c.InChannels != 4 || c.GridH != 4 || c.NumClasses != 2 {
		t.Errorf("trained model config %+v", c)
	}
}

func TestEncodeErrors(t *testing.T) {
	dir := writeImageFolder(t)
	out := t.TempDir()
	busy := t.TempDir()
	os.WriteFile(filepath.Join(busy, "x"), nil, 0o644)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--images", dir, "--vae", tinyVAE}, 2, "--out DIR are required"},
		{[]string{"--images", dir, "--vae", tinyVAE, "--out", out, "--size", "4"}, 2, "--size 4: want 8 to 4096"},
		{[]string{"--images", dir, "--vae", tinyVAE, "--out", out, "--batch", "0"}, 2, "--batch 0"},
		{[]string{"--images", dir, "--vae", tinyVAE, "--out", out, "--size", "36"}, 1, "--size 36 must be a multiple of 8"},
		{[]string{"--images", dir, "--vae", filepath.Join(dir, "nope"), "--out", out, "--size", "32"}, 1, "nope"},
		{[]string{"--images", t.TempDir(), "--vae", tinyVAE, "--out", out, "--size", "32"}, 1, "no class subfolders"},
		{[]string{"--images", dir, "--vae", tinyVAE, "--out", busy, "--size", "32"}, 1, "not empty and has no encode.json"},
		{[]string{"--images", dir, "--vae", tinyVAE, "--out", out, "--size", "32", "--fold", "a/b"}, 1, `fold "a/b"`},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, stderr := capture(t, append([]string{"encode"}, c.args...)...)
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Errorf("geca encode %v: exit %d, %q; want exit %d and %q", c.args, code, stderr, c.code, c.want)
			}
		})
	}
}
