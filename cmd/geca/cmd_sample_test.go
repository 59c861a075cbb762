package main

import (
	"encoding/json"
	"fmt"
	"geca/assets"
	"image/gif"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"geca/engine"
	"geca/engine/ckpt"
	"geca/internal/npy"
)

// writeTinyCheckpoint saves a small random-weight latent model as our own
// .safetensors (config in the geca.config metadata).
func writeTinyCheckpoint(t *testing.T, dir string, latent bool) string {
	t.Helper()
	cfg := engine.Config{Name: "tiny", GridH: 8, GridW: 8, InChannels: 4, HiddenChannels: 6, EmbedDim: 16, Heads: 2,
		MLPDim: 24, NumClasses: 3, M: 4, UpdateRate: 0.5, Latent: latent}
	if !latent {
		cfg.InChannels = 3
	}
	m, err := engine.NewRandomModel(cfg, 3, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(cfg)
	path := filepath.Join(dir, "tiny.safetensors")
	if err := ckpt.SaveSafetensors(path, m.Tensors(), m.Names(), map[string]string{ckpt.MetaConfig: string(js)}); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSampleCommand(t *testing.T) {
	dir := t.TempDir()
	ck := writeTinyCheckpoint(t, dir, true)
	out, gifPath, lat := filepath.Join(dir, "grid.png"), filepath.Join(dir, "g.gif"), filepath.Join(dir, "x.npy")
	base := []string{"sample", "--ckpt", ck, "--n", "3", "--steps", "5", "--class", "1", "--seed", "4", "--quiet"}
	code, _, stderr := capture(t, append(base, "--out", out, "--gif", gifPath, "--npy", lat)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	a, err := npy.ReadFile(lat)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Shape, []int{3, 4, 8, 8}) {
		t.Errorf("latents shape %v", a.Shape)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	// 3 samples in a 2x2 grid of 8x8 tiles upscaled to 256 px.
	if b := img.Bounds(); b.Dx() < 2*256 || b.Dy() < 2*256 {
		t.Errorf("grid is %v", b)
	}
	g, err := os.Open(gifPath)
	if err != nil {
		t.Fatal(err)
	}
	an, err := gif.DecodeAll(g)
	g.Close()
	if err != nil {
		t.Fatal(err)
	}
	// 4 cell updates of the first timestep, then 5 timesteps.
	if len(an.Image) != 4+5 {
		t.Errorf("GIF has %d frames, want 9", len(an.Image))
	}

	// Same seed, same latents; GHG off or another M changes them.
	lat2 := filepath.Join(dir, "x2.npy")
	read := func(args ...string) []float32 {
		t.Helper()
		if code, _, stderr := capture(t, append(append(slices.Clone(base), "--npy", lat2), args...)...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		b, err := npy.ReadFile(lat2)
		if err != nil {
			t.Fatal(err)
		}
		return b.Data
	}
	if !slices.Equal(read(), a.Data) {
		t.Error("same seed gave different latents")
	}
	if slices.Equal(read("--ghg", "off"), a.Data) {
		t.Error("--ghg off gave the same latents")
	}
	if slices.Equal(read("--M", "2"), a.Data) {
		t.Error("--M 2 gave the same latents")
	}

	// An M sweep: one row per M, each with the same seed.
	sweep := read("--M", "2,4")
	if len(sweep) != 2*len(a.Data) || !slices.Equal(sweep[len(a.Data):], a.Data) {
		t.Error("the M=4 row of the sweep differs from the single M=4 run")
	}
	code, _, stderr = capture(t, append(slices.Clone(base), "--M", "2,4", "--out", out, "--gif", gifPath)...)
	if code != 0 {
		t.Fatalf("sweep with images: exit %d: %s", code, stderr)
	}

	// Notes on stderr without --quiet.
	_, _, stderr = capture(t, "sample", "--ckpt", ck, "--n", "1", "--steps", "2", "--out", out)
	for _, want := range []string{"preview", "unconditionally", "samples/min"} {
		t.Run(want, func(t *testing.T) {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q: %s", want, stderr)
			}
		})
	}
}

func TestSampleCommandPixelModel(t *testing.T) {
	dir := t.TempDir()
	ck := writeTinyCheckpoint(t, dir, false)
	out := filepath.Join(dir, "grid.png")
	code, _, stderr := capture(t, "sample", "--ckpt", ck, "--n", "2", "--steps", "ddim3", "--labels", "0,1,0;1,0,0", "--cfg", "1", "--out", out, "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
	// --clip-x0 keeps every sample in [-1, 1] (the last step returns x̂0),
	// where this random model's unclipped samples leave it.
	outside := func(clip bool) int {
		t.Helper()
		npyOut := filepath.Join(dir, fmt.Sprintf("clip-%v.npy", clip))
		args := []string{"sample", "--ckpt", ck, "--n", "2", "--steps", "ddim3", "--labels", "0,1,0", "--cfg", "3", "--npy", npyOut}
		if clip {
			args = append(args, "--clip-x0")
		}
		code, _, stderr := capture(t, args...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if said := strings.Contains(stderr, "x0 clipped"); said != clip {
			t.Errorf("--clip-x0 %v, but the settings line says %q", clip, stderr)
		}
		a, err := npy.ReadFile(npyOut)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, v := range a.Data {
			if !(v >= -1 && v <= 1) {
				n++
			}
		}
		return n
	}
	if n := outside(false); n == 0 {
		t.Fatal("unclipped samples stay in [-1, 1]: the --clip-x0 check shows nothing")
	}
	if n := outside(true); n != 0 {
		t.Errorf("--clip-x0: %d values outside [-1, 1]", n)
	}
}

// Without --ckpt, sample grows the built-in model, as the viewer opens on.
func TestSampleCommandDefaultModel(t *testing.T) {
	dir := t.TempDir()
	out, npyOut := filepath.Join(dir, "grid.png"), filepath.Join(dir, "x.npy")
	code, _, stderr := capture(t, "sample", "--class", "1", "--n", "2", "--steps", "ddim5", "--out", out, "--npy", npyOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "geca-fmnist.safetensors (built in)") {
		t.Errorf("stderr does not say the built-in model is used: %s", stderr)
	}
	a, err := npy.ReadFile(npyOut)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{2, 1, 28, 28}; fmt.Sprint(a.Shape) != fmt.Sprint(want) {
		t.Errorf("samples shape %v, want %v", a.Shape, want)
	}
}

// --model picks a built-in model by name: the emoji model grows 32x32 RGB
// samples with its own measured defaults; --model with --ckpt, or a name
// that is not built in, is a usage error that lists the names.
func TestSampleCommandBuiltinModels(t *testing.T) {
	dir := t.TempDir()
	npyOut := filepath.Join(dir, "e.npy")
	code, _, stderr := capture(t, "sample", "--model", "emoji", "--class", "0", "--n", "1", "--steps", "ddim3", "--npy", npyOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "geca-emoji.safetensors (built in)") || !strings.Contains(stderr, "CFG "+fmt.Sprint(assets.Emoji.Sampler.CFG)) ||
		!strings.Contains(stderr, "GHG "+onOff(assets.Emoji.Sampler.GHG)) {
		t.Errorf("stderr does not name the emoji model, its CFG and its GHG: %s", stderr)
	}
	// a flag overrides the model's measured default
	ghg := onOff(!assets.Emoji.Sampler.GHG)
	if code, _, stderr := capture(t, "sample", "--model", "emoji", "--n", "1", "--steps", "ddim2", "--ghg", ghg, "--npy", npyOut); code != 0 || !strings.Contains(stderr, "GHG "+ghg) {
		t.Errorf("--ghg %s: exit %d, %s", ghg, code, stderr)
	}
	a, err := npy.ReadFile(npyOut)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{1, 3, 32, 32}; fmt.Sprint(a.Shape) != fmt.Sprint(want) {
		t.Errorf("samples shape %v, want %v", a.Shape, want)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--model", "emoji", "--ckpt", "x.pt"}, "not both"},
		{[]string{"--model", "lizard"}, "fmnist, emoji"},
		{[]string{"--model", "emoji", "--class", "10"}, "class"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, stderr := capture(t, append(append([]string{"sample"}, c.args...), "--out", filepath.Join(dir, "o.png"))...)
			if code != 2 || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d, stderr %q: want exit 2 and %q", code, stderr, c.want)
			}
		})
	}
}

func TestSampleCommandErrors(t *testing.T) {
	dir := t.TempDir()
	ck := writeTinyCheckpoint(t, dir, true)
	out := filepath.Join(dir, "o.png")
	for _, args := range [][]string{
		{"sample", "--ckpt", ck},                                  // nothing to write
		{"sample", "--ckpt", ck, "--out", out, "--class", "7"},    // class out of range
		{"sample", "--ckpt", ck, "--out", out, "--labels", "1,0"}, // wrong label width
		{"sample", "--ckpt", ck, "--out", out, "--class", "1", "--labels", "1,0,0"},
		{"sample", "--ckpt", ck, "--out", out, "--M", "0"}, // M list
		{"sample", "--ckpt", ck, "--out", out, "--M", "2,x"},
		{"sample", "--ckpt", ck, "--out", out, "--ghg", "maybe"},
		{"sample", "--ckpt", ck, "--out", out, "--steps", "abc"},
		{"sample", "--ckpt", ck, "--out", out, "--cfg", "-1"},
		{"sample", "--ckpt", ck, "--out", out, "--n", "0"},
		{"sample", "--ckpt", ck, "--out", out, "--method", "euler"},
		{"sample", "--ckpt", ck, "--out", out, "--gif-timesteps", "x"},
		{"sample", "--ckpt", ck, "--out", out, "extra"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			if code, _, stderr := capture(t, args...); code != 2 {
				t.Errorf("%v: exit %d, want 2 (%s)", args[1:], code, stderr)
			}
		})
	}
	// A missing or corrupt file is a run-time error naming the file.
	bad := filepath.Join(dir, "bad.safetensors")
	os.WriteFile(bad, []byte("not a checkpoint"), 0o644)
	for _, p := range []string{filepath.Join(dir, "missing.pt"), bad} {
		t.Run(p, func(t *testing.T) {
			code, _, stderr := capture(t, "sample", "--ckpt", p, "--out", out)
			if code != 1 || !strings.Contains(stderr, filepath.Base(p)) {
				t.Errorf("%s: exit %d: %s", p, code, stderr)
			}
		})
	}
}
