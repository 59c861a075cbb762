package vae

import (
	"encoding/json"
	"errors"
	"fmt"
	"geca/internal/safefile"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"gorgonia.org/tensor"
)

// LatentDecoder is anything that turns sampler latents into images in
// [-1, 1]: the full AutoencoderKL Decoder or the TAESD TinyDecoder.
type LatentDecoder interface {
	// Decode maps (b, LatentChannels, h, w) latents, scaled as the sampler
	// produces them, to (b, 3, OutputSize(h, w)) images in about [-1, 1].
	// The latent is only read.
	Decode(latent []float32, b, h, w int) ([]float32, error)
	OutputSize(h, w int) (int, int)
	LatentChannels() int
}

// LatentChannels is the number of latent channels the decoder takes.
func (d *Decoder) LatentChannels() int { return d.Cfg.LatentChannels }

// Load opens a VAE folder or file and picks the decoder: for a folder, from
// config.json's _class_name (AutoencoderTiny: TAESD, else AutoencoderKL);
// for a file, from its tensor names (TAESD's decoder.layers.N / N.conv.M, else
// the AutoencoderKL layouts LoadDecoder accepts).
func Load(path string) (LatentDecoder, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("vae: %w", err)
	}
	if st.IsDir() {
		b, err := safefile.ReadFile(filepath.Join(path, "config.json"), maxConfigFile)
		if err == nil {
			var head struct {
				ClassName string `json:"_class_name"`
			}
			if json.Unmarshal(b, &head) == nil && head.ClassName == "AutoencoderTiny" {
				return LoadTinyDecoder(path)
			}
		}
		return LoadDecoder(path)
	}
	tensors, err := loadTensors(path)
	if err != nil {
		return nil, err
	}
	if isTiny(tensors) {
		d, err := newTinyDecoder(nil, tensors, path)
		debug.FreeOSMemory()
		return d, err
	}
	var cfg *Config
	if strings.HasPrefix(filepath.Base(path), "diffusion_pytorch_model") {
		if c, err := ReadConfig(filepath.Join(filepath.Dir(path), "config.json")); err == nil {
			cfg = &c
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	d, err := newDecoder(cfg, tensors, path)
	debug.FreeOSMemory()
	return d, err
}

// isTiny tells TAESD weights by their names: no AutoencoderKL conv_in, and
// the first conv under TAESD's Sequential numbering.
func isTiny(tensors map[string]*tensor.Dense) bool {
	for _, k := range []string{"decoder.conv_in.weight", "first_stage_model.decoder.conv_in.weight", "vae.decoder.conv_in.weight"} {
		if _, ok := tensors[k]; ok {
			return false
		}
	}
	for _, k := range []string{"decoder.layers.0.weight", "1.weight", "decoder.1.weight"} {
		if _, ok := tensors[k]; ok {
			return true
		}
	}
	return false
}
