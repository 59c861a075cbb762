package data

import (
	"context"
	"fmt"
	"image"
	"math/rand/v2"
	"slices"

	"geca/internal/membudget"
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

// EncodeOptions controls EncodeFolder and EncodeFolderTo.
type EncodeOptions struct {
	// Batch is the number of images read and encoded together (default 8);
	// it only sets how often Progress is called, not the result.
	Batch int
	// Sample takes a sample of the VAE posterior (mean + std·noise), as the
	// official extract_features.py does; otherwise the mean, which is
	// deterministic.
	Sample bool
	// Flip mirrors each image left to right with probability 1/2 before it
	// is encoded: extract_features.py's RandomHorizontalFlip, drawn once per
	// image, so the dataset holds one fixed orientation of each.
	Flip bool
	// Seed seeds the posterior noise and the flips. Image i's draws depend
	// only on (Seed, i), so the result does not depend on Batch, and an
	// interrupted EncodeFolderTo resumes with the same draws.
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
	job, err := newEncodeJob(dir, size, enc, opt)
	if err != nil {
		return nil, err
	}
	total := len(job.files)
	per := job.lc * job.lh * job.lw
	if err := membudget.Check(fmt.Sprintf("%s: the latents of %d images", dir, total), membudget.Bytes(total, per, 4)); err != nil {
		return nil, err
	}
	d := &Dataset{N: total, H: job.lh, W: job.lw, C: job.lc, Classes: job.classes,
		Pixels: make([]float32, total*per), Labels: make([]int, total)}
	err = job.run(context.Background(), nil, func(i int, z []float32) error {
		d.Labels[i] = job.files[i].label
		// Channel-first latents to the cell-major layout of Dataset.
		out := d.Pixels[i*per : (i+1)*per]
		for p := 0; p < job.lh*job.lw; p++ {
			for c := 0; c < job.lc; c++ {
				out[p*job.lc+c] = z[c*job.lh*job.lw+p]
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d, d.Validate()
}

// encodeJob is one folder's encoding: its listing, the latent size and the
// options.
type encodeJob struct {
	folder     string
	size       int
	enc        ImageEncoder
	opt        EncodeOptions
	classes    []string
	files      []folderFile
	lh, lw, lc int
}

func newEncodeJob(dir string, size int, enc ImageEncoder, opt EncodeOptions) (*encodeJob, error) {
	if err := checkFolderArgs(size, enc.InChannels()); err != nil {
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
	if opt.Batch <= 0 {
		opt.Batch = 8
	}
	// A batch of images, its posterior noise and its latents.
	lc, lh := enc.LatentChannels(), size/f
	if err := membudget.Check(fmt.Sprintf("encoding batches of %d images of %dx%d", opt.Batch, size, size),
		membudget.Sum(membudget.Bytes(opt.Batch, enc.InChannels(), size, size, 4), membudget.Bytes(opt.Batch, lc, lh, lh, 4, 2), membudget.Bytes(size, size, 4))); err != nil {
		return nil, err
	}
	return &encodeJob{folder: dir, size: size, enc: enc, opt: opt, classes: classes, files: files,
		lh: size / f, lw: size / f, lc: enc.LatentChannels()}, nil
}

// run encodes every image that done does not report as done already, a
// batch at a time, and hands each channel-first latent (a view, valid
// until emit returns) to emit with the image's index. It stops before the
// next batch once ctx is done, so that no encoded latent is thrown away.
func (j *encodeJob) run(ctx context.Context, done func(i int) bool, emit func(i int, z []float32) error) error {
	ch, size, batch := j.enc.InChannels(), j.size, j.opt.Batch
	per := j.lc * j.lh * j.lw
	total := len(j.files)
	var todo []int
	for i := range j.files {
		if done == nil || !done(i) {
			todo = append(todo, i)
		}
	}
	dst := image.NewRGBA(image.Rect(0, 0, size, size))
	imgLen := ch * size * size
	imgs := make([]float32, batch*imgLen)
	var noise []float32
	if j.opt.Sample {
		noise = make([]float32, batch*per)
	}
	finished := total - len(todo)
	if j.opt.Progress != nil {
		j.opt.Progress(finished, total)
	}
	for k0 := 0; k0 < len(todo); k0 += batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		ids := todo[k0:min(k0+batch, len(todo))]
		b := len(ids)
		for k, i := range ids {
			img := imgs[k*imgLen : (k+1)*imgLen]
			if err := readScaled(j.files[i].path, dst, img, ch, true); err != nil {
				return err
			}
			if j.opt.Flip && rand.New(rand.NewPCG(j.opt.Seed, 0x666c6970^uint64(i))).IntN(2) == 1 {
				for r := 0; r < ch*size; r++ {
					slices.Reverse(img[r*size : (r+1)*size])
				}
			}
			if j.opt.Sample {
				r := rand.New(rand.NewPCG(j.opt.Seed, 0x656e636f6465^uint64(i)))
				for q := range noise[k*per : (k+1)*per] {
					noise[k*per+q] = float32(r.NormFloat64())
				}
			}
		}
		var z []float32
		var err error
		if j.opt.Sample {
			z, err = j.enc.EncodeSample(imgs[:b*imgLen], b, size, size, noise[:b*per])
		} else {
			z, err = j.enc.Encode(imgs[:b*imgLen], b, size, size)
		}
		if err != nil {
			return fmt.Errorf("encode %s: %w", j.files[ids[0]].path, err)
		}
		for k, i := range ids {
			if err := emit(i, z[k*per:(k+1)*per:(k+1)*per]); err != nil {
				return err
			}
		}
		finished += b
		if j.opt.Progress != nil {
			j.opt.Progress(finished, total)
		}
	}
	return nil
}
