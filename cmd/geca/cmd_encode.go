package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"geca/engine/data"
	"geca/engine/vae"
	"geca/internal/progress"
)

func init() {
	register(&command{
		name:    "encode",
		summary: "encode a folder of images to VAE latents for training (extract_features.py's layout; resumable)",
		usage:   "--images DIR --vae FILE --out DIR [--size 256] [--sample] [--flip] [--seed 1] [--fold train] [--max-memory SIZE]",
		run:     runEncode,
	})
}

func runEncode(args []string) error {
	c := commands["encode"]
	fs := newFlags(c)
	images := fs.String("images", "", "folder of images, one subfolder per class")
	vaePath := fs.String("vae", "", "AutoencoderKL weights: a diffusers folder or a .safetensors file (SD single files too)")
	out := fs.String("out", "", "folder for the latents: features_FOLD/{i}.npy, labels_FOLD/{i}.npy, classes.txt, encode.json; an unfinished one is resumed")
	size := fs.Int("size", 256, "image side the images are centre-cropped and resized to (a multiple of the VAE's downscale factor, 8 for SD)")
	sample := fs.Bool("sample", false, "a sample of the VAE posterior, as extract_features.py takes, instead of its mean")
	flip := fs.Bool("flip", false, "mirror each image left to right with probability 1/2, drawn once per image, as extract_features.py's RandomHorizontalFlip")
	seed := fs.Uint64("seed", 1, "seed of the posterior samples and the flips (image i's draws depend only on the seed and i)")
	fold := fs.String("fold", "train", "the FOLD of the subfolder names")
	batch := fs.Int("batch", 4, "images encoded together")
	device := addCPUDeviceFlag(fs)
	maxMem := addMemoryFlag(fs)
	if err := parseFlags(fs, c, args); err != nil {
		return err
	}
	if err := applyMemoryFlag(maxMem); err != nil {
		return err
	}
	if err := checkCPUDevice(*device, "encode"); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usagef("unexpected argument %q", fs.Arg(0))
	case *images == "" || *vaePath == "" || *out == "":
		return usagef("--images DIR, --vae FILE and --out DIR are required\nusage: geca encode %s", c.usage)
	case *size < 8 || *size > 4096:
		return usagef("--size %d: want 8 to 4096", *size)
	case *batch < 1 || *batch > 256:
		return usagef("--batch %d: want 1 to 256", *batch)
	}
	for _, in := range vaeFiles(*vaePath) {
		if filepath.Clean(in) == filepath.Clean(*out) || sameFile(in, *out) {
			return usagef("--out %s is the VAE %s", *out, in)
		}
	}
	enc, err := loadEncoder(*vaePath, *size)
	if err != nil {
		return err
	}
	vaeID := *vaePath
	if abs, err := filepath.Abs(*vaePath); err == nil {
		vaeID = abs
	}
	fmt.Fprintf(os.Stderr, "geca encode: %s to %s (%s)\n", *images, *out, encodeWhat(data.EncodeOptions{Sample: *sample, Flip: *flip}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var bar *progress.Bar
	start := time.Now()
	rep, err := data.EncodeFolderTo(ctx, *images, *size, enc, data.EncodeOptions{
		Batch: *batch, Sample: *sample, Flip: *flip, Seed: *seed,
		Progress: encodeProgress(&bar),
	}, data.LatentFolder{Dir: *out, Fold: *fold, VAE: vaeID})
	bar.Done()
	if rep.Kept > 0 {
		fmt.Fprintf(os.Stderr, "geca encode: %d of %d latents were already in %s\n", rep.Kept, rep.Total, *out)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("interrupted: %d latents written to %s, %d to go; run the same command again to finish", rep.Kept+rep.Encoded, *out, rep.Total-rep.Kept-rep.Encoded)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "geca encode: encoded %d images in %s; train with: geca train --latents %s --out MODEL.safetensors\n",
		rep.Encoded, time.Since(start).Round(time.Millisecond), *out)
	return nil
}

// loadEncoder loads the VAE encoder at path and checks that it takes
// size×size images, saying what it does.
func loadEncoder(path string, size int) (*vae.Encoder, error) {
	stop := progress.Busy(os.Stderr, "loading the VAE encoder "+path)
	enc, err := vae.LoadEncoder(path)
	stop()
	if err != nil {
		return nil, err
	}
	if f := enc.Downscale(); size%f != 0 {
		return nil, fmt.Errorf("--size %d must be a multiple of %d, the downscale factor of VAE %s", size, f, path)
	}
	lh, lw := enc.LatentSize(size, size)
	fmt.Fprintf(os.Stderr, "VAE %s (%d parameters): %dx%d images to %dx%dx%d latents\n",
		path, enc.ParamCount(), size, size, lh, lw, enc.LatentChannels())
	return enc, nil
}

// encodeProgress makes an EncodeOptions.Progress that draws a bar on stderr,
// created at the first call, once the total is known.
func encodeProgress(bar **progress.Bar) func(done, total int) {
	return func(done, total int) {
		if *bar == nil {
			*bar = progress.New(os.Stderr, total, "encode")
		}
		(*bar).Set(done, "")
	}
}

// encodeImages turns the image folder of geca train --images DIR --vae FILE
// into the latent dataset the model trains on, in memory: every image,
// resized to size×size RGB, through the VAE encoder (posterior mean, or a
// sample), optionally mirrored, with a progress bar on stderr. geca encode
// writes the same latents to disk instead, to train on many times.
func encodeImages(dir, vaePath string, size int, opt data.EncodeOptions) (*data.Dataset, error) {
	fmt.Fprintf(os.Stderr, "geca train: encoding %s (%s)\n", dir, encodeWhat(opt))
	enc, err := loadEncoder(vaePath, size)
	if err != nil {
		return nil, err
	}
	var bar *progress.Bar
	start := time.Now()
	opt.Batch = 4
	opt.Progress = encodeProgress(&bar)
	ds, err := data.EncodeFolder(dir, size, enc, opt)
	bar.Done()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "geca train: encoded %d images in %s\n", ds.N, time.Since(start).Round(time.Millisecond))
	return ds, nil
}

// encodeWhat says in words what the encoder keeps of each image.
func encodeWhat(opt data.EncodeOptions) string {
	what := "posterior mean"
	if opt.Sample {
		what = "posterior sample"
	}
	if opt.Flip {
		what += ", random horizontal flips"
	}
	return what
}
