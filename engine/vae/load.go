package vae

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gorgonia.org/tensor"

	"geca/engine/ckpt"
	"geca/engine/compute"
)

// WeightsFile is the name of a diffusers model folder's weights.
const WeightsFile = "diffusion_pytorch_model.safetensors"

// LoadDecoder loads an AutoencoderKL decoder from path, which is either
//   - a diffusers model folder: config.json + diffusion_pytorch_model.safetensors
//     (or diffusion_pytorch_model.fp16.safetensors), e.g. stabilityai/sd-vae-ft-ema;
//   - a .safetensors file: a diffusers VAE file, or an original Stable
//     Diffusion checkpoint / VAE in the single-file layout
//     (first_stage_model.decoder.* or decoder.*). Without a config.json
//     beside a diffusers-named file, the widths and depth are read off the
//     tensor shapes, with 32 norm groups and scaling factor 0.18215.
//
// Encoder tensors (and anything else not in the decoder) are ignored. Float16
// and bfloat16 weights are converted to float32.
func LoadDecoder(path string) (*Decoder, error) {
	cfg, weights, err := resolveWeights(path)
	if err != nil {
		return nil, err
	}
	tensors, err := loadTensors(weights)
	if err != nil {
		return nil, err
	}
	d, err := newDecoder(cfg, tensors, weights)
	// The file's tensors (the encoder's too, and the decoder's 3x3 kernels,
	// now held in Winograd form) are garbage: hand the memory back now
	// rather than after the next collections.
	debug.FreeOSMemory()
	return d, err
}

// resolveWeights finds the weights file and the config (nil: infer it from
// the tensors) of a diffusers folder or a single file, as LoadDecoder and
// LoadEncoder accept them.
func resolveWeights(path string) (*Config, string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, "", fmt.Errorf("vae: %w", err)
	}
	if st.IsDir() {
		cpath := filepath.Join(path, "config.json")
		c, err := readConfigFile(cpath)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, "", fmt.Errorf("vae: %s: no config.json (want a diffusers AutoencoderKL folder: config.json + %s)", path, WeightsFile)
			}
			return nil, "", err
		}
		weights := filepath.Join(path, WeightsFile)
		if _, err := os.Stat(weights); err != nil {
			alt := filepath.Join(path, "diffusion_pytorch_model.fp16.safetensors")
			if _, err2 := os.Stat(alt); err2 != nil {
				return nil, "", fmt.Errorf("vae: %s: missing %s", path, WeightsFile)
			}
			weights = alt
		}
		return &c, weights, nil
	}
	if strings.HasPrefix(filepath.Base(path), "diffusion_pytorch_model") {
		if c, err := readConfigFile(filepath.Join(filepath.Dir(path), "config.json")); err == nil {
			return &c, path, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, "", err
		}
	}
	return nil, path, nil
}

// loadTensors reads a weights file: safetensors, or a PyTorch zip checkpoint
// (a bare state_dict such as taesd_decoder.pth) through ckpt.Load.
func loadTensors(path string) (map[string]*tensor.Dense, error) {
	if strings.EqualFold(filepath.Ext(path), ".safetensors") {
		t, _, _, err := ckpt.LoadSafetensors(path)
		if err != nil {
			return nil, fmt.Errorf("vae: %w", err)
		}
		return t, nil
	}
	c, err := ckpt.Load(path, ckpt.Options{})
	if err != nil {
		return nil, fmt.Errorf("vae: %w", err)
	}
	return c.Tensors, nil
}

// NewDecoder builds a decoder from state-dict tensors in any of the layouts
// LoadDecoder accepts; cfg nil means "infer from the shapes". The tensors'
// data is used in place (not copied).
func NewDecoder(cfg *Config, tensors map[string]*tensor.Dense) (*Decoder, error) {
	return newDecoder(cfg, tensors, "weights")
}

