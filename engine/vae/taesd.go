package vae

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"

	"gorgonia.org/tensor"

	"geca/engine/compute"
	"geca/internal/safefile"
)

// TinyConfig is a diffusers AutoencoderTiny config.json (decoder part).
// Absent keys take TAESD's values for SD 1.x.
type TinyConfig struct {
	ClassName               string  `json:"_class_name"`
	LatentChannels          int     `json:"latent_channels"`
	OutChannels             int     `json:"out_channels"`
	DecoderBlockOutChannels []int   `json:"decoder_block_out_channels"`
	NumDecoderBlocks        []int   `json:"num_decoder_blocks"`
	UpsamplingScalingFactor int     `json:"upsampling_scaling_factor"`
	ActFn                   string  `json:"act_fn"`
	UpsampleFn              string  `json:"upsample_fn"`
	ScalingFactor           float64 `json:"scaling_factor"`
}

// DefaultTinyConfig is TAESD for SD 1.x (madebyollin/taesd): width 64,
// 3+3+3+1 blocks, latent scale 1.
func DefaultTinyConfig() TinyConfig {
	return TinyConfig{
		ClassName:               "AutoencoderTiny",
		LatentChannels:          4,
		OutChannels:             3,
		DecoderBlockOutChannels: []int{64, 64, 64, 64},
		NumDecoderBlocks:        []int{3, 3, 3, 1},
		UpsamplingScalingFactor: 2,
		ActFn:                   "relu",
		UpsampleFn:              "nearest",
		ScalingFactor:           1,
	}
}

// Validate checks that the tiny decoder can be built from c.
func (c TinyConfig) Validate() error {
	n := len(c.DecoderBlockOutChannels)
	if n == 0 || n > 8 || len(c.NumDecoderBlocks) != n {
		return fmt.Errorf("decoder_block_out_channels %v and num_decoder_blocks %v: want 1 to 8 levels, one count each", c.DecoderBlockOutChannels, c.NumDecoderBlocks)
	}
	for _, ch := range c.DecoderBlockOutChannels {
		// Each level's last conv keeps the width, so the next level's blocks
		// only fit when every level has the same width (as in diffusers).
		if ch <= 0 || ch != c.DecoderBlockOutChannels[0] {
			return fmt.Errorf("decoder_block_out_channels %v: want one positive width for every level", c.DecoderBlockOutChannels)
		}
	}
	for _, b := range c.NumDecoderBlocks {
		if b < 0 || b > 64 {
			return fmt.Errorf("num_decoder_blocks %v out of range", c.NumDecoderBlocks)
		}
	}
	if c.LatentChannels <= 0 || c.OutChannels <= 0 {
		return fmt.Errorf("latent_channels %d and out_channels %d must be positive", c.LatentChannels, c.OutChannels)
	}
	if c.UpsamplingScalingFactor != 2 {
		return fmt.Errorf("upsampling_scaling_factor %d: only 2 is supported", c.UpsamplingScalingFactor)
	}
	if c.ActFn != "relu" {
		return fmt.Errorf("act_fn %q: only relu is supported", c.ActFn)
	}
	if c.UpsampleFn != "nearest" {
		return fmt.Errorf("upsample_fn %q: only nearest is supported", c.UpsampleFn)
	}
	if !(c.ScalingFactor > 0) {
		return fmt.Errorf("scaling_factor %v must be positive", c.ScalingFactor)
	}
	return nil
}

// TinyDecoder is TAESD's decoder (madebyollin/taesd; diffusers DecoderTiny):
// tanh(z/3)·3, conv + ReLU, then per level a run of blocks, a nearest 2x
// upsample (not in the last level) and a 3x3 conv, the last one to RGB. It
// takes latents as the sampler produces them (TAESD's latent scale is 1) and,
// like diffusers, returns 2·x − 1, so images are in about [-1, 1] as from
// Decoder. About 40 times fewer multiply-adds than the full decoder.
type TinyDecoder struct {
	Cfg    TinyConfig
	ConvIn *compute.Conv // decoder.layers.0 (taesd.py: 1), followed by ReLU
	Levels []*TinyLevel

	mu   sync.Mutex
	bufs [3][]float32
	ws   compute.ConvWorkspace
}

// TinyLevel is one resolution of the tiny decoder.
type TinyLevel struct {
	Blocks   []*TinyBlock  // decoder.layers.N: AutoencoderTinyBlock
	Upsample bool          // nearest 2x before Conv (every level but the last)
	Conv     *compute.Conv // decoder.layers.N: 3x3; bias only in the last (-> RGB)
}

