package ckpt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"geca/engine"
)

// The tensors whose shapes fix the model sizes (engine.Modules says each
// module's shape; docs/model.md §8):
//
//	the timestep MLP's first weight     (D, 256)            → embed_dim D
//	the label embedding's first weight  (D, K)              → num_classes K
//	the cell embedding's weight         (D, C_in+C_out+C_h) → cell_dim
//	the final linear's weight           (C_out+C_h, D)      → update_dim
//	the MLP's first weight              (mlp_dim, D)        → mlp_dim
//
// with C_out = 2·C_in, so C_in = cell_dim − update_dim and C_h = update_dim − 2·C_in.
// The number of heads is not in any shape: to_qkv is (3·heads·head_dim, D)
// and the official code sets head_dim = D / heads, so it is (3·D, D) for
// every head count. Heads come from the preset named in args.model (GeCA-S:
// 12, GeCA-XS: 6), from Options.Heads, from an args "heads" entry, or, failing
// those, from the official head size of 64 (heads = D/64) when it divides D.
// The grid is not in any shape either (positional codes are computed, not
// learned): it is args.image_size/8, or 32 (256 px) without args.
var (
	keyTEmb  = engine.TEmbedderMLP0.WeightKey()
	keyYEmb  = engine.YEmbedderTable0.WeightKey()
	keyCell  = engine.CellToEmbedding.WeightKey()
	keyFinal = engine.FinalLayerLinear.WeightKey()
	keyMLP   = engine.TransformerFFNet0.WeightKey()
)

// officialHeadDim is the head size of both registered models.
const officialHeadDim = 64

// Config returns the engine configuration the checkpoint implies. Our own
// safetensors files carry it in the "geca.config" metadata; for the others it
// is derived from the training args and the tensor shapes, and an error says
// where they disagree.
func (c *Checkpoint) Config() (engine.Config, error) {
	cfg, err := c.config()
	if err != nil {
		return engine.Config{}, fmt.Errorf("%s: %w", c.Path, err)
	}
	return cfg, nil
}

