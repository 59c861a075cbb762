package vae

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gorgonia.org/tensor"
)

// shapeList collects state-dict tensor names and shapes, layer by layer.
type shapeList map[string][]int

func (s shapeList) conv(name string, cout, cin, k int) {
	s[name+".weight"] = []int{cout, cin, k, k}
	s[name+".bias"] = []int{cout}
}

func (s shapeList) norm(name string, c int) {
	s[name+".weight"] = []int{c}
	s[name+".bias"] = []int{c}
}

func (s shapeList) resnet(name string, in, out int) {
	s.norm(name+".norm1", in)
	s.conv(name+".conv1", out, in, 3)
	s.norm(name+".norm2", out)
	s.conv(name+".conv2", out, out, 3)
	if in != out {
		s.conv(name+".conv_shortcut", out, in, 1)
	}
}

// midBlock is resnets.0, attentions.0 (when attention is set), resnets.1 at
// width c.
func (s shapeList) midBlock(name string, c int, attention bool) {
	s.resnet(name+".resnets.0", c, c)
	if attention {
		p := name + ".attentions.0"
		s.norm(p+".group_norm", c)
		for _, n := range []string{"to_q", "to_k", "to_v", "to_out.0"} {
			s[p+"."+n+".weight"] = []int{c, c}
			s[p+"."+n+".bias"] = []int{c}
		}
	}
	s.resnet(name+".resnets.1", c, c)
}

// Shapes lists every decoder tensor (diffusers names) and its shape for cfg.
func Shapes(cfg Config) map[string][]int {
	s := shapeList{}
	lc := cfg.LatentChannels
	chans := cfg.reversedChannels()
	top := chans[0]
	if cfg.hasPostQuantConv() {
		s.conv("post_quant_conv", lc, lc, 1)
	}
	s.conv("decoder.conv_in", top, lc, 3)
	s.midBlock("decoder.mid_block", top, cfg.hasMidAttention())
	prev := top
	for i, ch := range chans {
		for j := 0; j <= cfg.LayersPerBlock; j++ {
			s.resnet(fmt.Sprintf("decoder.up_blocks.%d.resnets.%d", i, j), prev, ch)
			prev = ch
		}
		if i < len(chans)-1 {
			s.conv(fmt.Sprintf("decoder.up_blocks.%d.upsamplers.0.conv", i), ch, ch, 3)
		}
	}
	s.norm("decoder.conv_norm_out", cfg.BlockOutChannels[0])
	s.conv("decoder.conv_out", cfg.OutChannels, cfg.BlockOutChannels[0], 3)
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
