package vae

import (
	"fmt"
	"math"
	"sync"

	"geca/engine/compute"
)

// Decoder is the AutoencoderKL decoder: post_quant_conv, then the diffusers
// Decoder module (conv_in, mid block, up blocks, conv_norm_out + SiLU,
// conv_out). Field comments give the state-dict names. A Decoder may be used
// from several goroutines; decodes run one at a time.
type Decoder struct {
	Cfg           Config
	PostQuantConv *compute.Conv       // post_quant_conv (1x1), nil when use_post_quant_conv is false
	ConvIn        *compute.Conv       // decoder.conv_in (3x3, latent -> deepest width)
	MidBlock      *UNetMidBlock2D     // decoder.mid_block
	UpBlocks      []*UpDecoderBlock2D // decoder.up_blocks.N, deepest first
	ConvNormOut   *GroupNorm          // decoder.conv_norm_out, followed by SiLU
	ConvOut       *compute.Conv       // decoder.conv_out (3x3, -> RGB)

	mu sync.Mutex
	scratch
	ws compute.ConvWorkspace
}

// maxBuffer bounds one activation buffer (float32 values, 4 GiB), so an
// absurd latent size is an error rather than an out-of-memory crash.
const maxBuffer = 1 << 30

// OutputSize returns the image size for an h×w latent.
func (d *Decoder) OutputSize(h, w int) (int, int) { return h * d.Cfg.Upscale(), w * d.Cfg.Upscale() }

// Decode turns latents (b, latent_channels, h, w), as the sampler produces
// them (scaled by scaling_factor), into images (b, out_channels, 8h, 8w) for
// SD, roughly in [-1, 1] (map with ToUint8). The latent is only read. Images
// are decoded one at a time, so memory does not grow with b.
func (d *Decoder) Decode(latent []float32, b, h, w int) ([]float32, error) {
	cfg := d.Cfg
	if b <= 0 || h <= 0 || w <= 0 {
		return nil, fmt.Errorf("vae: decode: bad latent size b=%d h=%d w=%d", b, h, w)
	}
	if h > 1<<12 || w > 1<<12 || b > 1<<16 {
		return nil, fmt.Errorf("vae: decode: latent %dx%d (batch %d) is too large", h, w, b)
	}
	if need := d.maxActivation(h, w); need > maxBuffer {
		return nil, fmt.Errorf("vae: decode: a %dx%d latent needs %d MiB per activation buffer (limit %d MiB); decode smaller latents", h, w, need>>18, maxBuffer>>18)
	}
	lc := cfg.LatentChannels
	if len(latent) != b*lc*h*w {
		return nil, fmt.Errorf("vae: decode: latent has %d values, want b·%d·h·w = %d", len(latent), lc, b*lc*h*w)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.alloc(h, w)
	oh, ow := d.OutputSize(h, w)
	per := cfg.OutChannels * oh * ow
	out := make([]float32, b*per)
	inv := float32(cfg.ScalingFactor)
	shift := float32(0)
	if cfg.ShiftFactor != nil {
		shift = float32(*cfg.ShiftFactor)
	}
	for n := 0; n < b; n++ {
		z := d.bufs[0][:lc*h*w]
		for i, v := range latent[n*lc*h*w : (n+1)*lc*h*w] {
			z[i] = v/inv + shift
		}
		d.forward(out[n*per:(n+1)*per], h, w)
	}
	return out, nil
}

// forward decodes the scaled-back latent in bufs[0] into img.
func (d *Decoder) forward(img []float32, h, w int) {
	cfg := d.Cfg
	ws := &d.ws
	x, t1, t2 := d.bufs[0], d.bufs[1], d.bufs[2]
	lc := cfg.LatentChannels
	if d.PostQuantConv != nil {
		d.PostQuantConv.Forward(t1[:lc*h*w], x[:lc*h*w], 1, h, w, false, false, ws)
		x, t1 = t1, x
	}
	top := d.ConvIn.COut
	d.ConvIn.Forward(t1[:top*h*w], x[:lc*h*w], 1, h, w, false, false, ws)
	x, t1 = t1, x

	res := func(r *ResnetBlock2D) {
		out := r.forward(x, t1, t2, h, w, ws)
		if &out[0] != &x[0] {
			x, t1 = t1, x
		}
	}
	mid := d.MidBlock
	res(mid.Resnets[0])
	for _, a := range mid.Attentions {
		a.forward(x, d.attn, h*w, d.sc)
	}
	res(mid.Resnets[1])
	for _, up := range d.UpBlocks {
		for _, r := range up.Resnets {
			res(r)
		}
		for _, u := range up.Upsamplers {
			c := u.Conv.COut
			u.Conv.Forward(t1[:c*4*h*w], x[:u.Conv.CIn*h*w], 1, 2*h, 2*w, true, false, ws)
			x, t1 = t1, x
			h, w = 2*h, 2*w
		}
	}
	c := len(d.ConvNormOut.Weight)
	d.ConvNormOut.forward(t1[:c*h*w], x[:c*h*w], h*w, true)
	d.ConvOut.Forward(img, t1[:c*h*w], 1, h, w, false, false, ws)
}

// Prepare readies every convolution for an h×w latent (see compute.Conv:
// the Winograd form depends on the image size), so the first Decode is not
// slower than the others. Decodes of other sizes still work.
func (d *Decoder) Prepare(h, w int) {
	if d.PostQuantConv != nil {
		d.PostQuantConv.Prepare(h, w)
	}
	d.ConvIn.Prepare(h, w)
	res := func(r *ResnetBlock2D) {
		r.Conv1.Prepare(h, w)
		r.Conv2.Prepare(h, w)
	}
	for _, r := range d.MidBlock.Resnets {
		res(r)
	}
	for _, up := range d.UpBlocks {
		for _, r := range up.Resnets {
			res(r)
		}
		for _, u := range up.Upsamplers {
			h, w = 2*h, 2*w
			u.Conv.Prepare(h, w)
		}
	}
	d.ConvOut.Prepare(h, w)
}

// alloc sizes the scratch buffers for an h×w latent (kept between calls).
func (d *Decoder) alloc(h, w int) {
	d.grow(d.maxActivation(h, w), d.MidBlock.attnChannels(), h*w)
}

// maxActivation is the largest C·H·W any layer reads or writes.
func (d *Decoder) maxActivation(h, w int) int {
	m := max(d.Cfg.LatentChannels, d.ConvIn.COut) * h * w
	for _, up := range d.UpBlocks {
		for _, r := range up.Resnets {
			m = max(m, max(r.In, r.Out)*h*w)
		}
		if len(up.Upsamplers) > 0 {
			h, w = 2*h, 2*w
			m = max(m, up.Upsamplers[0].Conv.COut*h*w)
		}
	}
	return max(m, d.Cfg.OutChannels*h*w)
}

// ParamCount is the number of parameters, post_quant_conv included: 49,490,199
// for SD (the often quoted 49,490,179 is the Decoder module alone).
func (d *Decoder) ParamCount() int {
	n := convParams(d.PostQuantConv) + convParams(d.ConvIn) + d.MidBlock.params()
	for _, up := range d.UpBlocks {
		for _, r := range up.Resnets {
			n += r.params()
		}
		for _, u := range up.Upsamplers {
			n += convParams(u.Conv)
		}
	}
	return n + d.ConvNormOut.params() + convParams(d.ConvOut)
}

// finite reports whether every value is finite.
func finite(x []float32) bool {
	for _, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return false
		}
	}
	return true
}
