package main

import (
	"fmt"
	"os"
	"time"

	"geca/engine/data"
	"geca/engine/vae"
	"geca/internal/progress"
)

// encodeImages turns the image folder of geca train --images DIR --vae FILE
// into the latent dataset the model trains on: every image, resized to
// size×size RGB, through the VAE encoder (posterior mean, or a sample seeded
// by seed), with a progress bar on stderr.
func encodeImages(dir, vaePath string, size int, sample bool, seed uint64) (*data.Dataset, error) {
	enc, err := vae.LoadEncoder(vaePath)
	if err != nil {
		return nil, err
	}
	if f := enc.Downscale(); size%f != 0 {
		return nil, fmt.Errorf("--size %d must be a multiple of %d, the downscale factor of VAE %s", size, f, vaePath)
	}
	lh, lw := enc.LatentSize(size, size)
	what := "posterior mean"
	if sample {
		what = "posterior sample"
	}
	fmt.Fprintf(os.Stderr, "geca train: encoding %s with VAE %s (%d parameters): %dx%d images to %dx%dx%d latents (%s)\n",
		dir, vaePath, enc.ParamCount(), size, size, lh, lw, enc.LatentChannels(), what)
	var bar *progress.Bar
	start := time.Now()
	ds, err := data.EncodeFolder(dir, size, enc, data.EncodeOptions{
		Batch:  4,
		Sample: sample,
		Seed:   seed,
		Progress: func(done, total int) {
			if bar == nil {
				bar = progress.New(os.Stderr, total, "encode")
			}
			bar.Set(done, "")
		},
	})
	bar.Done()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "geca train: encoded %d images in %s\n", ds.N, time.Since(start).Round(time.Millisecond))
	return ds, nil
}
