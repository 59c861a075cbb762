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

// Linear is torch.nn.Linear: y = x·Wᵀ + b with W of shape (Out, In) as PyTorch
// stores it. Bias is nil for the bias-free QKV projection.
type Linear struct {
	Weight *tensor.Dense // (Out, In)
	Bias   *tensor.Dense // (Out,) or nil
	In     int
	Out    int

	w, b []float32 // backing arrays of Weight and Bias, used by the kernels
}

// W returns the weight matrix (Out×In, row-major) the kernels read.
func (l *Linear) W() []float32 { return l.w }

// B returns the bias (Out) or nil.
func (l *Linear) B() []float32 { return l.b }

// LayerNorm is torch.nn.LayerNorm over the last dimension. Weight and Bias are
// nil for the final layer's non-affine norm.
type LayerNorm struct {
	Weight *tensor.Dense // (Dim,) or nil
	Bias   *tensor.Dense // (Dim,) or nil
	Dim    int
	Eps    float32

	w, b []float32
}

// G returns γ (nil when not affine).
func (l *LayerNorm) G() []float32 { return l.w }

// Beta returns β (nil when not affine).
func (l *LayerNorm) Beta() []float32 { return l.b }

// TimestepEmbedder is `t_embedder` (spec §4.1): sinusoidal features of t,
// cos first, then Linear(256→D), SiLU, Linear(D→D).
type TimestepEmbedder struct {
	Mlp0 Linear // t_embedder.mlp.0
	Mlp2 Linear // t_embedder.mlp.2
}

// TimestepFeatures is the size of the sinusoidal timestep code.
const TimestepFeatures = 256

// LabelEmbedder is `y_embedder` (spec §4.2): two Linears with no activation
// between them, applied to a multi-hot float label.
type LabelEmbedder struct {
	EmbeddingTable0 Linear // y_embedder.embedding_table.0, K → D
	EmbeddingTable1 Linear // y_embedder.embedding_table.1, D → D
}

// Attention is `transformer.layers.0.0`: the attention PreNorm (affine LN,
// eps 1e-5), the bias-free QKV projection and the output projection. The
// attention itself is the 9-slot 3x3 local attention of spec §3 step 8.
type Attention struct {
	Norm  LayerNorm // transformer.layers.0.0.norm
	ToQKV Linear    // transformer.layers.0.0.fn.to_qkv (no bias)
	ToOut Linear    // transformer.layers.0.0.fn.to_out.0
}

// FeedForward is `transformer.layers.0.1`: affine LN then
// Linear, exact GELU, Linear.
type FeedForward struct {
	Norm LayerNorm // transformer.layers.0.1.norm
	Net0 Linear    // transformer.layers.0.1.fn.net.0
	Net3 Linear    // transformer.layers.0.1.fn.net.3
}

// Transformer is the single block with its shared adaLN modulation
// (SiLU then Linear D → 6D: shift/scale/gate for attention, then for the MLP).
type Transformer struct {
	Attn            Attention
	FF              FeedForward
	AdaLNModulation Linear // transformer.adaLN_modulation.1
}

// FinalLayer is `final_layer`: non-affine LN (eps 1e-6), modulated by
// shift/scale from its own adaLN, then Linear D → C_out + C_h.
type FinalLayer struct {
	Linear          Linear // final_layer.linear
	AdaLNModulation Linear // final_layer.adaLN_modulation.1
}

