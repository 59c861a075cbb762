package engine

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"

	"geca/engine/compute"

	"gorgonia.org/tensor"
)

// Model is a GeCA denoiser in float32 for sampling: the module tree (GeCA)
// with its weights under the official state_dict keys (docs/model.md §8),
// and what the fast path needs besides, the packed matrices and the device
// the updates run on.
type Model struct {
	GeCA[float32]

	tensors map[string]*tensor.Dense
	accel   Accelerator // where updates run; nil: the CPU

	packOnce sync.Once
	pw       *packedWeights
}

// packedWeights are the model's matrices packed for the CPU's row-invariant
// products (compute.PackedLinear; docs/numerics.md). The layers whose bias
// is added by the fused kernel after the product are packed without it.
type packedWeights struct {
	tMlp0, tMlp2, yTable0, yTable1 *compute.PackedLinear // conditioning
	adaT, adaF                     *compute.PackedLinear // adaLN modulations
	cellEmb                        *compute.PackedLinear // bias added by EmbedKernel
	q, kv                          *compute.PackedLinear // rows 0…D and D…3D of to_qkv
	out, net0, net3, final         *compute.PackedLinear // biases added after
}

// packed returns the packed weights, packing them on first use (a model that
// runs on an accelerator never needs them).
func (m *Model) packed() *packedWeights {
	m.packOnce.Do(func() {
		with := func(l *Linear[float32]) *compute.PackedLinear { return compute.PackLinear(l.W(), l.B(), l.Out, l.In) }
		without := func(l *Linear[float32]) *compute.PackedLinear { return compute.PackLinear(l.W(), nil, l.Out, l.In) }
		d, qkv := m.Cfg.EmbedDim, m.Transformer.Attn.ToQKV.W()
		m.pw = &packedWeights{
			tMlp0: with(&m.TEmbedder.MLP0), tMlp2: with(&m.TEmbedder.MLP2),
			yTable0: with(&m.YEmbedder.Table0), yTable1: with(&m.YEmbedder.Table1),
			adaT: with(&m.Transformer.AdaLN), adaF: with(&m.FinalLayer.AdaLN),
			cellEmb: without(&m.CellToEmbedding),
			q:       compute.PackLinear(qkv[:d*d], nil, d, d),
			kv:      compute.PackLinear(qkv[d*d:3*d*d], nil, 2*d, d),
			out:     without(&m.Transformer.Attn.ToOut), net0: without(&m.Transformer.FF.Net0),
			net3: without(&m.Transformer.FF.Net3), final: without(&m.FinalLayer.Linear),
		}
	})
	return m.pw
}

// NewModel builds a model from tensors keyed by the official state_dict names.
// Every key must be present with its exact shape, dtype float32 and finite
// values; unexpected keys are an error. The model keeps the given tensors
// (it does not copy them); callers must not modify them afterwards.
func NewModel(cfg Config, tensors map[string]*tensor.Dense) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	specs := Params(cfg)
	var errs []error
	data := make(map[string][]float32, len(specs))
	known := make(map[string]bool, len(specs))
	for _, s := range specs {
		known[s.Key] = true
		t, ok := tensors[s.Key]
		if !ok || t == nil {
			errs = append(errs, fmt.Errorf("missing tensor %s (expected shape %v)", s.Key, s.Shape))
			continue
		}
		d, err := checkTensor(s.Key, t, s.Shape)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		data[s.Key] = d
	}
	var extra []string
	for name := range tensors {
		if !known[name] {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		errs = append(errs, fmt.Errorf("unexpected tensors for %s: %s", cfgName(cfg), strings.Join(extra, ", ")))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("model %s: %w", cfgName(cfg), errors.Join(errs...))
	}
	m := &Model{GeCA: *NewGeCA(cfg, func(p ParamSpec) []float32 { return data[p.Key] }),
		tensors: make(map[string]*tensor.Dense, len(specs))}
	for _, s := range specs {
		m.tensors[s.Key] = tensors[s.Key]
	}
	return m, nil
}

func cfgName(c Config) string {
	if c.Name != "" {
		return c.Name
	}
	return "(custom)"
}

// checkTensor returns the float32 data of t after checking dtype, layout,
// shape and finiteness.
func checkTensor(name string, t *tensor.Dense, shape []int) ([]float32, error) {
	if t.Dtype() != tensor.Float32 {
		return nil, fmt.Errorf("tensor %s has dtype %v, want float32 (expected shape %v)", name, t.Dtype(), shape)
	}
	got := []int(t.Shape())
	if !slices.Equal(got, shape) {
		return nil, fmt.Errorf("tensor %s has shape %v, want %v", name, got, shape)
	}
	if t.IsMaterializable() || t.RequiresIterator() {
		return nil, fmt.Errorf("tensor %s is a non-contiguous view; pass a contiguous tensor of shape %v", name, shape)
	}
	d, ok := t.Data().([]float32)
	n := 1
	for _, s := range shape {
		n *= s
	}
	if !ok || len(d) != n {
		return nil, fmt.Errorf("tensor %s holds %d values, want %d for shape %v", name, len(d), n, shape)
	}
	for i, v := range d {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("tensor %s (shape %v) has non-finite value %v at flat index %d", name, shape, v, i)
		}
	}
	return d, nil
}

