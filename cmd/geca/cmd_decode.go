package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"geca/engine/vae"
	"geca/internal/membudget"
	"geca/internal/npy"
	"geca/internal/progress"
	"geca/render"
)

func init() {
	register(&command{
		name:    "decode",
		summary: "decode latents to images with the Stable Diffusion VAE (or TAESD)",
		usage:   "(--vae DIR | --approx) --latent L.npy [--out IMG.png] [--npy OUT.npy] [--cols N] [--max-memory SIZE]",
		run:     runDecode,
	})
}

func runDecode(args []string) error {
	c := commands["decode"]
	fs := newFlags(c)
	vaePath := fs.String("vae", "", "VAE weights: a diffusers folder (config.json + diffusion_pytorch_model.safetensors; AutoencoderKL such as stabilityai/sd-vae-ft-ema, or AutoencoderTiny/TAESD), or a single .safetensors file")
	latPath := fs.String("latent", "", "latents as the sampler writes them (scaled by the VAE's scaling_factor), float32 (B, C, H, W) or (C, H, W)")
	outPath := fs.String("out", "", "PNG of the decoded batch, laid out as a grid")
	npyPath := fs.String("npy", "", "float32 decoder output (B, 3, H, W) before the uint8 mapping")
	approx := fs.Bool("approx", false, "no VAE: the fixed 4x3 latent-to-RGB approximation (SD latents), upscaled 8x by pixel repetition")
	cols := fs.Int("cols", 0, "grid columns (default: about the square root of the batch)")
	verbose := fs.Bool("v", false, "print the decode time")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	device := addCPUDeviceFlag(fs)
	maxMem := addMemoryFlag(fs)
	if err := parseFlags(fs, c, args); err != nil {
		return err
	}
	if err := applyMemoryFlag(maxMem); err != nil {
		return err
	}
	if err := checkCPUDevice(*device, "decode"); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case *vaePath == "" && !*approx:
		return usagef("--vae DIR (or --approx) is required\nusage: geca decode %s", c.usage)
	case *vaePath != "" && *approx:
		return usagef("give either --vae DIR or --approx, not both")
	case *latPath == "":
		return usagef("--latent L.npy is required")
	case *outPath == "" && *npyPath == "":
		return usagef("give --out IMG.png and/or --npy OUT.npy")
	case *cols < 0:
		return usagef("--cols %d is negative", *cols)
	}
	if err := checkOutputs([]output{{"--out", *outPath}, {"--npy", *npyPath}}, append(vaeFiles(*vaePath), *latPath)...); err != nil {
		return err
	}
	lat, err := npy.ReadFile(*latPath)
	if err != nil {
		return err
	}
	shape := lat.Shape
	if len(shape) == 3 {
		shape = append([]int{1}, shape...)
	}
	if len(shape) != 4 || shape[0] < 1 || shape[1] < 1 || shape[2] < 1 || shape[3] < 1 {
		return fmt.Errorf("%s: shape %v, want (B, C, H, W) or (C, H, W)", *latPath, lat.Shape)
	}
	b, ch, h, w := shape[0], shape[1], shape[2], shape[3]
	per := ch * h * w
	if i := firstNonFinite(lat.Data); i >= 0 {
		return fmt.Errorf("%s: latent %d, channel %d, row %d, column %d is %v: a latent must be finite (the run that made it went wrong)",
			*latPath, i/per, i%per/(h*w), i%(h*w)/w, i%w, lat.Data[i])
	}
	var dec vae.LatentDecoder = approxDecoder{}
	if !*approx {
		if err := checkVAEFolder(*vaePath); err != nil {
			return err
		}
		stop := busy(*quiet, "loading VAE "+*vaePath)
		dec, err = vae.Load(*vaePath)
		stop()
		if err != nil {
			return err
		}
	}
	if ch != dec.LatentChannels() {
		return fmt.Errorf("%s: %d latent channels, but the decoder (%s) takes %d", *latPath, ch, decoderName(*vaePath), dec.LatentChannels())
	}
	oh, ow := dec.OutputSize(h, w)
	// The images as float32, then as 8-bit RGBA for the grid.
	if err := membudget.Check(fmt.Sprintf("decoding %d latent(s) to %dx%d images", b, oh, ow),
		membudget.Sum(membudget.Bytes(b, 3, oh, ow, 4), membudget.Bytes(b, oh, ow, 4))); err != nil {
		return err
	}
	start := time.Now()
	img, err := decodeEach(dec, lat.Data, b, h, w, *quiet)
	if err != nil {
		return err
	}
	if *verbose {
		fmt.Fprintf(os.Stderr, "decoded %d latent(s) %dx%dx%d -> %dx%d in %.3f s\n", b, ch, h, w, oh, ow, time.Since(start).Seconds())
	}
	if i := firstNonFinite(img); i >= 0 {
		return fmt.Errorf("%s: the decoder made a non-finite value (%v) in image %d; the VAE %s is broken", *latPath, img[i], i/(3*oh*ow), decoderName(*vaePath))
	}
	if *npyPath != "" {
		if err := npy.WriteFile(*npyPath, []int{b, 3, oh, ow}, img); err != nil {
			return err
		}
	}
	if *outPath != "" {
		ims, err := vae.Images(img, b, oh, ow)
		if err != nil {
			return err
		}
		n := *cols
		if n == 0 {
			n = int(math.Ceil(math.Sqrt(float64(b))))
		}
		if err := render.WritePNG(*outPath, vae.Grid(ims, n, 2)); err != nil {
			return err
		}
	}
	return nil
}