// TinyBlock is ReLU(conv.4(ReLU(conv.2(ReLU(conv.0(x))))) + skip(x)).
type TinyBlock struct {
	Conv [3]*compute.Conv // .conv.0, .conv.2, .conv.4 (3x3)
	Skip *compute.Conv    // .skip (1x1, no bias), nil for the identity
}

// LatentChannels is the number of latent channels the decoder takes.
func (d *TinyDecoder) LatentChannels() int { return d.Cfg.LatentChannels }

// OutputSize returns the image size for an h×w latent.
func (d *TinyDecoder) OutputSize(h, w int) (int, int) {
	s := 1 << (len(d.Levels) - 1)
	return h * s, w * s
}

// Decode maps (b, latent_channels, h, w) latents to (b, 3, OutputSize)
// images in about [-1, 1] (map with ToUint8). The latent is only read.
func (d *TinyDecoder) Decode(latent []float32, b, h, w int) ([]float32, error) {
	lc := d.Cfg.LatentChannels
	if b <= 0 || h <= 0 || w <= 0 || h > 1<<12 || w > 1<<12 || b > 1<<16 {
		return nil, fmt.Errorf("vae: tiny decode: bad latent size b=%d h=%d w=%d", b, h, w)
	}
	if len(latent) != b*lc*h*w {
		return nil, fmt.Errorf("vae: tiny decode: latent has %d values, want b·%d·h·w = %d", len(latent), lc, b*lc*h*w)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	oh, ow := d.OutputSize(h, w)
	width := d.ConvIn.COut
	need := max(lc*h*w, width*oh*ow, d.Cfg.OutChannels*oh*ow)
	if need > maxBuffer {
		return nil, fmt.Errorf("vae: tiny decode: a %dx%d latent needs %d MiB per activation buffer (limit %d MiB); decode smaller latents", h, w, need>>18, maxBuffer>>18)
	}
	for i := range d.bufs {
		if len(d.bufs[i]) < need {
			d.bufs[i] = nil
			d.bufs[i] = make([]float32, need)
		}
	}
	per := d.Cfg.OutChannels * oh * ow
	out := make([]float32, b*per)
	inv := float32(d.Cfg.ScalingFactor)
	for n := 0; n < b; n++ {
		z := d.bufs[0][:lc*h*w]
		for i, v := range latent[n*lc*h*w : (n+1)*lc*h*w] {
			// Clamp: tanh(x/3)·3 keeps the first conv's input in (-3, 3).
			z[i] = float32(math.Tanh(float64(v/inv/3))) * 3
		}
		d.forward(out[n*per:(n+1)*per], h, w)
	}
	return out, nil
}

func (d *TinyDecoder) forward(img []float32, h, w int) {
	ws := &d.ws
	x, t1, t2 := d.bufs[0], d.bufs[1], d.bufs[2]
	lc, c := d.Cfg.LatentChannels, d.ConvIn.COut
	d.ConvIn.Forward(t1[:c*h*w], x[:lc*h*w], 1, h, w, false, false, ws)
	x, t1 = t1, x
	relu(x[:c*h*w])
	for li, lv := range d.Levels {
		for _, b := range lv.Blocks {
			n := c * h * w
			b.Conv[0].Forward(t1[:n], x[:n], 1, h, w, false, false, ws)
			relu(t1[:n])
			b.Conv[1].Forward(t2[:n], t1[:n], 1, h, w, false, false, ws)
			relu(t2[:n])
			if b.Skip != nil {
				b.Skip.Forward(t1[:n], x[:n], 1, h, w, false, false, ws)
				x, t1 = t1, x
			}
			b.Conv[2].Forward(x[:n], t2[:n], 1, h, w, false, true, ws)
			relu(x[:n])
		}
		if lv.Upsample {
			h, w = 2*h, 2*w
		}
		if li == len(d.Levels)-1 {
			lv.Conv.Forward(img, x[:c*(h*w)], 1, h, w, lv.Upsample, false, ws)
			break
		}
		src := x[:c*h*w]
		if lv.Upsample {
			src = x[:c*(h/2)*(w/2)]
		}
		lv.Conv.Forward(t1[:c*h*w], src, 1, h, w, lv.Upsample, false, ws)
		x, t1 = t1, x
	}
	// diffusers' DecoderTiny: x·2 − 1, from TAESD's [0, 1] to [-1, 1].
	for i, v := range img {
		img[i] = 2*v - 1
	}
}

func relu(x []float32) {
	compute.ParallelFunc((len(x)+8191)/8192, func(b0, b1 int) {
		s := x[b0*8192 : min(b1*8192, len(x))]
		for i, v := range s {
			if v < 0 {
				s[i] = 0
			}
		}
	})
}

// LoadTinyDecoder loads TAESD from a diffusers AutoencoderTiny folder
// (config.json + diffusion_pytorch_model.safetensors, keys decoder.layers.N),
// or from a file: a diffusers-named safetensors file, or madebyollin's
// taesd_decoder.safetensors / taesd_decoder.pth (keys N.…, as in taesd.py's
// Decoder, whose index 0 is the clamp). Files without a config.json beside
// them get the shape from the tensors.
func LoadTinyDecoder(path string) (*TinyDecoder, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("vae: %w", err)
	}
	var cfg *TinyConfig
	weights := path
	if st.IsDir() {
		c, err := readTinyConfig(filepath.Join(path, "config.json"))
		if err != nil {
			return nil, err
		}
		cfg = &c
		weights = filepath.Join(path, WeightsFile)
		if _, err := os.Stat(weights); err != nil {
			return nil, fmt.Errorf("vae: %s: missing %s", path, WeightsFile)
		}
	}
	tensors, err := loadTensors(weights)
	if err != nil {
		return nil, err
	}
	d, err := newTinyDecoder(cfg, tensors, weights)
	debug.FreeOSMemory()
	return d, err
}

