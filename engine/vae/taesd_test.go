package vae

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"geca/internal/npy"
)

func checkTinyGolden(t *testing.T, d LatentDecoder) {
	t.Helper()
	g, err := npy.ReadNPZ("testdata/taesd/golden.npz")
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
	if oh, ow := d.OutputSize(h, w); oh != img.Shape[2] || ow != img.Shape[3] || len(got) != len(img.Data) {
		t.Fatalf("output %dx%d (%d values), want shape %v", oh, ow, len(got), img.Shape)
	}
	maxDiff := 0.0
	for i, v := range img.Data {
		maxDiff = math.Max(maxDiff, math.Abs(float64(got[i])-float64(v)))
	}
	t.Logf("max |diff| %.3g", maxDiff)
	if maxDiff > 1e-4 {
		t.Errorf("max |diff| %.3g > 1e-4", maxDiff)
	}
	for i := range orig {
		if lat.Data[i] != orig[i] {
			t.Fatal("Decode modified the latent")
		}
	}
}

func TestTinyDecoderGolden(t *testing.T) {
	// diffusers AutoencoderTiny folder, through Load's dispatch on _class_name.
	d, err := Load("testdata/taesd")
	if err != nil {
		t.Fatal(err)
	}
	td, ok := d.(*TinyDecoder)
	if !ok {
		t.Fatalf("Load gave %T, want *TinyDecoder", d)
	}
	if len(td.Levels) != 4 || len(td.Levels[0].Blocks) != 3 || len(td.Levels[3].Blocks) != 1 || td.ConvIn.COut != 8 {
		t.Fatalf("structure: %d levels", len(td.Levels))
	}
	checkTinyGolden(t, d)
	checkTinyGolden(t, d)
}

func TestTinyDecoderPth(t *testing.T) {
	// madebyollin's taesd_decoder.pth layout (a bare state_dict, indices
	// shifted by the clamp), shape inferred.
	d, err := Load("testdata/taesd_decoder.pth")
	if err != nil {
		t.Fatal(err)
	}
	td := d.(*TinyDecoder)
	c := td.Cfg
	if c.LatentChannels != 4 || c.OutChannels != 3 || len(c.NumDecoderBlocks) != 4 || c.NumDecoderBlocks[0] != 3 || c.NumDecoderBlocks[3] != 1 || c.DecoderBlockOutChannels[0] != 8 {
		t.Fatalf("inferred %+v", c)
	}
	checkTinyGolden(t, d)
	// The weights file of the folder, loaded on its own (no config): inferred too.
	d2, err := LoadTinyDecoder("testdata/taesd/" + WeightsFile)
	if err != nil {
		t.Fatal(err)
	}
	checkTinyGolden(t, d2)
}

func TestTinyDecoderErrors(t *testing.T) {
	expect := func(path, want string) {
		t.Helper()
		_, err := LoadTinyDecoder(path)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadTinyDecoder(%s): got %v, want an error containing %q", path, err, want)
		}
	}
	noCfg := copyDir(t, "testdata/taesd")
	os.Remove(filepath.Join(noCfg, "config.json"))
	expect(noCfg, "no config.json")

	wide := copyDir(t, "testdata/taesd")
	os.WriteFile(filepath.Join(wide, "config.json"), []byte(`{"_class_name": "AutoencoderTiny", "decoder_block_out_channels": [16, 16, 16, 16]}`), 0o644)
	expect(wide, `tensor "decoder.layers.0.weight" has shape [8 4 3 3], want [16 4 3 3]`)

	deep := copyDir(t, "testdata/taesd")
	os.WriteFile(filepath.Join(deep, "config.json"), []byte(`{"_class_name": "AutoencoderTiny", "decoder_block_out_channels": [8, 8, 8, 8], "num_decoder_blocks": [3, 3, 3, 2]}`), 0o644)
	expect(deep, `missing tensor "decoder.layers.18.conv.0.weight"`)

	kl := copyDir(t, "testdata/taesd")
	os.WriteFile(filepath.Join(kl, "config.json"), []byte(`{"_class_name": "AutoencoderKL"}`), 0o644)
	expect(kl, "not an AutoencoderTiny")

	// The KL decoder's weights are not TAESD.
	expect("testdata/tiny/"+WeightsFile, "no TAESD decoder tensors")
}

func TestLoadDispatch(t *testing.T) {
	d, err := Load("testdata/tiny")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.(*Decoder); !ok {
		t.Fatalf("Load(tiny) gave %T, want *Decoder", d)
	}
	d, err = Load("testdata/tiny_ldm/model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.(*Decoder); !ok {
		t.Fatalf("Load(tiny_ldm) gave %T, want *Decoder", d)
	}
	if d.LatentChannels() != 4 {
		t.Errorf("LatentChannels %d", d.LatentChannels())
	}
}

// BenchmarkTinyDecodeSD decodes one 32x32x4 latent with TAESD at its real
// width (64), random weights.
func BenchmarkTinyDecodeSD(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 3))
	tensors := map[string]*tensor.Dense{}
	add := func(name string, shape ...int) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		data := make([]float32, n)
		std := 0.1
		if len(shape) == 4 {
			std = 0.7 / math.Sqrt(float64(n/shape[0]))
		}
		for i := range data {
			data[i] = float32(std * r.NormFloat64())
		}
		tensors[name] = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
	}
	c := DefaultTinyConfig()
	add("decoder.layers.0.weight", 64, 4, 3, 3)
	add("decoder.layers.0.bias", 64)
	j := 2
	for li, nb := range c.NumDecoderBlocks {
		for range nb {
			for k := 0; k < 3; k++ {
				add(fmt.Sprintf("decoder.layers.%d.conv.%d.weight", j, 2*k), 64, 64, 3, 3)
				add(fmt.Sprintf("decoder.layers.%d.conv.%d.bias", j, 2*k), 64)
			}
			j++
		}
		if li < 3 {
			j++
			add(fmt.Sprintf("decoder.layers.%d.weight", j), 64, 64, 3, 3)
		} else {
			add(fmt.Sprintf("decoder.layers.%d.weight", j), 3, 64, 3, 3)
			add(fmt.Sprintf("decoder.layers.%d.bias", j), 3)
		}
		j++
	}
	d, err := NewTinyDecoder(nil, tensors)
	if err != nil {
		b.Fatal(err)
	}
	lat := make([]float32, 4*32*32)
	for i := range lat {
		lat[i] = float32(r.NormFloat64() * LatentScale)
	}
	if _, err := d.Decode(lat, 1, 32, 32); err != nil {
		b.Fatal(err)
	}
	cpu0 := cpuSeconds()
	for b.Loop() {
		if _, err := d.Decode(lat, 1, 32, 32); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/image")
	b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/image")
}