// NewRandomModel returns a model with random non-zero weights: matrices
// N(0, std²/fan_in·…) scaled so that activations stay O(1), LayerNorm γ near 1
// and β, biases small. It is for tests and demos; std scales every weight
// (0.5 is a good default; 0 gives 0.5). It fails only on an invalid config.
func NewRandomModel(cfg Config, seed uint64, std float32) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if math.IsNaN(float64(std)) || math.IsInf(float64(std), 0) {
		return nil, fmt.Errorf("random model: std %v is not finite", std)
	}
	if std <= 0 {
		std = 0.5
	}
	r := rand.New(rand.NewPCG(seed, 0x6765636172616e64))
	tensors := make(map[string]*tensor.Dense)
	kinds := Modules(cfg)
	for _, s := range Params(cfg) {
		d := make([]float32, s.Size())
		switch {
		case kinds[s.Module].Kind == KindLayerNorm && !s.IsBias:
			for i := range d {
				d[i] = 1 + 0.1*float32(r.NormFloat64())
			}
		case len(s.Shape) == 2:
			sc := std / float32(math.Sqrt(float64(s.Shape[1])))
			for i := range d {
				d[i] = sc * float32(r.NormFloat64())
			}
		default:
			for i := range d {
				d[i] = 0.1 * std * float32(r.NormFloat64())
			}
		}
		tensors[s.Key] = tensor.New(tensor.WithShape(s.Shape...), tensor.WithBacking(d))
	}
	return NewModel(cfg, tensors)
}

// Tensors returns the model's weights keyed by official name. The tensors are
// the model's own storage: read, do not modify.
func (m *Model) Tensors() map[string]*tensor.Dense {
	out := make(map[string]*tensor.Dense, len(m.tensors))
	for k, v := range m.tensors {
		out[k] = v
	}
	return out
}

// Names returns the official state_dict keys in the official order.
func (m *Model) Names() []string { return ParamNames(m.Cfg) }

// ParamCount returns the number of scalar parameters.
func (m *Model) ParamCount() int {
	n := 0
	for _, t := range m.tensors {
		n += t.Shape().TotalSize()
	}
	return n
}

// PositionalCode is the positional code of config c, (H·W)×D values in
// row-major cell order (docs/model.md §2.2).
func PositionalCode(c Config) []float32 {
	if c.PosCode == PosCode2D {
		return PositionalEncoding2D(c.GridH, c.GridW, c.EmbedDim)
	}
	return PositionalEncoding(c.Cells(), c.EmbedDim)
}

// PositionalEncoding2D is DiT's get_2d_sincos_pos_embed generalised to an
// h×w grid (docs/model.md §2.2): for the cell in row i and column j,
// channels [0, D/4) are sin(j·ω_k), [D/4, D/2) cos(j·ω_k), then the same
// two blocks for i, with ω_k = 10000^(−k/(D/4)). Computed in float64 and
// rounded once, as DiT's numpy code does. dim must be a multiple of 4.
func PositionalEncoding2D(h, w, dim int) []float32 {
	q := dim / 4
	omega := make([]float64, q)
	for k := range omega {
		omega[k] = 1 / math.Pow(10000, float64(k)/float64(q))
	}
	pe := make([]float32, h*w*dim)
	for i := 0; i < h; i++ {
		for j := 0; j < w; j++ {
			row := pe[(i*w+j)*dim : (i*w+j+1)*dim]
			for k, om := range omega {
				row[k] = float32(math.Sin(float64(j) * om))
				row[q+k] = float32(math.Cos(float64(j) * om))
				row[2*q+k] = float32(math.Sin(float64(i) * om))
				row[3*q+k] = float32(math.Cos(float64(i) * om))
			}
		}
	}
	return pe
}

// PositionalEncoding is utils.vit_positional_encoding(n, dim) (docs/model.md §2.2): a
// 1-D sinusoid over the row-major cell index with the odd-channel quirk
// (odd channel d uses its own index in the exponent), computed in float32 as
// the official code does. Returns n×dim values.
func PositionalEncoding(n, dim int) []float32 {
	pe := make([]float32, n*dim)
	k := float32(-math.Log(10000) / float64(dim))
	for d := 0; d < dim; d++ {
		w := float32(math.Exp(float64(float32(d) * k)))
		for p := 0; p < n; p++ {
			a := float64(float32(p) * w)
			if d%2 == 0 {
				pe[p*dim+d] = float32(math.Sin(a))
			} else {
				pe[p*dim+d] = float32(math.Cos(a))
			}
		}
	}
	return pe
}