func readTinyConfig(path string) (TinyConfig, error) {
	b, err := safefile.ReadFile(path, maxConfigFile)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return TinyConfig{}, fmt.Errorf("vae: %s: no config.json (want a diffusers AutoencoderTiny folder: config.json + %s)", filepath.Dir(path), WeightsFile)
		}
		return TinyConfig{}, fmt.Errorf("vae: %w", err)
	}
	c := DefaultTinyConfig()
	c.DecoderBlockOutChannels, c.NumDecoderBlocks = nil, nil
	if err := json.Unmarshal(b, &c); err != nil {
		return TinyConfig{}, fmt.Errorf("vae: %s: not a valid config.json: %w", path, err)
	}
	if c.DecoderBlockOutChannels == nil {
		c.DecoderBlockOutChannels = DefaultTinyConfig().DecoderBlockOutChannels
	}
	if c.NumDecoderBlocks == nil {
		c.NumDecoderBlocks = DefaultTinyConfig().NumDecoderBlocks
	}
	if c.ClassName != "AutoencoderTiny" {
		return TinyConfig{}, fmt.Errorf("vae: %s: _class_name %q is not an AutoencoderTiny", path, c.ClassName)
	}
	if err := c.Validate(); err != nil {
		return TinyConfig{}, fmt.Errorf("vae: %s: %w", path, err)
	}
	return c, nil
}

// NewTinyDecoder builds TAESD from state-dict tensors in either key layout;
// cfg nil means "infer from the shapes".
func NewTinyDecoder(cfg *TinyConfig, tensors map[string]*tensor.Dense) (*TinyDecoder, error) {
	return newTinyDecoder(cfg, tensors, "weights")
}