// decodeEach decodes a batch one latent at a time, with a progress bar (a
// full-size VAE takes seconds per image on the CPU).
func decodeEach(dec vae.LatentDecoder, lat []float32, b, h, w int, quiet bool) ([]float32, error) {
	per := dec.LatentChannels() * h * w
	oh, ow := dec.OutputSize(h, w)
	out := make([]float32, 0, b*3*oh*ow)
	var bar *progress.Bar
	if !quiet && b > 1 {
		bar = progress.New(os.Stderr, b, "decoding")
	}
	defer bar.Done()
	for i := range b {
		img, err := dec.Decode(lat[i*per:(i+1)*per], 1, h, w)
		if err != nil {
			return nil, err
		}
		out = append(out, img...)
		bar.Set(i+1, "")
	}
	return out, nil
}

// busy shows a step of unknown length on stderr unless quiet.
func busy(quiet bool, label string) func() {
	if quiet {
		return func() {}
	}
	return progress.Busy(os.Stderr, label)
}

// vaeFiles are the files a --vae path stands for: the file, or a diffusers
// folder's config and weights (outputs must not be any of them).
func vaeFiles(path string) []string {
	if path == "" {
		return nil
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return []string{filepath.Join(path, "config.json"), filepath.Join(path, vae.WeightsFile),
			filepath.Join(path, "diffusion_pytorch_model.fp16.safetensors")}
	}
	return []string{path}
}

func decoderName(vaePath string) string {
	if vaePath == "" {
		return "--approx"
	}
	return vaePath
}

// approxDecoder is vae.Preview as a LatentDecoder, upscaled 8x so its
// pictures have the size of a real decode.
type approxDecoder struct{}

const approxScale = 8

func (approxDecoder) LatentChannels() int { return vae.PreviewChannels }

func (approxDecoder) OutputSize(h, w int) (int, int) { return approxScale * h, approxScale * w }

func (approxDecoder) Decode(latent []float32, b, h, w int) ([]float32, error) {
	small := make([]float32, b*3*h*w)
	if err := vae.PreviewInto(small, latent, b, h, w); err != nil {
		return nil, err
	}
	oh, ow := approxScale*h, approxScale*w
	out := make([]float32, b*3*oh*ow)
	for p := 0; p < b*3; p++ {
		in, o := small[p*h*w:(p+1)*h*w], out[p*oh*ow:(p+1)*oh*ow]
		for y := 0; y < oh; y++ {
			for x := 0; x < ow; x++ {
				o[y*ow+x] = in[(y/approxScale)*w+x/approxScale]
			}
		}
	}
	return out, nil
}