func newDecoder(cfg *Config, tensors map[string]*tensor.Dense, file string) (*Decoder, error) {
	src, c, err := newPart(tensors, file, "decoder", cfg, (*source).inferConfig, Config.Validate)
	if err != nil {
		return nil, err
	}
	d := &Decoder{Cfg: c}
	g := c.NormNumGroups
	lc := c.LatentChannels
	chans := c.reversedChannels()
	top := chans[0]
	if c.hasPostQuantConv() {
		d.PostQuantConv = src.conv("post_quant_conv", lc, lc, 1)
	}
	d.ConvIn = src.conv("decoder.conv_in", top, lc, 3)
	d.MidBlock = src.midBlock("decoder.mid_block", top, g, c.hasMidAttention())
	prev := top
	for i, ch := range chans {
		p := fmt.Sprintf("decoder.up_blocks.%d", i)
		up := &UpDecoderBlock2D{}
		for j := 0; j <= c.LayersPerBlock; j++ {
			up.Resnets = append(up.Resnets, src.resnet(fmt.Sprintf("%s.resnets.%d", p, j), prev, ch, g))
			prev = ch
		}
		if i < len(chans)-1 {
			up.Upsamplers = []*Upsample2D{{Conv: src.conv(p+".upsamplers.0.conv", ch, ch, 3)}}
		}
		d.UpBlocks = append(d.UpBlocks, up)
	}
	d.ConvNormOut = src.norm("decoder.conv_norm_out", c.BlockOutChannels[0], g)
	d.ConvOut = src.conv("decoder.conv_out", c.OutChannels, c.BlockOutChannels[0], 3)
	if src.err != nil {
		return nil, src.err
	}
	// Transform the 3x3 kernels now, for the size the VAE was made for
	// (their original weights are then released).
	d.Prepare(c.latentSize())
	return d, nil
}

// newPart collects the tensors of part (newSource) and settles its config:
// cfg when given, else what infer reads off the tensors; either way checked
// by validate.
func newPart(tensors map[string]*tensor.Dense, file, part string, cfg *Config,
	infer func(*source) (Config, error), validate func(Config) error) (*source, Config, error) {
	src, err := newSource(tensors, file, part)
	if err != nil {
		return nil, Config{}, err
	}
	var c Config
	if cfg != nil {
		c = *cfg
	} else if c, err = infer(src); err != nil {
		return nil, Config{}, err
	}
	if err := validate(c); err != nil {
		return nil, Config{}, fmt.Errorf("vae: %s: %w", file, err)
	}
	if err := checkScaling(c); err != nil {
		return nil, Config{}, fmt.Errorf("vae: %s: %w", file, err)
	}
	return src, c, nil
}

// midBlock returns the UNetMidBlock2D at prefix (the encoder's and the
// decoder's are alike): two resnets of ch channels with, when attention
// is set, the single-head self-attention between them.
func (s *source) midBlock(prefix string, ch, groups int, attention bool) *UNetMidBlock2D {
	m := &UNetMidBlock2D{Resnets: []*ResnetBlock2D{
		s.resnet(prefix+".resnets.0", ch, ch, groups),
		s.resnet(prefix+".resnets.1", ch, ch, groups),
	}}
	if attention {
		p := prefix + ".attentions.0"
		m.Attentions = []*Attention{{
			C:         ch,
			GroupNorm: s.norm(p+".group_norm", ch, groups),
			ToQ:       s.linear(p+".to_q", ch, ch),
			ToK:       s.linear(p+".to_k", ch, ch),
			ToV:       s.linear(p+".to_v", ch, ch),
			ToOut:     s.linear(p+".to_out.0", ch, ch),
		}}
	}
	return m
}

// source hands out the tensors of one part of the VAE (decoder or encoder)
// by their diffusers names, whatever layout the file uses, and keeps the
// first error (naming the file and tensor).
type source struct {
	file   string
	byName map[string]entry // diffusers name -> tensor
	layout string           // "diffusers" or "original SD"
	err    error
}

type entry struct {
	orig string // the name in the file
	t    *tensor.Dense
}

