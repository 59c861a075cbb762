package data

import (
	"fmt"
	"image"
	"math/rand/v2"
)

// ImageEncoder is the VAE encoder EncodeFolder runs (vae.Encoder): images
// (b, InChannels, h, w) in [−1, 1] in, latents (b, LatentChannels, h/f, w/f)
// out, f = Downscale, scaled as the sampler uses them.
type ImageEncoder interface {
	InChannels() int
	LatentChannels() int
	Downscale() int
	Encode(img []float32, b, h, w int) ([]float32, error)
	EncodeSample(img []float32, b, h, w int, noise []float32) ([]float32, error)
}

// EncodeOptions controls EncodeFolder.
type EncodeOptions struct {
	// Batch is the number of images read and encoded together (default 8);
	// it only sets how often Progress is called, not the result.
	Batch int
	// Sample takes a sample of the VAE posterior (mean + std·noise), as the
	// official extract_features.py does; otherwise the mean, which is
	// deterministic.
	Sample bool
	// Seed seeds the posterior noise when Sample is set. Image i's noise
	// depends only on (Seed, i), so the result does not depend on Batch.
	Seed uint64
	// Progress, when set, is called once the images are listed (done 0) and
	// after each batch, with the number of images encoded so far and the total.
	Progress func(done, total int)
}

// EncodeFolder reads a folder of images as LoadFolder does (one subfolder per
// class; centre-cropped, resized to size×size) and encodes them with enc into
// a latent Dataset: H = W = size/f, C = latent channels, cell-major like
// LoadLatents returns. Images are read a batch at a time, so memory holds
// only the latents and one batch of images. size must be a multiple of the
// encoder's downscale factor f (8 for SD).
func EncodeFolder(dir string, size int, enc ImageEncoder, opt EncodeOptions) (*Dataset, error) {
	ch := enc.InChannels()
	if err := checkFolderArgs(size, ch); err != nil {
		return nil, fmt.Errorf("encode %s: %w", dir, err)
	}
	f := enc.Downscale()
	if f < 1 || size%f != 0 {
		return nil, fmt.Errorf("encode %s: image size %d must be a multiple of %d (the VAE's downscale factor)", dir, size, f)
	}
	classes, files, err := listFolder(dir)
	if err != nil {
		return nil, err
	}
	batch := opt.Batch
	if batch <= 0 {
		batch = 8
	}
	lh, lw, lc := size/f, size/f, enc.LatentChannels()
	per := lc * lh * lw
	total := len(files)
	d := &Dataset{N: total, H: lh, W: lw, C: lc, Classes: classes,
		Pixels: make([]float32, total*per), Labels: make([]int, total)}
	dst := image.NewRGBA(image.Rect(0, 0, size, size))
	imgLen := ch * size * size
	imgs := make([]float32, batch*imgLen)
	var noise []float32
	if opt.Sample {
		noise = make([]float32, batch*per)
	}
	if opt.Progress != nil {
		opt.Progress(0, total)
	}
	for i0 := 0; i0 < total; i0 += batch {
		b := min(batch, total-i0)
		for k := 0; k < b; k++ {
			fl := files[i0+k]
			if err := readScaled(fl.path, dst, imgs[k*imgLen:(k+1)*imgLen], ch, true); err != nil {
				return nil, err
			}
			d.Labels[i0+k] = fl.label
			if opt.Sample {
				r := rand.New(rand.NewPCG(opt.Seed, 0x656e636f6465^uint64(i0+k)))
				for j := range noise[k*per : (k+1)*per] {
					noise[k*per+j] = float32(r.NormFloat64())
				}
			}
		}
		var z []float32
		if opt.Sample {
			z, err = enc.EncodeSample(imgs[:b*imgLen], b, size, size, noise[:b*per])
		} else {
			z, err = enc.Encode(imgs[:b*imgLen], b, size, size)
		}
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", files[i0].path, err)
		}
		// Channel-first latents to the cell-major layout of Dataset.
		for k := 0; k < b; k++ {
			src, out := z[k*per:(k+1)*per], d.Pixels[(i0+k)*per:(i0+k+1)*per]
			for p := 0; p < lh*lw; p++ {
				for c := 0; c < lc; c++ {
					out[p*lc+c] = src[c*lh*lw+p]
				}
			}
		}
		if opt.Progress != nil {
			opt.Progress(i0+b, total)
		}
	}
	return d, d.Validate()
}