// Model is a GeCA denoiser: the conditioning embedders, the cell embedding and
// the update rule f (spec §3). Weights are float32 tensors named by the
// official state_dict keys (spec §8).
type Model struct {
	Cfg Config

	TEmbedder       TimestepEmbedder // t_embedder
	YEmbedder       LabelEmbedder    // y_embedder
	CellToEmbedding Linear           // cell_to_embedding, cell_dim → D
	Transformer     Transformer      // transformer
	FinalLayer      FinalLayer       // final_layer

	pe      []float32 // (H·W)×D positional code, added after the cell embedding
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
		with := func(l *Linear) *compute.PackedLinear { return compute.PackLinear(l.w, l.b, l.Out, l.In) }
		without := func(l *Linear) *compute.PackedLinear { return compute.PackLinear(l.w, nil, l.Out, l.In) }
		d, qkv := m.Cfg.EmbedDim, m.Transformer.Attn.ToQKV.w
		m.pw = &packedWeights{
			tMlp0: with(&m.TEmbedder.Mlp0), tMlp2: with(&m.TEmbedder.Mlp2),
			yTable0: with(&m.YEmbedder.EmbeddingTable0), yTable1: with(&m.YEmbedder.EmbeddingTable1),
			adaT: with(&m.Transformer.AdaLNModulation), adaF: with(&m.FinalLayer.AdaLNModulation),
			cellEmb: without(&m.CellToEmbedding),
			q:       compute.PackLinear(qkv[:d*d], nil, d, d),
			kv:      compute.PackLinear(qkv[d*d:3*d*d], nil, 2*d, d),
			out:     without(&m.Transformer.Attn.ToOut), net0: without(&m.Transformer.FF.Net0),
			net3: without(&m.Transformer.FF.Net3), final: without(&m.FinalLayer.Linear),
		}
	})
	return m.pw
}

type paramSpec struct {
	name  string
	shape []int
}

// paramSpecs lists every official state_dict key with its shape, in the
// official order (spec §8).
func paramSpecs(c Config) []paramSpec {
	d, k := c.EmbedDim, c.NumClasses
	return []paramSpec{
		{"t_embedder.mlp.0.weight", []int{d, TimestepFeatures}},
		{"t_embedder.mlp.0.bias", []int{d}},
		{"t_embedder.mlp.2.weight", []int{d, d}},
		{"t_embedder.mlp.2.bias", []int{d}},
		{"y_embedder.embedding_table.0.weight", []int{d, k}},
		{"y_embedder.embedding_table.0.bias", []int{d}},
		{"y_embedder.embedding_table.1.weight", []int{d, d}},
		{"y_embedder.embedding_table.1.bias", []int{d}},
		{"cell_to_embedding.weight", []int{d, c.CellDim()}},
		{"cell_to_embedding.bias", []int{d}},
		{"transformer.layers.0.0.norm.weight", []int{d}},
		{"transformer.layers.0.0.norm.bias", []int{d}},
		{"transformer.layers.0.0.fn.to_qkv.weight", []int{3 * d, d}},
		{"transformer.layers.0.0.fn.to_out.0.weight", []int{d, d}},
		{"transformer.layers.0.0.fn.to_out.0.bias", []int{d}},
		{"transformer.layers.0.1.norm.weight", []int{d}},
		{"transformer.layers.0.1.norm.bias", []int{d}},
		{"transformer.layers.0.1.fn.net.0.weight", []int{c.MLPDim, d}},
		{"transformer.layers.0.1.fn.net.0.bias", []int{c.MLPDim}},
		{"transformer.layers.0.1.fn.net.3.weight", []int{d, c.MLPDim}},
		{"transformer.layers.0.1.fn.net.3.bias", []int{d}},
		{"transformer.adaLN_modulation.1.weight", []int{6 * d, d}},
		{"transformer.adaLN_modulation.1.bias", []int{6 * d}},
		{"final_layer.linear.weight", []int{c.UpdateDim(), d}},
		{"final_layer.linear.bias", []int{c.UpdateDim()}},
		{"final_layer.adaLN_modulation.1.weight", []int{2 * d, d}},
		{"final_layer.adaLN_modulation.1.bias", []int{2 * d}},
	}
}

// ParamNames returns the official state_dict keys of a model with config c, in
// the official order.
func ParamNames(c Config) []string {
	specs := paramSpecs(c)
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.name
	}
	return names
}

// ParamShape returns the expected shape of the tensor called name, or false if
// name is not a key of the model.
func ParamShape(c Config, name string) ([]int, bool) {
	for _, s := range paramSpecs(c) {
		if s.name == name {
			return slices.Clone(s.shape), true
		}
	}
	return nil, false
}

