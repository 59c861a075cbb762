package vae

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gorgonia.org/tensor"
)

// Shapes lists every decoder tensor (diffusers names) and its shape for cfg.
func Shapes(cfg Config) map[string][]int {
	s := map[string][]int{}
	conv := func(name string, cout, cin, k int) {
		s[name+".weight"] = []int{cout, cin, k, k}
		s[name+".bias"] = []int{cout}
	}
	norm := func(name string, c int) {
		s[name+".weight"] = []int{c}
		s[name+".bias"] = []int{c}
	}
	resnet := func(name string, in, out int) {
		norm(name+".norm1", in)
		conv(name+".conv1", out, in, 3)
		norm(name+".norm2", out)
		conv(name+".conv2", out, out, 3)
		if in != out {
			conv(name+".conv_shortcut", out, in, 1)
		}
	}
	lc := cfg.LatentChannels
	chans := cfg.reversedChannels()
	top := chans[0]
	if cfg.hasPostQuantConv() {
		conv("post_quant_conv", lc, lc, 1)
	}
	conv("decoder.conv_in", top, lc, 3)
	resnet("decoder.mid_block.resnets.0", top, top)
	if cfg.hasMidAttention() {
		p := "decoder.mid_block.attentions.0"
		norm(p+".group_norm", top)
		for _, n := range []string{"to_q", "to_k", "to_v", "to_out.0"} {
			s[p+"."+n+".weight"] = []int{top, top}
			s[p+"."+n+".bias"] = []int{top}
		}
	}
	resnet("decoder.mid_block.resnets.1", top, top)
	prev := top
	for i, ch := range chans {
		for j := 0; j <= cfg.LayersPerBlock; j++ {
			resnet(fmt.Sprintf("decoder.up_blocks.%d.resnets.%d", i, j), prev, ch)
			prev = ch
		}
		if i < len(chans)-1 {
			conv(fmt.Sprintf("decoder.up_blocks.%d.upsamplers.0.conv", i), ch, ch, 3)
		}
	}
	norm("decoder.conv_norm_out", cfg.BlockOutChannels[0])
	conv("decoder.conv_out", cfg.OutChannels, cfg.BlockOutChannels[0], 3)
	return s
}

// NewRandomDecoder builds a decoder with random weights (for benchmarks and
// demos): weights N(0, 1/fan_in), biases N(0, 0.01), norm scales 1 + N(0, 0.04).
func NewRandomDecoder(cfg Config, seed uint64) (*Decoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("vae: %w", err)
	}
	r := rand.New(rand.NewPCG(seed, 0x7ae))
	tensors := map[string]*tensor.Dense{}
	for name, shape := range Shapes(cfg) {
		n, fanIn := 1, 1
		for i, d := range shape {
			n *= d
			if i > 0 {
				fanIn *= d
			}
		}
		data := make([]float32, n)
		std, mean := 1/math.Sqrt(float64(fanIn)), 0.0
		if len(shape) == 1 {
			std = 0.1
			if isNormWeight(name) {
				std, mean = 0.2, 1
			}
		}
		for i := range data {
			data[i] = float32(mean + std*r.NormFloat64())
		}
		tensors[name] = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
	}
	return NewDecoder(&cfg, tensors)
}

func isNormWeight(name string) bool {
	for _, s := range []string{"norm1.weight", "norm2.weight", "group_norm.weight", "conv_norm_out.weight"} {
		if len(name) >= len(s) && name[len(name)-len(s):] == s {
			return true
		}
	}
	return false
}
