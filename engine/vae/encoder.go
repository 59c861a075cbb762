package vae

import (
	"fmt"
	"math"
	"sync"

	"geca/engine/compute"
)

// Encoder is the AutoencoderKL encoder: the diffusers Encoder module
// (conv_in, down blocks, mid block, conv_norm_out + SiLU, conv_out to
// 2·latent_channels), then quant_conv, whose output holds the mean and the
// log-variance of the diagonal Gaussian posterior. Field comments give the
// state-dict names. An Encoder may be used from several goroutines; encodes
// run one at a time.
type Encoder struct {
	Cfg         Config
	ConvIn      *compute.Conv         // encoder.conv_in (3x3, image -> first width)
	DownBlocks  []*DownEncoderBlock2D // encoder.down_blocks.N, full resolution first
	MidBlock    *UNetMidBlock2D       // encoder.mid_block
	ConvNormOut *GroupNorm            // encoder.conv_norm_out, followed by SiLU
	ConvOut     *compute.Conv         // encoder.conv_out (3x3, -> 2·latent_channels)
	QuantConv   *compute.Conv         // quant_conv (1x1), nil when use_quant_conv is false

	mu sync.Mutex
	scratch
	col []float32 // im2col band of the stride-2 convolutions
	ws  compute.ConvWorkspace
}

// Downsample2D is diffusers' Downsample2D with use_conv and padding 0: a
// (0, 1, 0, 1) zero pad and a 3x3 convolution at stride 2.
type Downsample2D struct {
	Conv *compute.StridedConv // .conv
}

// DownEncoderBlock2D is layers_per_block resnets, then (except in the last
// block) a 2x downsample.
type DownEncoderBlock2D struct {
	Resnets      []*ResnetBlock2D // .resnets.N
	Downsamplers []*Downsample2D  // .downsamplers.0, absent in the last block
}

// LatentChannels is the number of latent channels the encoder produces.
func (e *Encoder) LatentChannels() int { return e.Cfg.LatentChannels }

// InChannels is the number of image channels the encoder takes (3: RGB).
func (e *Encoder) InChannels() int { return e.Cfg.inChannels() }

// Downscale is the ratio of image to latent size (8 for SD); image sides
// must be multiples of it.
func (e *Encoder) Downscale() int { return e.Cfg.Upscale() }

// LatentSize returns the latent size for an h×w image.
func (e *Encoder) LatentSize(h, w int) (int, int) { return h / e.Downscale(), w / e.Downscale() }

// Encode maps images (b, in_channels, h, w) in [-1, 1], h and w multiples of
// Downscale, to latents (b, latent_channels, h/8, w/8) for SD: the posterior
// mean, minus shift_factor when the config has one, times scaling_factor,
// i.e. the latents the sampler works in. The images are only read; they are
// encoded one at a time, so memory does not grow with b.
func (e *Encoder) Encode(img []float32, b, h, w int) ([]float32, error) {
	return e.encode(img, b, h, w, nil)
}

// EncodeSample is Encode with a sample of the posterior instead of its
// mean: mean + std·noise (std = exp(logvar/2), logvar clamped to [-30, 20]),
// then shifted and scaled, as extract_features.py's
// vae.encode(x).latent_dist.sample().mul_(0.18215). noise is standard normal,
// latent-shaped (b, latent_channels, h/8, w/8).
func (e *Encoder) EncodeSample(img []float32, b, h, w int, noise []float32) ([]float32, error) {
	if noise == nil {
		return nil, fmt.Errorf("vae: encode: no noise for the posterior sample")
	}
	return e.encode(img, b, h, w, noise)
}

