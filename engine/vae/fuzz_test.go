package vae

import (
	"os"
	"path/filepath"
	"testing"
)

// A config.json never makes the parser panic, and what it accepts passes the
// checks the loader relies on.
//
//	go test ./engine/vae -run '^$' -fuzz FuzzParseConfig -fuzztime 30s
func FuzzParseConfig(f *testing.F) {
	for _, d := range []string{"mid", "tiny"} {
		if b, err := os.ReadFile(filepath.Join("testdata", d, "config.json")); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"block_out_channels": [], "scaling_factor": 1e-300}`))
	f.Add([]byte(`{"sample_size": [1e308, -1], "layers_per_block": 99}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b, "config.json")
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted a config Validate refuses: %v", err)
		}
		_ = checkScaling(c)
		h, w := c.latentSize()
		if h < 1 || w < 1 || c.Upscale() < 1 {
			t.Fatalf("latent size %dx%d, upscale %d", h, w, c.Upscale())
		}
	})
}