func newTinyDecoder(cfg *TinyConfig, tensors map[string]*tensor.Dense, file string) (*TinyDecoder, error) {
	// Key layouts: diffusers "decoder.layers.J.…"; taesd.py "I.…" or, for a
	// whole TAESD module, "decoder.I.…", with I = J + 1 (its Sequential
	// starts with the clamp). Everything is renamed to decoder.layers.J.
	s := &source{file: file, byName: map[string]entry{}, layout: "TAESD"}
	for k, t := range tensors {
		name := k
		switch {
		case strings.HasPrefix(name, "decoder.layers."):
		case strings.HasPrefix(name, "encoder."):
			continue
		default:
			name = strings.TrimPrefix(name, "decoder.")
			i, rest, ok := strings.Cut(name, ".")
			n, err := strconv.Atoi(i)
			if !ok || err != nil || n < 1 {
				continue
			}
			name = fmt.Sprintf("decoder.layers.%d.%s", n-1, rest)
		}
		if prev, dup := s.byName[name]; dup {
			return nil, fmt.Errorf("vae: %s: tensors %q and %q both give %q", file, prev.orig, k, name)
		}
		s.byName[name] = entry{orig: k, t: t}
	}
	if len(s.byName) == 0 {
		return nil, fmt.Errorf("vae: %s: no TAESD decoder tensors (want decoder.layers.N.* or N.* keys)", file)
	}
	var c TinyConfig
	if cfg != nil {
		c = *cfg
	} else {
		var err error
		if c, err = s.inferTinyConfig(); err != nil {
			return nil, err
		}
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("vae: %s: %w", file, err)
	}
	width := c.DecoderBlockOutChannels[0]
	d := &TinyDecoder{Cfg: c}
	d.ConvIn = s.conv("decoder.layers.0", width, c.LatentChannels, 3)
	j := 2 // layers.1 is the ReLU
	for li, nb := range c.NumDecoderBlocks {
		lv := &TinyLevel{}
		for range nb {
			p := fmt.Sprintf("decoder.layers.%d", j)
			b := &TinyBlock{}
			for k := range 3 {
				b.Conv[k] = s.conv(fmt.Sprintf("%s.conv.%d", p, 2*k), width, width, 3)
			}
			if _, ok := s.byName[p+".skip.weight"]; ok {
				b.Skip = s.convNoBias(p+".skip", width, width, 1)
			}
			lv.Blocks = append(lv.Blocks, b)
			j++
		}
		last := li == len(c.NumDecoderBlocks)-1
		if !last {
			lv.Upsample = true
			j++ // the Upsample layer
			lv.Conv = s.convNoBias(fmt.Sprintf("decoder.layers.%d", j), width, width, 3)
		} else {
			lv.Conv = s.conv(fmt.Sprintf("decoder.layers.%d", j), c.OutChannels, width, 3)
		}
		j++
		d.Levels = append(d.Levels, lv)
	}
	if s.err != nil {
		return nil, s.err
	}
	d.Prepare(32, 32)
	return d, nil
}

// Prepare readies every convolution for an h×w latent (see Decoder.Prepare).
func (d *TinyDecoder) Prepare(h, w int) {
	d.ConvIn.Prepare(h, w)
	for _, lv := range d.Levels {
		for _, b := range lv.Blocks {
			for _, c := range b.Conv {
				c.Prepare(h, w)
			}
		}
		if lv.Upsample {
			h, w = 2*h, 2*w
		}
		lv.Conv.Prepare(h, w)
	}
}

// convNoBias is a convolution stored without a bias.
func (s *source) convNoBias(name string, cout, cin, k int) *compute.Conv {
	w := s.get(name+".weight", []int{cout, cin, k, k})
	if s.err != nil {
		return nil
	}
	if _, ok := s.byName[name+".bias"]; ok {
		s.err = fmt.Errorf("vae: %s: unexpected tensor %q (this conv has no bias)", s.file, s.byName[name+".bias"].orig)
		return nil
	}
	c, err := compute.NewConv(cout, cin, k, w, nil)
	if err != nil {
		s.err = fmt.Errorf("vae: %s: %s: %w", s.file, name, err)
		return nil
	}
	c.ReleaseWeight()
	return c
}

// inferTinyConfig walks layers.J: conv_in, ReLU, then per level blocks
// (J.conv.0), an upsample (no tensors) and a conv, or blocks and the final
// conv with a bias.
func (s *source) inferTinyConfig() (TinyConfig, error) {
	c := DefaultTinyConfig()
	has := func(n string) bool { _, ok := s.byName[n]; return ok }
	in, ok := s.byName["decoder.layers.0.weight"]
	if !ok || len(in.t.Shape()) != 4 {
		return c, fmt.Errorf("vae: %s: missing tensor for the first conv (decoder.layers.0.weight or 1.weight), needed to infer the TAESD shape", s.file)
	}
	c.LatentChannels = in.t.Shape()[1]
	width := in.t.Shape()[0]
	c.NumDecoderBlocks = nil
	j := 2
	for len(c.NumDecoderBlocks) < 8 {
		n := 0
		for has(fmt.Sprintf("decoder.layers.%d.conv.0.weight", j)) {
			n++
			j++
		}
		c.NumDecoderBlocks = append(c.NumDecoderBlocks, n)
		if last, ok := s.byName[fmt.Sprintf("decoder.layers.%d.weight", j)]; ok {
			if len(last.t.Shape()) == 4 {
				c.OutChannels = last.t.Shape()[0]
			}
			break
		}
		j += 2 // upsample, conv
		if !has(fmt.Sprintf("decoder.layers.%d.weight", j-1)) {
			return c, fmt.Errorf("vae: %s: TAESD layers end unexpectedly at layer %d", s.file, j-1)
		}
	}
	c.DecoderBlockOutChannels = slices.Repeat([]int{width}, len(c.NumDecoderBlocks))
	return c, nil
}