func (e *Encoder) encode(img []float32, b, h, w int, noise []float32) ([]float32, error) {
	cfg := e.Cfg
	f := e.Downscale()
	if b <= 0 || h <= 0 || w <= 0 {
		return nil, fmt.Errorf("vae: encode: bad image size b=%d h=%d w=%d", b, h, w)
	}
	if h%f != 0 || w%f != 0 {
		return nil, fmt.Errorf("vae: encode: image size %dx%d must be a multiple of %d (the VAE's downscale factor)", h, w, f)
	}
	if h > 1<<15 || w > 1<<15 || b > 1<<16 {
		return nil, fmt.Errorf("vae: encode: image %dx%d (batch %d) is too large", h, w, b)
	}
	if need := e.maxActivation(h, w); need > maxBuffer {
		return nil, fmt.Errorf("vae: encode: a %dx%d image needs %d MiB per activation buffer (limit %d MiB); encode smaller images", h, w, need>>18, maxBuffer>>18)
	}
	ic, lc := cfg.inChannels(), cfg.LatentChannels
	if len(img) != b*ic*h*w {
		return nil, fmt.Errorf("vae: encode: image has %d values, want b·%d·h·w = %d", len(img), ic, b*ic*h*w)
	}
	lh, lw := e.LatentSize(h, w)
	per := lc * lh * lw
	if noise != nil && len(noise) != b*per {
		return nil, fmt.Errorf("vae: encode: noise has %d values, want b·%d·%d·%d = %d", len(noise), lc, lh, lw, b*per)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.alloc(h, w)
	scale := float32(cfg.ScalingFactor)
	shift := float32(0)
	if cfg.ShiftFactor != nil {
		shift = float32(*cfg.ShiftFactor)
	}
	out := make([]float32, b*per)
	for n := 0; n < b; n++ {
		copy(e.bufs[0], img[n*ic*h*w:(n+1)*ic*h*w])
		moments := e.forward(h, w)
		mean, logvar := moments[:per], moments[per:2*per]
		z := out[n*per : (n+1)*per]
		for i, m := range mean {
			if noise != nil {
				lv := min(max(float64(logvar[i]), -30), 20)
				m = float32(float64(m) + math.Exp(0.5*lv)*float64(noise[n*per+i]))
			}
			z[i] = (m - shift) * scale
		}
	}
	return out, nil
}

// forward encodes the image in bufs[0] (in_channels, h, w) and returns the
// moments (mean, then log-variance: 2·latent_channels × h/8 × w/8), a view of
// one of the buffers.
func (e *Encoder) forward(h, w int) []float32 {
	ws := &e.ws
	x, t1, t2 := e.bufs[0], e.bufs[1], e.bufs[2]
	ic := e.Cfg.inChannels()
	c0 := e.ConvIn.COut
	e.ConvIn.Forward(t1[:c0*h*w], x[:ic*h*w], 1, h, w, false, false, ws)
	x, t1 = t1, x

	res := func(r *ResnetBlock2D) {
		out := r.forward(x, t1, t2, h, w, ws)
		if &out[0] != &x[0] {
			x, t1 = t1, x
		}
	}
	for _, down := range e.DownBlocks {
		for _, r := range down.Resnets {
			res(r)
		}
		for _, d := range down.Downsamplers {
			oh, ow := d.Conv.OutputSize(h, w)
			d.Conv.Forward(t1[:d.Conv.COut*oh*ow], x[:d.Conv.CIn*h*w], h, w, &e.col)
			x, t1 = t1, x
			h, w = oh, ow
		}
	}
	mid := e.MidBlock
	res(mid.Resnets[0])
	for _, a := range mid.Attentions {
		a.forward(x, e.attn, h*w, e.sc)
	}
	res(mid.Resnets[1])
	c := len(e.ConvNormOut.Weight)
	e.ConvNormOut.forward(t1[:c*h*w], x[:c*h*w], h*w, true)
	m := e.ConvOut.COut
	e.ConvOut.Forward(x[:m*h*w], t1[:c*h*w], 1, h, w, false, false, ws)
	if e.QuantConv == nil {
		return x[:m*h*w]
	}
	e.QuantConv.Forward(t1[:m*h*w], x[:m*h*w], 1, h, w, false, false, ws)
	return t1[:m*h*w]
}

// Prepare readies every 3x3 convolution for h×w images (see compute.Conv:
// the Winograd form depends on the size), so the first Encode is not slower
// than the others. Encodes of other sizes still work.
func (e *Encoder) Prepare(h, w int) {
	e.ConvIn.Prepare(h, w)
	res := func(r *ResnetBlock2D) {
		r.Conv1.Prepare(h, w)
		r.Conv2.Prepare(h, w)
	}
	for _, down := range e.DownBlocks {
		for _, r := range down.Resnets {
			res(r)
		}
		if len(down.Downsamplers) > 0 {
			h, w = h/2, w/2
		}
	}
	for _, r := range e.MidBlock.Resnets {
		res(r)
	}
	e.ConvOut.Prepare(h, w)
}

// alloc sizes the scratch buffers for h×w images (kept between calls).
func (e *Encoder) alloc(h, w int) {
	lh, lw := e.LatentSize(h, w)
	e.grow(e.maxActivation(h, w), e.MidBlock.attnChannels(), lh*lw)
}

// maxActivation is the largest C·H·W any layer reads or writes; bufs[0]
// must also hold the input image (copied in whole).
func (e *Encoder) maxActivation(h, w int) int {
	m := max(e.Cfg.inChannels(), e.ConvIn.COut) * h * w
	for _, down := range e.DownBlocks {
		for _, r := range down.Resnets {
			m = max(m, max(r.In, r.Out)*h*w)
		}
		if len(down.Downsamplers) > 0 {
			h, w = h/2, w/2
		}
	}
	return max(m, e.ConvOut.COut*h*w)
}

// ParamCount is the number of parameters, quant_conv included: 34,163,664
// for SD.
func (e *Encoder) ParamCount() int {
	n := convParams(e.ConvIn)
	for _, down := range e.DownBlocks {
		for _, r := range down.Resnets {
			n += r.params()
		}
		for _, d := range down.Downsamplers {
			n += len(d.Conv.Weight) + len(d.Conv.Bias)
		}
	}
	return n + e.MidBlock.params() + e.ConvNormOut.params() + convParams(e.ConvOut) + convParams(e.QuantConv)
}