// newSource collects the tensors of part, "decoder" (decoder.* and
// post_quant_conv.*) or "encoder" (encoder.* and quant_conv.*); everything
// else in the file is ignored.
func newSource(tensors map[string]*tensor.Dense, file, part string) (*source, error) {
	s := &source{file: file, byName: map[string]entry{}, layout: "diffusers"}
	quant := "post_quant_conv."
	if part == "encoder" {
		quant = "quant_conv."
	}
	names := make([]string, 0, len(tensors))
	for k := range tensors {
		names = append(names, k)
	}
	sort.Strings(names)
	// Original SD checkpoints prefix the VAE with first_stage_model.; some
	// VAE-only files (and ours) use "vae.".
	prefix := ""
	for _, p := range []string{"first_stage_model.", "vae."} {
		for _, k := range names {
			if strings.HasPrefix(k, p+part+".") {
				prefix = p
				break
			}
		}
		if prefix != "" {
			break
		}
	}
	ldm := false
	for _, k := range names {
		n := strings.TrimPrefix(k, prefix)
		if strings.HasPrefix(n, part+".mid.") || strings.HasPrefix(n, part+".up.") || strings.HasPrefix(n, part+".down.") {
			ldm = true
			break
		}
	}
	if ldm {
		s.layout = "original SD"
	}
	levels := 0
	if ldm && part == "decoder" {
		for _, k := range names {
			if m := ldmUp.FindStringSubmatch(strings.TrimPrefix(k, prefix)); m != nil {
				i, _ := strconv.Atoi(m[1])
				levels = max(levels, i+1)
			}
		}
	}
	for _, k := range names {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		name := strings.TrimPrefix(k, prefix)
		if !strings.HasPrefix(name, part+".") && !strings.HasPrefix(name, quant) {
			continue
		}
		if ldm {
			if part == "decoder" {
				name = ldmToDiffusers(name, levels)
			} else {
				name = ldmEncoderToDiffusers(name)
			}
		}
		name = renameOldAttention(name)
		if prev, dup := s.byName[name]; dup {
			return nil, fmt.Errorf("vae: %s: tensors %q and %q both give %q", file, prev.orig, k, name)
		}
		s.byName[name] = entry{orig: k, t: tensors[k]}
	}
	if len(s.byName) == 0 {
		if part == "encoder" {
			return nil, fmt.Errorf("vae: %s: no VAE encoder tensors (want encoder.* keys, diffusers or original SD layout); a decoder-only file cannot encode images", file)
		}
		return nil, fmt.Errorf("vae: %s: no VAE decoder tensors (want decoder.* keys, diffusers or original SD layout)", file)
	}
	return s, nil
}

var (
	ldmUp      = regexp.MustCompile(`^decoder\.up\.(\d+)\.(.*)$`)
	attnRename = strings.NewReplacer(".query.", ".to_q.", ".key.", ".to_k.", ".value.", ".to_v.", ".proj_attn.", ".to_out.0.")
)

// renameOldAttention maps the attention names of older diffusers files
// (query, key, value, proj_attn) to the current ones.
func renameOldAttention(name string) string {
	if !strings.Contains(name, ".attentions.") {
		return name
	}
	return attnRename.Replace(name)
}

// ldmToDiffusers renames one original-SD (ldm) decoder key to diffusers:
// mid.block_1/2 -> mid_block.resnets.0/1, mid.attn_1.{norm,q,k,v,proj_out}
// -> mid_block.attentions.0.{group_norm,to_q,to_k,to_v,to_out.0},
// up.I.block.J -> up_blocks.(levels-1-I).resnets.J (ldm numbers levels from
// the full resolution), up.I.upsample -> upsamplers.0, nin_shortcut ->
// conv_shortcut, norm_out -> conv_norm_out.
func ldmToDiffusers(name string, levels int) string {
	r := strings.NewReplacer(
		"decoder.mid.block_1.", "decoder.mid_block.resnets.0.",
		"decoder.mid.block_2.", "decoder.mid_block.resnets.1.",
		"decoder.mid.attn_1.norm.", "decoder.mid_block.attentions.0.group_norm.",
		"decoder.mid.attn_1.q.", "decoder.mid_block.attentions.0.to_q.",
		"decoder.mid.attn_1.k.", "decoder.mid_block.attentions.0.to_k.",
		"decoder.mid.attn_1.v.", "decoder.mid_block.attentions.0.to_v.",
		"decoder.mid.attn_1.proj_out.", "decoder.mid_block.attentions.0.to_out.0.",
		"decoder.norm_out.", "decoder.conv_norm_out.",
	)
	name = r.Replace(name)
	if m := ldmUp.FindStringSubmatch(name); m != nil {
		i, _ := strconv.Atoi(m[1])
		rest := m[2]
		rest = strings.Replace(rest, "block.", "resnets.", 1)
		rest = strings.Replace(rest, "upsample.conv.", "upsamplers.0.conv.", 1)
		name = fmt.Sprintf("decoder.up_blocks.%d.%s", levels-1-i, rest)
	}
	return strings.Replace(name, ".nin_shortcut.", ".conv_shortcut.", 1)
}

