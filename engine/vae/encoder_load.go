package vae

import (
	"fmt"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"

	"gorgonia.org/tensor"

	"geca/engine/compute"
)

// LoadEncoder loads an AutoencoderKL encoder (and quant_conv) from the same
// kinds of path LoadDecoder accepts: a diffusers folder (config.json +
// diffusion_pytorch_model[.fp16].safetensors), or a .safetensors file in the
// diffusers or original Stable Diffusion single-file layout
// (first_stage_model.encoder.* or encoder.*), whose shape is then read off the
// tensors with 32 norm groups and scaling factor 0.18215. Decoder tensors and
// anything else are ignored. A file without encoder weights (a decoder-only
// VAE such as a TAESD decoder) is an error that says so.
func LoadEncoder(path string) (*Encoder, error) {
	cfg, weights, err := resolveWeights(path)
	if err != nil {
		return nil, err
	}
	tensors, err := loadTensors(weights)
	if err != nil {
		return nil, err
	}
	e, err := newEncoder(cfg, tensors, weights)
	// The decoder's tensors and the encoder's 3x3 kernels (now in Winograd
	// form) are garbage: hand the memory back now.
	debug.FreeOSMemory()
	return e, err
}

// NewEncoder builds an encoder from state-dict tensors in any layout
// LoadEncoder accepts; cfg nil means "infer from the shapes". The tensors'
// data is used in place (not copied).
func NewEncoder(cfg *Config, tensors map[string]*tensor.Dense) (*Encoder, error) {
	return newEncoder(cfg, tensors, "weights")
}

func newEncoder(cfg *Config, tensors map[string]*tensor.Dense, file string) (*Encoder, error) {
	src, c, err := newPart(tensors, file, "encoder", cfg, (*source).inferEncoderConfig, Config.validateEncoder)
	if err != nil {
		return nil, err
	}
	e := &Encoder{Cfg: c}
	g := c.NormNumGroups
	chans := c.BlockOutChannels
	top := chans[len(chans)-1]
	e.ConvIn = src.conv("encoder.conv_in", chans[0], c.inChannels(), 3)
	prev := chans[0]
	for i, ch := range chans {
		p := fmt.Sprintf("encoder.down_blocks.%d", i)
		down := &DownEncoderBlock2D{}
		for j := 0; j < c.LayersPerBlock; j++ {
			down.Resnets = append(down.Resnets, src.resnet(fmt.Sprintf("%s.resnets.%d", p, j), prev, ch, g))
			prev = ch
		}
		if i < len(chans)-1 {
			down.Downsamplers = []*Downsample2D{{Conv: src.strided(p+".downsamplers.0.conv", ch, ch)}}
		}
		e.DownBlocks = append(e.DownBlocks, down)
	}
	e.MidBlock = src.midBlock("encoder.mid_block", top, g, c.hasMidAttention())
	lc2 := 2 * c.LatentChannels // double_z: mean and log-variance
	e.ConvNormOut = src.norm("encoder.conv_norm_out", top, g)
	e.ConvOut = src.conv("encoder.conv_out", lc2, top, 3)
	if c.hasQuantConv() {
		e.QuantConv = src.conv("quant_conv", lc2, lc2, 1)
	}
	if src.err != nil {
		return nil, src.err
	}
	// Transform the 3x3 kernels for the image size the VAE was made for.
	lh, lw := c.latentSize()
	e.Prepare(lh*c.Upscale(), lw*c.Upscale())
	return e, nil
}

// strided returns the stride-2 convolution of a Downsample2D (weights kept
// in PyTorch layout: it has no Winograd form).
func (s *source) strided(name string, cout, cin int) *compute.StridedConv {
	w := s.get(name+".weight", []int{cout, cin, 3, 3})
	b := s.get(name+".bias", []int{cout})
	if s.err != nil {
		return nil
	}
	c, err := compute.NewStridedConv(cout, cin, w, b)
	if err != nil {
		s.err = fmt.Errorf("vae: %s: %s: %w", s.file, name, err)
	}
	return c
}

var ldmDown = regexp.MustCompile(`^encoder\.down\.(\d+)\.(.*)$`)

