package vae

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"geca/internal/npy"
)

// checkGolden decodes golden.npz's latent with d and compares with the
// PyTorch (float64) image: max |diff| <= tol·max(1, max |image|).
func checkGolden(t *testing.T, d *Decoder, goldenPath string, tol float64) {
	t.Helper()
	g, err := npy.ReadNPZ(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	lat, img := g["latent"], g["image"]
	b, h, w := lat.Shape[0], lat.Shape[2], lat.Shape[3]
	orig := append([]float32(nil), lat.Data...)
	got, err := d.Decode(lat.Data, b, h, w)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(img.Data) {
		t.Fatalf("decoded %d values, want %d (shape %v)", len(got), len(img.Data), img.Shape)
	}
	if oh, ow := d.OutputSize(h, w); oh != img.Shape[2] || ow != img.Shape[3] {
		t.Fatalf("OutputSize = %dx%d, want %dx%d", oh, ow, img.Shape[2], img.Shape[3])
	}
	scale, maxDiff := 1.0, 0.0
	for _, v := range img.Data {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	for i, v := range img.Data {
		maxDiff = math.Max(maxDiff, math.Abs(float64(got[i])-float64(v)))
	}
	t.Logf("%s: max |diff| %.3g (image scale %.3g)", goldenPath, maxDiff, scale)
	if maxDiff > tol*scale {
		t.Errorf("max |diff| %.3g > %.3g", maxDiff, tol*scale)
	}
	for i := range orig {
		if lat.Data[i] != orig[i] {
			t.Fatal("Decode modified the latent")
		}
	}
}

func TestDecoderGoldenTiny(t *testing.T) {
	d, err := LoadDecoder("testdata/tiny")
	if err != nil {
		t.Fatal(err)
	}
	if d.Cfg.NormNumGroups != 4 || len(d.UpBlocks) != 2 || len(d.UpBlocks[0].Resnets) != 3 {
		t.Fatalf("config not read: %+v", d.Cfg)
	}
	checkGolden(t, d, "testdata/tiny/golden.npz", 1e-4)
	// A second decode reuses the buffers and gives the same result.
	checkGolden(t, d, "testdata/tiny/golden.npz", 1e-4)
}

func TestDecoderGoldenMid(t *testing.T) {
	// Float16 weights, query/key/value/proj_attn names with (C, C, 1, 1)
	// shapes, batch 2, a 7x5 latent, scaling and shift factors from config.json.
	d, err := LoadDecoder("testdata/mid")
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, d, "testdata/mid/golden.npz", 1e-4)
}

func TestDecoderGoldenOriginalSD(t *testing.T) {
	// Original SD single-file layout; the shape is inferred from the tensors.
	d, err := LoadDecoder("testdata/tiny_ldm/model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	c := d.Cfg
	if len(c.BlockOutChannels) != 2 || c.BlockOutChannels[0] != 32 || c.LayersPerBlock != 1 || c.LatentChannels != 4 || c.NormNumGroups != 32 {
		t.Fatalf("inferred config %+v", c)
	}
	checkGolden(t, d, "testdata/tiny_ldm/golden.npz", 1e-4)
}

func TestDecodeBadInput(t *testing.T) {
	d, err := LoadDecoder("testdata/tiny")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Decode(make([]float32, 10), 1, 4, 4); err == nil || !strings.Contains(err.Error(), "latent has 10 values") {
		t.Errorf("short latent: %v", err)
	}
	if _, err := d.Decode(nil, 0, 4, 4); err == nil {
		t.Error("empty batch: want an error")
	}
	if _, err := d.Decode(nil, 1, -1, 4); err == nil {
		t.Error("negative size: want an error")
	}
	// Too large to allocate: an error, before anything is allocated.
	mid, err := LoadDecoder("testdata/mid")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mid.Decode(nil, 1, 4096, 4096); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("huge latent: %v", err)
	}
}

// copyDir copies a fixture folder so a test can damage it.
func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

func TestLoadDecoderErrors(t *testing.T) {
	expect := func(dir, want string) {
		t.Helper()
		_, err := LoadDecoder(dir)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadDecoder(%s): got %v, want an error containing %q", dir, err, want)
		}
	}
	expect(filepath.Join(t.TempDir(), "nope"), "no such file")

	noCfg := copyDir(t, "testdata/tiny")
	os.Remove(filepath.Join(noCfg, "config.json"))
	expect(noCfg, "no config.json")

	noWeights := copyDir(t, "testdata/tiny")
	os.Remove(filepath.Join(noWeights, WeightsFile))
	expect(noWeights, "missing "+WeightsFile)

	badJSON := copyDir(t, "testdata/tiny")
	os.WriteFile(filepath.Join(badJSON, "config.json"), []byte("{"), 0o644)
	expect(badJSON, "not a valid config.json")

	// A config whose widths do not match the weights: shape mismatch naming the tensor.
	wrong := copyDir(t, "testdata/tiny")
	os.WriteFile(filepath.Join(wrong, "config.json"), []byte(`{"block_out_channels": [8, 32], "layers_per_block": 2, "norm_num_groups": 4}`), 0o644)
	expect(wrong, `tensor "decoder.conv_in.weight" has shape [16 4 3 3], want [32 4 3 3]`)

	// More layers than the file holds: a missing tensor, named.
	deep := copyDir(t, "testdata/tiny")
	os.WriteFile(filepath.Join(deep, "config.json"), []byte(`{"block_out_channels": [8, 16], "layers_per_block": 3, "norm_num_groups": 4}`), 0o644)
	expect(deep, `missing tensor "decoder.up_blocks.0.resnets.3.norm1.weight"`)

	groups := copyDir(t, "testdata/tiny")
	os.WriteFile(filepath.Join(groups, "config.json"), []byte(`{"block_out_channels": [8, 16], "norm_num_groups": 3}`), 0o644)
	expect(groups, "multiple of norm_num_groups")

	tiny := copyDir(t, "testdata/tiny")
	os.WriteFile(filepath.Join(tiny, "config.json"), []byte(`{"_class_name": "AutoencoderTiny"}`), 0o644)
	expect(tiny, "not an AutoencoderKL")

	junk := copyDir(t, "testdata/tiny")
	os.WriteFile(filepath.Join(junk, WeightsFile), []byte("not a safetensors file"), 0o644)
	expect(junk, WeightsFile)
}

func TestDefaultConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{}`), "x")
	if err != nil {
		t.Fatal(err)
	}
	if c.Upscale() != 8 || c.NormNumGroups != 32 || c.ScalingFactor != 0.18215 || c.LayersPerBlock != 2 || len(c.BlockOutChannels) != 4 {
		t.Errorf("defaults %+v", c)
	}
}

// TestDecoderParamCount: the SD decoder plus post_quant_conv has 49,490,199
// parameters (the Decoder module alone is the often quoted 49,490,179).
func TestDecoderParamCount(t *testing.T) {
	d, err := NewRandomDecoder(DefaultConfig(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if n := d.ParamCount(); n != 49490199 {
		t.Fatalf("ParamCount %d, want 49490199", n)
	}
}