// get returns the float32 data of a tensor whose shape must be one of shapes.
func (s *source) get(name string, shapes ...[]int) []float32 {
	if s.err != nil {
		return nil
	}
	e, ok := s.byName[name]
	if !ok {
		s.err = fmt.Errorf("vae: %s: missing tensor %q (%s layout)", s.file, name, s.layout)
		return nil
	}
	shape := []int(e.t.Shape())
	match := false
	for _, want := range shapes {
		if slices.Equal(shape, want) || (len(want) == 1 && len(shape) == 0 && want[0] == 1) {
			match = true
		}
	}
	if !match {
		s.err = fmt.Errorf("vae: %s: tensor %q has shape %v, want %v", s.file, e.orig, shape, shapes[0])
		return nil
	}
	var data []float32
	switch v := e.t.Data().(type) {
	case []float32:
		data = v
	case []float64:
		data = make([]float32, len(v))
		for i, x := range v {
			data[i] = float32(x)
		}
	default:
		s.err = fmt.Errorf("vae: %s: tensor %q has dtype %v, want a float type", s.file, e.orig, e.t.Dtype())
		return nil
	}
	if !finite(data) {
		s.err = fmt.Errorf("vae: %s: tensor %q holds NaN or Inf", s.file, e.orig)
		return nil
	}
	return data
}

func (s *source) conv(name string, cout, cin, k int) *compute.Conv {
	w := s.get(name+".weight", []int{cout, cin, k, k})
	b := s.get(name+".bias", []int{cout})
	if s.err != nil {
		return nil
	}
	c, err := compute.NewConv(cout, cin, k, w, b)
	if err != nil {
		s.err = fmt.Errorf("vae: %s: %s: %w", s.file, name, err)
		return nil
	}
	c.ReleaseWeight() // 3x3 kernels keep only their Winograd form
	return c
}

func (s *source) norm(name string, c, groups int) *GroupNorm {
	w := s.get(name+".weight", []int{c})
	b := s.get(name+".bias", []int{c})
	return &GroupNorm{Groups: groups, Eps: 1e-6, Weight: w, Bias: b}
}

func (s *source) linear(name string, out, in int) *Linear {
	w := s.get(name+".weight", []int{out, in}, []int{out, in, 1, 1})
	b := s.get(name+".bias", []int{out})
	return &Linear{In: in, Out: out, Weight: w, Bias: b}
}

func (s *source) resnet(name string, in, out, groups int) *ResnetBlock2D {
	r := &ResnetBlock2D{
		In: in, Out: out,
		Norm1: s.norm(name+".norm1", in, groups),
		Conv1: s.conv(name+".conv1", out, in, 3),
		Norm2: s.norm(name+".norm2", out, groups),
		Conv2: s.conv(name+".conv2", out, out, 3),
	}
	if in != out {
		r.ConvShortcut = s.conv(name+".conv_shortcut", out, in, 1)
	}
	return r
}

// inferConfig reads the decoder's shape off the tensors (for single files
// without config.json): widths from each up block's first conv1, depth from
// the number of resnets, latent channels from conv_in. Norm groups and the
// scaling factor cannot be seen in the weights; SD's 32 and 0.18215 are used.
func (s *source) inferConfig() (Config, error) {
	c := DefaultConfig()
	ci, ok := s.byName["decoder.conv_in.weight"]
	if !ok || len(ci.t.Shape()) != 4 {
		return c, fmt.Errorf("vae: %s: missing tensor %q (%s layout), needed to infer the decoder shape", s.file, "decoder.conv_in.weight", s.layout)
	}
	c.LatentChannels = ci.t.Shape()[1]
	var chans []int
	for i := 0; ; i++ {
		e, ok := s.byName[fmt.Sprintf("decoder.up_blocks.%d.resnets.0.conv1.weight", i)]
		if !ok {
			break
		}
		if len(e.t.Shape()) != 4 {
			return c, fmt.Errorf("vae: %s: tensor %q has shape %v, want 4 dimensions", s.file, e.orig, e.t.Shape())
		}
		chans = append(chans, e.t.Shape()[0])
	}
	if len(chans) == 0 {
		return c, fmt.Errorf("vae: %s: missing tensor %q (%s layout), needed to infer the decoder shape", s.file, "decoder.up_blocks.0.resnets.0.conv1.weight", s.layout)
	}
	slices.Reverse(chans)
	c.BlockOutChannels = chans
	n := 0
	for {
		if _, ok := s.byName[fmt.Sprintf("decoder.up_blocks.0.resnets.%d.conv1.weight", n)]; !ok {
			break
		}
		n++
	}
	c.LayersPerBlock = n - 1
	if co, ok := s.byName["decoder.conv_out.weight"]; ok && len(co.t.Shape()) == 4 {
		c.OutChannels = co.t.Shape()[0]
	}
	if _, ok := s.byName["post_quant_conv.weight"]; !ok {
		f := false
		c.UsePostQuantConv = &f
	}
	if _, ok := s.byName["decoder.mid_block.attentions.0.to_q.weight"]; !ok {
		f := false
		c.MidBlockAttn = &f
	}
	return c, nil
}
