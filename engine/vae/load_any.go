package vae

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

// Load opens a VAE folder or file, picking the decoder from config.json's
// _class_name (AutoencoderKL by default).
func Load(path string) (LatentDecoder, error) {
	return LoadDecoder(path)
}
