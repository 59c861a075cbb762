package vae

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"geca/engine/ckpt"
	"geca/engine/compute"
	"geca/internal/npy"
	"geca/internal/numcheck"
)

// checkEncoderGolden encodes golden.npz's image with e and compares the mean
// and the posterior sample (with the stored noise) with PyTorch (float64):
// max |diff| <= tol. The latents are scaled by 0.18215, so they are about
// 0.2 in size; tol is absolute.
func checkEncoderGolden(t *testing.T, e *Encoder, goldenPath string, tol float64) {
	t.Helper()
	g, err := npy.ReadNPZ(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	img, noise := g["image"], g["noise"]
	b, h, w := img.Shape[0], img.Shape[2], img.Shape[3]
	orig := append([]float32(nil), img.Data...)
	if lh, lw := e.LatentSize(h, w); lh != noise.Shape[2] || lw != noise.Shape[3] {
		t.Fatalf("LatentSize(%d, %d) = %dx%d, want %dx%d", h, w, lh, lw, noise.Shape[2], noise.Shape[3])
	}
	for _, c := range []struct {
		name string
		enc  func() ([]float32, error)
	}{
		{"mean", func() ([]float32, error) { return e.Encode(img.Data, b, h, w) }},
		{"sample", func() ([]float32, error) { return e.EncodeSample(img.Data, b, h, w, noise.Data) }},
	} {
		got, err := c.enc()
		if err != nil {
			t.Fatal(err)
		}
		want := g[c.name]
		if len(got) != len(want.Data) {
			t.Fatalf("%s: %d values, want %d (shape %v)", c.name, len(got), len(want.Data), want.Shape)
		}
		diff, scale := numcheck.MaxAbsErr(got, want.Data)
		t.Logf("%s %s: max |diff| %.3g (latent scale %.3g, relative %.3g)", goldenPath, c.name, diff, scale, diff/scale)
		if diff > tol {
			t.Errorf("%s: max |diff| %.3g > %.3g", c.name, diff, tol)
		}
	}
	for i := range orig {
		if img.Data[i] != orig[i] {
			t.Fatal("Encode modified the image")
		}
	}
}

func TestEncoderGoldenTiny(t *testing.T) {
	// A diffusers folder: 4 levels (8x downscale, as SD), float16 weights,
	// batch 2, 16x24 images.
	e, err := LoadEncoder("testdata/enc_tiny")
	if err != nil {
		t.Fatal(err)
	}
	if e.Downscale() != 8 || e.Cfg.NormNumGroups != 4 || len(e.DownBlocks) != 4 || len(e.DownBlocks[0].Resnets) != 1 || e.QuantConv == nil {
		t.Fatalf("config not read: %+v", e.Cfg)
	}
	checkEncoderGolden(t, e, "testdata/enc_tiny/golden.npz", 1e-5)
	// A second encode reuses the buffers and gives the same result.
	checkEncoderGolden(t, e, "testdata/enc_tiny/golden.npz", 1e-5)
}

func TestEncoderGoldenOriginalSD(t *testing.T) {
	// Original SD single-file layout next to UNet and decoder tensors; the
	// shape is inferred from the tensors.
	e, err := LoadEncoder("testdata/enc_ldm/model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	c := e.Cfg
	if len(c.BlockOutChannels) != 2 || c.BlockOutChannels[0] != 32 || c.LayersPerBlock != 1 || c.LatentChannels != 4 || c.InChannels != 3 || c.NormNumGroups != 32 || e.QuantConv == nil || len(e.MidBlock.Attentions) != 1 {
		t.Fatalf("inferred config %+v", c)
	}
	checkEncoderGolden(t, e, "testdata/enc_ldm/golden.npz", 1e-5)
}

func TestStridedConvGolden(t *testing.T) {
	// Odd (7) and even (10) sides: the (0, 1, 0, 1) pad only matters for odd ones.
	g, err := npy.ReadNPZ("testdata/conv_s2.npz")
	if err != nil {
		t.Fatal(err)
	}
	x, wt, bias, y := g["x"], g["weight"], g["bias"], g["y"]
	b, cin, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	cout := wt.Shape[0]
	c, err := compute.NewStridedConv(cout, cin, wt.Data, bias.Data)
	if err != nil {
		t.Fatal(err)
	}
	oh, ow := c.OutputSize(h, w)
	if oh != y.Shape[2] || ow != y.Shape[3] {
		t.Fatalf("OutputSize(%d, %d) = %dx%d, want %v", h, w, oh, ow, y.Shape)
	}
	got := make([]float32, len(y.Data))
	var col []float32
	for n := 0; n < b; n++ {
		c.Forward(got[n*cout*oh*ow:(n+1)*cout*oh*ow], x.Data[n*cin*h*w:(n+1)*cin*h*w], h, w, &col)
	}
	diff, scale := numcheck.MaxAbsErr(got, y.Data)
	t.Logf("stride-2 conv: max |diff| %.3g (scale %.3g)", diff, scale)
	if diff > 1e-5 {
		t.Errorf("max |diff| %.3g > 1e-5", diff)
	}
}

// encoderShapes lists every encoder tensor (diffusers names) and its shape.
func encoderShapes(cfg Config) map[string][]int {
	s := shapeList{}
	boc := cfg.BlockOutChannels
	top := boc[len(boc)-1]
	s.conv("encoder.conv_in", boc[0], cfg.inChannels(), 3)
	prev := boc[0]
	for i, c := range boc {
		for j := 0; j < cfg.LayersPerBlock; j++ {
			s.resnet(fmt.Sprintf("encoder.down_blocks.%d.resnets.%d", i, j), prev, c)
			prev = c
		}
		if i < len(boc)-1 {
			s.conv(fmt.Sprintf("encoder.down_blocks.%d.downsamplers.0.conv", i), c, c, 3)
		}
	}
	s.midBlock("encoder.mid_block", top, true)
	s.norm("encoder.conv_norm_out", top)
	s.conv("encoder.conv_out", 2*cfg.LatentChannels, top, 3)
	s.conv("quant_conv", 2*cfg.LatentChannels, 2*cfg.LatentChannels, 1)
	return s
}

func numel(shapes map[string][]int) int {
	n := 0
	for _, sh := range shapes {
		p := 1
		for _, d := range sh {
			p *= d
		}
		n += p
	}
	return n
}

func TestEncoderParamCount(t *testing.T) {
	// The fixture file holds exactly the tensors encoderShapes lists.
	tensors, _, _, err := ckpt.LoadSafetensors("testdata/enc_tiny/" + WeightsFile)
	if err != nil {
		t.Fatal(err)
	}
	e, err := LoadEncoder("testdata/enc_tiny")
	if err != nil {
		t.Fatal(err)
	}
	shapes := encoderShapes(e.Cfg)
	if len(shapes) != len(tensors) {
		t.Errorf("%d tensors in the file, encoderShapes lists %d", len(tensors), len(shapes))
	}
	for name, sh := range shapes {
		tt, ok := tensors[name]
		if !ok || fmt.Sprint([]int(tt.Shape())) != fmt.Sprint(sh) {
			t.Errorf("%s: file has %v, want %v", name, tt, sh)
		}
	}
	if got, want := e.ParamCount(), numel(shapes); got != want {
		t.Errorf("ParamCount = %d, want %d", got, want)
	}
	// SD's encoder with quant_conv: AutoencoderKL's 83,653,863 parameters
	// less the decoder's 49,490,199 (post_quant_conv included).
	if n := numel(encoderShapes(DefaultConfig())); n != 34163664 {
		t.Errorf("SD encoder has %d parameters, want 34,163,664", n)
	}
}

func TestEncodeBadInput(t *testing.T) {
	e, err := LoadEncoder("testdata/enc_tiny")
	if err != nil {
		t.Fatal(err)
	}
	expect := func(what string, err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error containing %q", what, err, want)
		}
	}
	_, err = e.Encode(make([]float32, 10), 1, 16, 16)
	expect("short image", err, "image has 10 values")
	_, err = e.Encode(make([]float32, 3*12*16), 1, 12, 16)
	expect("12x16 image", err, "multiple of 8")
	_, err = e.Encode(nil, 0, 16, 16)
	expect("empty batch", err, "bad image size")
	_, err = e.EncodeSample(make([]float32, 3*16*16), 1, 16, 16, make([]float32, 3))
	expect("short noise", err, "noise has 3 values")
	_, err = e.Encode(nil, 1, 1<<14, 1<<14)
	expect("huge image", err, "limit")
}

// writeTensors writes tensors as a safetensors file in dir.
func writeTensors(t *testing.T, dir, name string, tensors map[string]*tensor.Dense) string {
	t.Helper()
	var names []string
	for k := range tensors {
		names = append(names, k)
	}
	p := filepath.Join(dir, name)
	if err := ckpt.SaveSafetensors(p, tensors, names, nil); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadEncoderErrors(t *testing.T) {
	expect := func(path, want string) {
		t.Helper()
		_, err := LoadEncoder(path)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadEncoder(%s): got %v, want an error containing %q", path, err, want)
		}
	}
	expect(filepath.Join(t.TempDir(), "nope"), "no such file")

	// A decoder-only file: the decoder fixture without its encoder stubs.
	tensors, _, _, err := ckpt.LoadSafetensors("testdata/tiny/" + WeightsFile)
	if err != nil {
		t.Fatal(err)
	}
	for k := range tensors {
		if strings.HasPrefix(k, "encoder.") || strings.HasPrefix(k, "quant_conv.") {
			delete(tensors, k)
		}
	}
	dir := t.TempDir()
	decOnly := writeTensors(t, dir, "decoder_only.safetensors", tensors)
	expect(decOnly, "no VAE encoder tensors")
	expect(decOnly, "decoder_only.safetensors")

	// The decoder fixtures hold only a stub encoder.conv_in.weight.
	expect("testdata/tiny", `missing tensor "encoder.conv_in.bias"`)

	// A config whose widths do not match the weights: the tensor is named.
	wrong := copyDir(t, "testdata/enc_tiny")
	writeFile(t, filepath.Join(wrong, "config.json"), `{"block_out_channels": [8, 8, 16, 32], "layers_per_block": 1, "norm_num_groups": 4}`)
	expect(wrong, `tensor "encoder.down_blocks.3.resnets.0.conv1.weight" has shape [16 16 3 3], want [32 16 3 3]`)

	deep := copyDir(t, "testdata/enc_tiny")
	writeFile(t, filepath.Join(deep, "config.json"), `{"block_out_channels": [8, 8, 16, 16], "layers_per_block": 2, "norm_num_groups": 4}`)
	expect(deep, `missing tensor "encoder.down_blocks.0.resnets.1.norm1.weight"`)

	zero := copyDir(t, "testdata/enc_tiny")
	writeFile(t, filepath.Join(zero, "config.json"), `{"block_out_channels": [8, 8, 16, 16], "layers_per_block": 0, "norm_num_groups": 4}`)
	expect(zero, "at least one resnet")

	// A single file whose encoder lacks a tensor the shape is read from.
	tensors, _, _, err = ckpt.LoadSafetensors("testdata/enc_tiny/" + WeightsFile)
	if err != nil {
		t.Fatal(err)
	}
	delete(tensors, "encoder.conv_out.weight")
	expect(writeTensors(t, dir, "no_conv_out.safetensors", tensors), `missing tensor "encoder.conv_out.weight"`)
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