// ldmEncoderToDiffusers renames one original-SD (ldm) encoder key to
// diffusers: down.I.block.J -> down_blocks.I.resnets.J (same level order,
// unlike the decoder's up.I), down.I.downsample.conv ->
// downsamplers.0.conv, mid.block_1/2 -> mid_block.resnets.0/1,
// mid.attn_1.{norm,q,k,v,proj_out} ->
// mid_block.attentions.0.{group_norm,to_q,to_k,to_v,to_out.0},
// nin_shortcut -> conv_shortcut, norm_out -> conv_norm_out.
func ldmEncoderToDiffusers(name string) string {
	r := strings.NewReplacer(
		"encoder.mid.block_1.", "encoder.mid_block.resnets.0.",
		"encoder.mid.block_2.", "encoder.mid_block.resnets.1.",
		"encoder.mid.attn_1.norm.", "encoder.mid_block.attentions.0.group_norm.",
		"encoder.mid.attn_1.q.", "encoder.mid_block.attentions.0.to_q.",
		"encoder.mid.attn_1.k.", "encoder.mid_block.attentions.0.to_k.",
		"encoder.mid.attn_1.v.", "encoder.mid_block.attentions.0.to_v.",
		"encoder.mid.attn_1.proj_out.", "encoder.mid_block.attentions.0.to_out.0.",
		"encoder.norm_out.", "encoder.conv_norm_out.",
	)
	name = r.Replace(name)
	if m := ldmDown.FindStringSubmatch(name); m != nil {
		rest := m[2]
		rest = strings.Replace(rest, "block.", "resnets.", 1)
		rest = strings.Replace(rest, "downsample.conv.", "downsamplers.0.conv.", 1)
		name = fmt.Sprintf("encoder.down_blocks.%s.%s", m[1], rest)
	}
	return strings.Replace(name, ".nin_shortcut.", ".conv_shortcut.", 1)
}

// inferEncoderConfig reads the encoder's shape off the tensors (single files
// without config.json): image channels from conv_in, widths from each down
// block's first conv1, depth from the number of resnets, latent channels
// from conv_out (mean and log-variance: twice the latent channels). Norm
// groups and the scaling factor cannot be seen in the weights; SD's 32 and
// 0.18215 are used.
func (s *source) inferEncoderConfig() (Config, error) {
	c := DefaultConfig()
	shape := func(name string) ([]int, error) {
		e, ok := s.byName[name]
		if !ok {
			return nil, fmt.Errorf("vae: %s: missing tensor %q (%s layout), needed to infer the encoder shape", s.file, name, s.layout)
		}
		sh := []int(e.t.Shape())
		if len(sh) != 4 {
			return nil, fmt.Errorf("vae: %s: tensor %q has shape %v, want 4 dimensions", s.file, e.orig, sh)
		}
		return sh, nil
	}
	ci, err := shape("encoder.conv_in.weight")
	if err != nil {
		return c, err
	}
	c.InChannels = ci[1]
	var chans []int
	for i := 0; ; i++ {
		name := "encoder.down_blocks." + strconv.Itoa(i) + ".resnets.0.conv1.weight"
		if _, ok := s.byName[name]; !ok {
			if i == 0 {
				_, err := shape(name)
				return c, err
			}
			break
		}
		sh, err := shape(name)
		if err != nil {
			return c, err
		}
		chans = append(chans, sh[0])
	}
	c.BlockOutChannels = chans
	n := 0
	for {
		if _, ok := s.byName["encoder.down_blocks.0.resnets."+strconv.Itoa(n)+".conv1.weight"]; !ok {
			break
		}
		n++
	}
	c.LayersPerBlock = n
	co, err := shape("encoder.conv_out.weight")
	if err != nil {
		return c, err
	}
	if co[0]%2 != 0 {
		return c, fmt.Errorf("vae: %s: tensor %q has %d output channels, want an even number (mean and log-variance)", s.file, s.byName["encoder.conv_out.weight"].orig, co[0])
	}
	c.LatentChannels = co[0] / 2
	if _, ok := s.byName["quant_conv.weight"]; !ok {
		f := false
		c.UseQuantConv = &f
	}
	if _, ok := s.byName["encoder.mid_block.attentions.0.to_q.weight"]; !ok {
		f := false
		c.MidBlockAttn = &f
	}
	return c, nil
}
