package vae

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Config is the part of a diffusers AutoencoderKL config.json the decoder
// and encoder need. Keys absent from the file take the values of
// stabilityai/sd-vae-ft-ema (docs/model.md §7), the VAE GeCA is trained with.
type Config struct {
	ClassName        string   `json:"_class_name"`
	BlockOutChannels []int    `json:"block_out_channels"` // encoder order: the decoder runs them reversed
	LayersPerBlock   int      `json:"layers_per_block"`   // decoder up blocks hold LayersPerBlock+1 resnets
	LatentChannels   int      `json:"latent_channels"`
	InChannels       int      `json:"in_channels"` // image channels the encoder takes
	OutChannels      int      `json:"out_channels"`
	NormNumGroups    int      `json:"norm_num_groups"`
	ScalingFactor    float64  `json:"scaling_factor"`
	ShiftFactor      *float64 `json:"shift_factor"` // SD3/Flux VAEs; null (none) for SD 1.x
	ActFn            string   `json:"act_fn"`
	UpBlockTypes     []string `json:"up_block_types"`
	DownBlockTypes   []string `json:"down_block_types"`
	MidBlockAttn     *bool    `json:"mid_block_add_attention"`
	UsePostQuantConv *bool    `json:"use_post_quant_conv"`
	UseQuantConv     *bool    `json:"use_quant_conv"`
	SampleSize       any      `json:"sample_size"` // image size the VAE was trained at: 256 (sd-vae-ft-ema), 512, or [h, w]
}

// latentSize is the latent size matching sample_size (32x32 when absent).
func (c Config) latentSize() (int, int) {
	s := c.Upscale()
	switch v := c.SampleSize.(type) {
	case float64:
		if v >= float64(s) && v <= 1<<15 {
			return int(v) / s, int(v) / s
		}
	case []any:
		if len(v) == 2 {
			h, hok := v[0].(float64)
			w, wok := v[1].(float64)
			if hok && wok && h >= float64(s) && w >= float64(s) && h <= 1<<15 && w <= 1<<15 {
				return int(h) / s, int(w) / s
			}
		}
	}
	return 32, 32
}

// DefaultConfig is the sd-vae-ft-ema decoder: block_out_channels
// [128, 256, 512, 512], 2 layers per block, 4 latent channels, 32 groups,
// scaling factor 0.18215.
func DefaultConfig() Config {
	return Config{
		ClassName:        "AutoencoderKL",
		BlockOutChannels: []int{128, 256, 512, 512},
		LayersPerBlock:   2,
		LatentChannels:   4,
		InChannels:       3,
		OutChannels:      3,
		NormNumGroups:    32,
		ScalingFactor:    LatentScale,
		ActFn:            "silu",
	}
}

// ReadConfig reads a diffusers config.json (a regular file within a size
// limit: docs/safety.md).
func ReadConfig(path string) (Config, error) { return readConfigFile(path) }

// ParseConfig parses config.json bytes; name is used in errors.
func ParseConfig(b []byte, name string) (Config, error) {
	c := DefaultConfig()
	c.BlockOutChannels = nil
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("vae: %s: not a valid config.json: %w", name, err)
	}
	if c.BlockOutChannels == nil {
		c.BlockOutChannels = DefaultConfig().BlockOutChannels
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("vae: %s: %w", name, err)
	}
	return c, nil
}

// Validate checks that the decoder can be built from c.
func (c Config) Validate() error {
	if c.ClassName != "" && c.ClassName != "AutoencoderKL" {
		return fmt.Errorf("_class_name %q is not an AutoencoderKL", c.ClassName)
	}
	if len(c.BlockOutChannels) == 0 || len(c.BlockOutChannels) > 8 {
		return fmt.Errorf("block_out_channels %v: want 1 to 8 levels", c.BlockOutChannels)
	}
	if c.NormNumGroups <= 0 {
		return fmt.Errorf("norm_num_groups %d must be positive", c.NormNumGroups)
	}
	for _, ch := range c.BlockOutChannels {
		if ch <= 0 || ch%c.NormNumGroups != 0 {
			return fmt.Errorf("block_out_channels %v: every width must be a positive multiple of norm_num_groups %d", c.BlockOutChannels, c.NormNumGroups)
		}
	}
	if c.LayersPerBlock < 0 || c.LayersPerBlock > 64 {
		return fmt.Errorf("layers_per_block %d out of range", c.LayersPerBlock)
	}
	if c.LatentChannels <= 0 || c.OutChannels <= 0 {
		return fmt.Errorf("latent_channels %d and out_channels %d must be positive", c.LatentChannels, c.OutChannels)
	}
	if !(c.ScalingFactor > 0) {
		return fmt.Errorf("scaling_factor %v must be positive", c.ScalingFactor)
	}
	if c.ActFn != "" && c.ActFn != "silu" && c.ActFn != "swish" {
		return fmt.Errorf("act_fn %q: only silu is supported", c.ActFn)
	}
	return checkBlockTypes("up_block_types", c.UpBlockTypes, "UpDecoderBlock2D", len(c.BlockOutChannels))
}

// checkBlockTypes checks a config's list of block types (name): each the one
// kind supported, one per level when the list is given.
func checkBlockTypes(name string, types []string, kind string, levels int) error {
	for _, t := range types {
		if t != kind {
			return fmt.Errorf("%s %v: only %s is supported", name, types, kind)
		}
	}
	if types != nil && len(types) != levels {
		return fmt.Errorf("%s has %d entries, block_out_channels %d", name, len(types), levels)
	}
	return nil
}

// Upscale is the ratio of image to latent size: 2^(levels-1), 8 for SD.
func (c Config) Upscale() int { return 1 << (len(c.BlockOutChannels) - 1) }

func (c Config) hasMidAttention() bool { return c.MidBlockAttn == nil || *c.MidBlockAttn }

func (c Config) hasPostQuantConv() bool { return c.UsePostQuantConv == nil || *c.UsePostQuantConv }

func (c Config) hasQuantConv() bool { return c.UseQuantConv == nil || *c.UseQuantConv }

// inChannels is in_channels, 3 (RGB) when unset.
func (c Config) inChannels() int {
	if c.InChannels <= 0 {
		return 3
	}
	return c.InChannels
}

// validateEncoder adds the encoder's own checks to Validate.
func (c Config) validateEncoder() error {
	if err := c.Validate(); err != nil {
		return err
	}
	if c.InChannels < 0 || c.InChannels > 64 {
		return fmt.Errorf("in_channels %d out of range", c.InChannels)
	}
	if c.LayersPerBlock < 1 {
		return fmt.Errorf("layers_per_block %d: the encoder needs at least one resnet per block", c.LayersPerBlock)
	}
	return checkBlockTypes("down_block_types", c.DownBlockTypes, "DownEncoderBlock2D", len(c.BlockOutChannels))
}

// reversedChannels is the decoder's order of widths, deepest first.
func (c Config) reversedChannels() []int {
	r := slices.Clone(c.BlockOutChannels)
	slices.Reverse(r)
	return r
}
