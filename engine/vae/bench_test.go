package vae

import (
	"math/rand/v2"
	"os"
	"testing"
)

// BenchmarkDecodeSD decodes one 32x32x4 latent (a 256x256 image) with the
// full sd-vae-ft-ema decoder: random weights, or the folder in $GECA_VAE_DIR
// (testdata/bench_full.py writes one and compares with PyTorch).
func BenchmarkDecodeSD(b *testing.B) {
	var d *Decoder
	var err error
	if dir := os.Getenv("GECA_VAE_DIR"); dir != "" {
		d, err = LoadDecoder(dir)
	} else {
		d, err = NewRandomDecoder(DefaultConfig(), 1)
	}
	if err != nil {
		b.Fatal(err)
	}
	if n := d.ParamCount(); n != 49490199 && os.Getenv("GECA_VAE_DIR") == "" {
		b.Fatalf("ParamCount %d, want 49490199 (the SD VAE decoder + post_quant_conv)", n)
	}
	r := rand.New(rand.NewPCG(1, 1))
	lat := make([]float32, 4*32*32)
	for i := range lat {
		lat[i] = float32(r.NormFloat64() * LatentScale)
	}
	if _, err := d.Decode(lat, 1, 32, 32); err != nil { // warm-up: buffers
		b.Fatal(err)
	}
	cpu0 := cpuSeconds()
	for b.Loop() {
		if _, err := d.Decode(lat, 1, 32, 32); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/image")
	// CPU time is steadier than wall time on a shared machine.
	b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/image")
}
