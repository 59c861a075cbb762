// Package vae turns GeCA's latents into pictures: the Stable Diffusion
// AutoencoderKL decoder (any diffusers config), the TAESD tiny decoder, and
// the free 4x3 latent-to-RGB approximation used for live views.
//
// Latents are channel-first (B, C, H, W) float32, scaled as the sampler
// produces them (by the VAE's scaling factor, 0.18215 for SD). Images are
// channel-first (B, 3, H', W') in [-1, 1], mapped to bytes by ToUint8.
package vae

import "fmt"

// LatentScale is the SD 1.x VAE scaling factor (docs/model.md §7): the sampler works on
// vae.encode(x)·0.18215, so decoding divides by it first.
const LatentScale = 0.18215

// previewFactors maps the four SD latent channels (rows) to R, G, B (columns).
// These are the commonly used SD 1.x latent-to-RGB factors (as shipped by the
// usual SD front ends for live previews); they are fitted on latents in the
// sampler's scale (already multiplied by 0.18215) and give roughly [-1, 1].
var previewFactors = [4][3]float32{
	{0.3512, 0.2297, 0.3227},
	{0.3250, 0.4974, 0.2350},
	{-0.2829, 0.1762, 0.2721},
	{-0.2120, -0.2616, -0.7177},
}

// PreviewChannels is the number of latent channels Preview expects.
const PreviewChannels = 4

// Preview is the cheap latent->RGB approximation for live views: a fixed 4x3
// linear map per latent pixel (12 multiply-adds), no upsampling. latent is
// (B, 4, H, W) as the sampler produces it (scaled by 0.18215); the result is a
// new (B, 3, H, W) slice clamped to [-1, 1]. The input is never modified. It
// returns nil when len(latent) != b·4·h·w or a size is negative; use
// PreviewInto to get the reason.
func Preview(latent []float32, b, h, w int) []float32 {
	if b < 0 || h < 0 || w < 0 {
		return nil
	}
	out := make([]float32, b*3*h*w)
	if err := PreviewInto(out, latent, b, h, w); err != nil {
		return nil
	}
	return out
}

// PreviewInto is Preview writing into dst (len b·3·h·w), for callers that
// reuse buffers every frame.
func PreviewInto(dst, latent []float32, b, h, w int) error {
	if b < 0 || h < 0 || w < 0 {
		return fmt.Errorf("vae: preview: negative size (b=%d, h=%d, w=%d)", b, h, w)
	}
	hw := h * w
	if len(latent) != b*PreviewChannels*hw {
		return fmt.Errorf("vae: preview: latent has %d values, want b·4·h·w = %d", len(latent), b*PreviewChannels*hw)
	}
	if len(dst) != b*3*hw {
		return fmt.Errorf("vae: preview: output has %d values, want b·3·h·w = %d", len(dst), b*3*hw)
	}
	for n := 0; n < b; n++ {
		in := latent[n*PreviewChannels*hw : (n+1)*PreviewChannels*hw]
		out := dst[n*3*hw : (n+1)*3*hw]
		for c := 0; c < 3; c++ {
			o := out[c*hw : (c+1)*hw]
			f0, f1, f2, f3 := previewFactors[0][c], previewFactors[1][c], previewFactors[2][c], previewFactors[3][c]
			l0, l1, l2, l3 := in[0:hw], in[hw:2*hw], in[2*hw:3*hw], in[3*hw:4*hw]
			for i := range o {
				v := float32(l0[i]*f0) + float32(l1[i]*f1) + float32(l2[i]*f2) + float32(l3[i]*f3)
				o[i] = clamp1(v)
			}
		}
	}
	return nil
}

// clamp1 clamps to [-1, 1]; NaN becomes 0 so a diverged sample still draws.
func clamp1(v float32) float32 {
	switch {
	case v > 1:
		return 1
	case v < -1:
		return -1
	case v != v:
		return 0
	}
	return v
}

// ToUint8 maps decoder output in [-1, 1] to bytes exactly as the official
// sampler does (docs/model.md §7): clamp(127.5·x + 128, 0, 255), truncated. That equals
// round-half-up of 127.5·(x+1). NaN maps to 0. The layout is unchanged.
func ToUint8(img []float32) []uint8 {
	out := make([]uint8, len(img))
	for i, x := range img {
		// The explicit float32() keeps the product rounded on its own, as in
		// PyTorch's float32 mul then add, rather than fused into one FMA.
		v := float32(127.5*x) + 128
		switch {
		case v >= 255:
			out[i] = 255
		case v > 0:
			out[i] = uint8(v)
		default: // v <= 0 or NaN
			out[i] = 0
		}
	}
	return out
}