// ConfigFromMeta returns the engine.Config that the metadata of one of geca's
// own files keeps under MetaConfig, decoded strictly (an unknown field is an
// error) and validated; ok is false when the metadata has none.
func ConfigFromMeta(meta map[string]string) (cfg engine.Config, ok bool, err error) {
	s, ok := meta[MetaConfig]
	if !ok {
		return cfg, false, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, true, fmt.Errorf("metadata %s is not an engine config: %w", MetaConfig, err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, true, fmt.Errorf("metadata %s: %w", MetaConfig, err)
	}
	return cfg, true, nil
}

func (c *Checkpoint) config() (engine.Config, error) {
	if cfg, ok, err := ConfigFromMeta(c.Meta); ok {
		if err != nil {
			return cfg, err
		}
		if c.heads != 0 && c.heads != cfg.Heads {
			return cfg, fmt.Errorf("heads %d asked for, but the file's config says %d", c.heads, cfg.Heads)
		}
		return cfg, c.checkShapes(cfg, "the config in the file's metadata")
	}

	shape := func(name string, rank int) ([]int, error) {
		t, ok := c.Tensors[name]
		if !ok {
			return nil, fmt.Errorf("not a GeCA state_dict: the %s weights have no %s", c.Weights, name)
		}
		s := []int(t.Shape())
		if len(s) != rank {
			return nil, fmt.Errorf("%s has shape %v, want %d dimensions", name, s, rank)
		}
		return s, nil
	}
	var sh [5][]int
	for i, k := range []string{keyTEmb, keyYEmb, keyCell, keyFinal, keyMLP} {
		s, err := shape(k, 2)
		if err != nil {
			return engine.Config{}, err
		}
		sh[i] = s
	}
	d, k, cellDim, updDim, mlp := sh[0][0], sh[1][1], sh[2][1], sh[3][0], sh[4][0]
	cin := cellDim - updDim
	ch := updDim - 2*cin
	if cin < 1 || ch < 0 {
		return engine.Config{}, fmt.Errorf("%s %v and %s %v do not fit a cell of C_in + 2·C_in + C_h channels", keyCell, sh[2], keyFinal, sh[3])
	}
	cfg := engine.Config{Name: "custom", GridH: 32, GridW: 32, InChannels: cin, HiddenChannels: ch, EmbedDim: d,
		MLPDim: mlp, NumClasses: k, M: 12, UpdateRate: 0.5, Latent: true}
	from := fmt.Sprintf("the %s tensors", c.Weights)

	var errs []error
	disagree := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	args := c.Args
	heads := 0 // from the file
	if name, ok := args["model"].(string); ok && name != "" {
		cfg.Name = name
		if p, err := engine.Preset(name, k); err == nil {
			cfg.Name, heads, cfg.M = p.Name, p.Heads, p.M
			if p.EmbedDim != d {
				disagree("args.model %s implies embed_dim %d, but %s have %d (%s %v)", p.Name, p.EmbedDim, from, d, keyTEmb, sh[0])
			}
			if p.MLPDim != mlp {
				disagree("args.model %s implies mlp_dim %d, but %s have %d (%s %v)", p.Name, p.MLPDim, from, mlp, keyMLP, sh[4])
			}
			if p.HiddenChannels != ch {
				disagree("args.model %s implies %d hidden channels, but %s have %d (%s %v, %s %v)", p.Name, p.HiddenChannels, from, ch, keyCell, sh[2], keyFinal, sh[3])
			}
		}
	}
	if v, ok, err := argInt(args, "num_classes"); err != nil {
		errs = append(errs, err)
	} else if ok && v != k {
		disagree("args.num_classes is %d, but %s have %d classes (%s %v)", v, from, k, keyYEmb, sh[1])
	}
	if v, ok, err := argInt(args, "in_channels"); err != nil {
		errs = append(errs, err)
	} else if ok && v != cin {
		disagree("args.in_channels is %d, but %s have %d input channels (%s %v, %s %v)", v, from, cin, keyCell, sh[2], keyFinal, sh[3])
	}
	imageSpace, _ := args["image_space"].(bool)
	if v, ok, err := argInt(args, "image_size"); err != nil {
		errs = append(errs, err)
	} else if ok {
		switch {
		case imageSpace:
			cfg.GridH, cfg.GridW, cfg.Latent = v, v, false
		case v%8 != 0 || v <= 0:
			disagree("args.image_size %d is not a positive multiple of 8 (the VAE's downsampling)", v)
		default:
			cfg.GridH, cfg.GridW = v/8, v/8
		}
	}
	for _, key := range []string{"heads", "num_heads"} {
		v, ok, err := argInt(args, key)
		if err != nil {
			errs = append(errs, err)
		} else if ok && heads == 0 {
			heads = v
		} else if ok && v != heads {
			disagree("args.%s is %d, but args.model %s has %d heads", key, v, cfg.Name, heads)
		}
	}
	switch {
	case c.heads != 0 && heads != 0 && c.heads != heads:
		disagree("heads %d asked for, but the checkpoint says %d", c.heads, heads)
	case c.heads != 0:
		cfg.Heads = c.heads
	case heads != 0:
		cfg.Heads = heads
	case d%officialHeadDim == 0:
		cfg.Heads = d / officialHeadDim
	default:
		disagree("cannot tell the number of attention heads: tensor shapes fix only embed_dim %d = heads × head_dim "+
			"(to_qkv is (3·%d, %d) for any head count), and the checkpoint names no preset; give the heads explicitly", d, d, d)
	}
	if len(errs) > 0 {
		return cfg, errors.Join(errs...)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, c.checkShapes(cfg, "the derived config")
}

// checkShapes compares every official tensor present with the shape cfg gives it.
func (c *Checkpoint) checkShapes(cfg engine.Config, what string) error {
	var errs []error
	for _, p := range engine.Params(cfg) {
		t, ok := c.Tensors[p.Key]
		if !ok {
			continue
		}
		if got := []int(t.Shape()); !slices.Equal(got, p.Shape) {
			errs = append(errs, fmt.Errorf("%s is %v, but %s (%s) implies %v", p.Key, got, what, cfgDesc(cfg), p.Shape))
		}
	}
	return errors.Join(errs...)
}

func cfgDesc(c engine.Config) string {
	return fmt.Sprintf("%s: D=%d, heads=%d, mlp=%d, C_in=%d, C_h=%d, K=%d", c.Name, c.EmbedDim, c.Heads, c.MLPDim, c.InChannels, c.HiddenChannels, c.NumClasses)
}

// argInt reads an integer training argument; absent or None is (0, false).
func argInt(args map[string]any, key string) (int, bool, error) {
	v, ok := args[key]
	if !ok || v == nil {
		return 0, false, nil
	}
	switch x := v.(type) {
	case int:
		return x, true, nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<31 {
			return int(x), true, nil
		}
	case json.Number:
		if i, err := x.Int64(); err == nil && i >= math.MinInt32 && i <= math.MaxInt32 {
			return int(i), true, nil
		}
	}
	return 0, false, fmt.Errorf("args.%s is %v, not an integer", key, v)
}

// ArgsJSON encodes the training arguments for the "geca.args" metadata
// (non-finite floats become strings, which JSON cannot hold).
func (c *Checkpoint) ArgsJSON() (string, error) {
	b, err := json.Marshal(jsonSafe(c.Args))
	return string(b), err
}

func jsonSafe(v any) any {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Sprint(x)
		}
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = jsonSafe(x[i])
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonSafe(e)
		}
		return out
	}
	return v
}

// decodeArgsJSON reads "geca.args": numbers that are integers become int.
func decodeArgsJSON(s string) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return fromJSON(m).(map[string]any), nil
}

func fromJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return int(i)
		}
		f, _ := x.Float64()
		return f
	case []any:
		for i := range x {
			x[i] = fromJSON(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = fromJSON(x[k])
		}
	}
	return v
}