// NewModel builds a model from tensors keyed by the official state_dict names.
// Every key must be present with its exact shape, dtype float32 and finite
// values; unexpected keys are an error. The model keeps the given tensors
// (it does not copy them); callers must not modify them afterwards.
func NewModel(cfg Config, tensors map[string]*tensor.Dense) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	specs := paramSpecs(cfg)
	var errs []error
	data := make(map[string][]float32, len(specs))
	known := make(map[string]bool, len(specs))
	for _, s := range specs {
		known[s.name] = true
		t, ok := tensors[s.name]
		if !ok || t == nil {
			errs = append(errs, fmt.Errorf("missing tensor %s (expected shape %v)", s.name, s.shape))
			continue
		}
		d, err := checkTensor(s.name, t, s.shape)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		data[s.name] = d
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
	m := &Model{Cfg: cfg, tensors: make(map[string]*tensor.Dense, len(specs))}
	for _, s := range specs {
		m.tensors[s.name] = tensors[s.name]
	}
	lin := func(l *Linear, prefix string, bias bool) {
		l.Weight = tensors[prefix+".weight"]
		l.w = data[prefix+".weight"]
		sh := l.Weight.Shape()
		l.Out, l.In = sh[0], sh[1]
		if bias {
			l.Bias = tensors[prefix+".bias"]
			l.b = data[prefix+".bias"]
		}
	}
	ln := func(l *LayerNorm, prefix string) {
		l.Weight, l.Bias = tensors[prefix+".weight"], tensors[prefix+".bias"]
		l.w, l.b = data[prefix+".weight"], data[prefix+".bias"]
		l.Dim, l.Eps = cfg.EmbedDim, 1e-5
	}
	lin(&m.TEmbedder.Mlp0, "t_embedder.mlp.0", true)
	lin(&m.TEmbedder.Mlp2, "t_embedder.mlp.2", true)
	lin(&m.YEmbedder.EmbeddingTable0, "y_embedder.embedding_table.0", true)
	lin(&m.YEmbedder.EmbeddingTable1, "y_embedder.embedding_table.1", true)
	lin(&m.CellToEmbedding, "cell_to_embedding", true)
	ln(&m.Transformer.Attn.Norm, "transformer.layers.0.0.norm")
	lin(&m.Transformer.Attn.ToQKV, "transformer.layers.0.0.fn.to_qkv", false)
	lin(&m.Transformer.Attn.ToOut, "transformer.layers.0.0.fn.to_out.0", true)
	ln(&m.Transformer.FF.Norm, "transformer.layers.0.1.norm")
	lin(&m.Transformer.FF.Net0, "transformer.layers.0.1.fn.net.0", true)
	lin(&m.Transformer.FF.Net3, "transformer.layers.0.1.fn.net.3", true)
	lin(&m.Transformer.AdaLNModulation, "transformer.adaLN_modulation.1", true)
	lin(&m.FinalLayer.Linear, "final_layer.linear", true)
	lin(&m.FinalLayer.AdaLNModulation, "final_layer.adaLN_modulation.1", true)
	m.pe = PositionalEncoding(cfg.Cells(), cfg.EmbedDim)
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
	for _, s := range paramSpecs(cfg) {
		n := 1
		for _, v := range s.shape {
			n *= v
		}
		d := make([]float32, n)
		switch {
		case strings.HasSuffix(s.name, "norm.weight"):
			for i := range d {
				d[i] = 1 + 0.1*float32(r.NormFloat64())
			}
		case len(s.shape) == 2:
			sc := std / float32(math.Sqrt(float64(s.shape[1])))
			for i := range d {
				d[i] = sc * float32(r.NormFloat64())
			}
		default:
			for i := range d {
				d[i] = 0.1 * std * float32(r.NormFloat64())
			}
		}
		tensors[s.name] = tensor.New(tensor.WithShape(s.shape...), tensor.WithBacking(d))
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

// PositionalEncoding is utils.vit_positional_encoding(n, dim) (spec §2.4): a
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

// PE returns the model's positional code ((H·W)×D, shared; do not modify).
func (m *Model) PE() []float32 { return m.pe }
