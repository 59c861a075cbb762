package train

import (
	"fmt"
	"math"
	"math/rand/v2"

	"geca/engine"

	"gorgonia.org/tensor"
)

// Param is one trainable tensor, named by its official state_dict key (spec §8),
// with its gradient.
type Param[T Float] struct {
	Name  string
	Shape []int
	W, G  []T
}

// Params holds every weight of a GeCA model. The fields name the layers the way
// the paper's module tree does; List holds the same tensors in the official
// state_dict order.
type Params[T Float] struct {
	Cfg engine.Config

	TEmb0W, TEmb0B, TEmb2W, TEmb2B *Param[T] // t_embedder.mlp.{0,2}
	YEmb0W, YEmb0B, YEmb1W, YEmb1B *Param[T] // y_embedder.embedding_table.{0,1}
	CellW, CellB                   *Param[T] // cell_to_embedding
	LN1G, LN1B                     *Param[T] // transformer.layers.0.0.norm
	QKVW                           *Param[T] // transformer.layers.0.0.fn.to_qkv (no bias)
	OutW, OutB                     *Param[T] // transformer.layers.0.0.fn.to_out.0
	LN2G, LN2B                     *Param[T] // transformer.layers.0.1.norm
	MLP1W, MLP1B                   *Param[T] // transformer.layers.0.1.fn.net.0
	MLP2W, MLP2B                   *Param[T] // transformer.layers.0.1.fn.net.3
	AdaW, AdaB                     *Param[T] // transformer.adaLN_modulation.1
	FinW, FinB                     *Param[T] // final_layer.linear
	FAdaW, FAdaB                   *Param[T] // final_layer.adaLN_modulation.1

	List []*Param[T]
}

// TimeFeatures is the width of the sinusoidal timestep features (spec §4.1).
const TimeFeatures = 256

// NewParams allocates zeroed parameters (and gradients) for cfg.
func NewParams[T Float](cfg engine.Config) (*Params[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	D, K, Cd, Ud, Mlp := cfg.EmbedDim, cfg.NumClasses, cfg.CellDim(), cfg.UpdateDim(), cfg.MLPDim
	p := &Params[T]{Cfg: cfg}
	add := func(name string, shape ...int) *Param[T] {
		n := 1
		for _, s := range shape {
			n *= s
		}
		q := &Param[T]{Name: name, Shape: shape, W: make([]T, n), G: make([]T, n)}
		p.List = append(p.List, q)
		return q
	}
	p.TEmb0W = add("t_embedder.mlp.0.weight", D, TimeFeatures)
	p.TEmb0B = add("t_embedder.mlp.0.bias", D)
	p.TEmb2W = add("t_embedder.mlp.2.weight", D, D)
	p.TEmb2B = add("t_embedder.mlp.2.bias", D)
	p.YEmb0W = add("y_embedder.embedding_table.0.weight", D, K)
	p.YEmb0B = add("y_embedder.embedding_table.0.bias", D)
	p.YEmb1W = add("y_embedder.embedding_table.1.weight", D, D)
	p.YEmb1B = add("y_embedder.embedding_table.1.bias", D)
	p.CellW = add("cell_to_embedding.weight", D, Cd)
	p.CellB = add("cell_to_embedding.bias", D)
	p.LN1G = add("transformer.layers.0.0.norm.weight", D)
	p.LN1B = add("transformer.layers.0.0.norm.bias", D)
	p.QKVW = add("transformer.layers.0.0.fn.to_qkv.weight", 3*D, D)
	p.OutW = add("transformer.layers.0.0.fn.to_out.0.weight", D, D)
	p.OutB = add("transformer.layers.0.0.fn.to_out.0.bias", D)
	p.LN2G = add("transformer.layers.0.1.norm.weight", D)
	p.LN2B = add("transformer.layers.0.1.norm.bias", D)
	p.MLP1W = add("transformer.layers.0.1.fn.net.0.weight", Mlp, D)
	p.MLP1B = add("transformer.layers.0.1.fn.net.0.bias", Mlp)
	p.MLP2W = add("transformer.layers.0.1.fn.net.3.weight", D, Mlp)
	p.MLP2B = add("transformer.layers.0.1.fn.net.3.bias", D)
	p.AdaW = add("transformer.adaLN_modulation.1.weight", 6*D, D)
	p.AdaB = add("transformer.adaLN_modulation.1.bias", 6*D)
	p.FinW = add("final_layer.linear.weight", Ud, D)
	p.FinB = add("final_layer.linear.bias", Ud)
	p.FAdaW = add("final_layer.adaLN_modulation.1.weight", 2*D, D)
	p.FAdaB = add("final_layer.adaLN_modulation.1.bias", 2*D)
	return p, nil
}

// Count is the number of scalar parameters.
func (p *Params[T]) Count() int {
	n := 0
	for _, q := range p.List {
		n += len(q.W)
	}
	return n
}

// ZeroGrad clears every gradient.
func (p *Params[T]) ZeroGrad() {
	for _, q := range p.List {
		zero(q.G)
	}
}

// InitOfficial initialises the weights as GeCA.initialize_weights does (spec
// §4.4): Xavier-uniform Linear weights with zero bias, N(0, 0.02²) for the
// timestep MLP, zero adaLN modulations and final linear, LayerNorm γ = 1, β = 0.
// With the final layer at zero the first update is the identity, so training
// starts from "output = seed".
func (p *Params[T]) InitOfficial(seed uint64) {
	r := rand.New(rand.NewPCG(seed, 0x6765636174726169))
	xavier := func(q *Param[T]) {
		fo, fi := q.Shape[0], q.Shape[1]
		a := math.Sqrt(6 / float64(fi+fo))
		for i := range q.W {
			q.W[i] = T((2*r.Float64() - 1) * a)
		}
	}
	for _, q := range p.List {
		zero(q.W)
	}
	for i := range p.TEmb0W.W {
		p.TEmb0W.W[i] = T(0.02 * r.NormFloat64())
	}
	for i := range p.TEmb2W.W {
		p.TEmb2W.W[i] = T(0.02 * r.NormFloat64())
	}
	for _, q := range []*Param[T]{p.YEmb0W, p.YEmb1W, p.CellW, p.QKVW, p.OutW, p.MLP1W, p.MLP2W} {
		xavier(q)
	}
	for _, q := range []*Param[T]{p.LN1G, p.LN2G} {
		for i := range q.W {
			q.W[i] = 1
		}
	}
}

// InitRandom fills every weight with N(0, std²) (LayerNorm γ around 1), so that
// every op contributes to the output: what gradient checks need.
func (p *Params[T]) InitRandom(seed uint64, std float64) {
	r := rand.New(rand.NewPCG(seed, 0x72616e646f6d))
	for _, q := range p.List {
		for i := range q.W {
			q.W[i] = T(std * r.NormFloat64())
		}
	}
	for _, q := range []*Param[T]{p.LN1G, p.LN2G} {
		for i := range q.W {
			q.W[i] += 1
		}
	}
}

// CopyFrom copies weights of the same config, converting the element type.
func CopyParams[T, U Float](dst *Params[T], src *Params[U]) {
	for i, q := range src.List {
		d := dst.List[i].W
		for j, v := range q.W {
			d[j] = T(v)
		}
	}
}

// Tensors returns the weights as float32 tensors keyed by official name, the
// form engine.NewModel and ckpt.SaveSafetensors take, and the names in order.
func (p *Params[T]) Tensors() (map[string]*tensor.Dense, []string) {
	m := make(map[string]*tensor.Dense, len(p.List))
	names := make([]string, 0, len(p.List))
	for _, q := range p.List {
		data := make([]float32, len(q.W))
		for i, v := range q.W {
			data[i] = float32(v)
		}
		m[q.Name] = tensor.New(tensor.WithShape(q.Shape...), tensor.WithBacking(data))
		names = append(names, q.Name)
	}
	return m, names
}

// SetTensors loads weights from tensors keyed by official name (with an
// optional prefix), checking that every tensor is present with the right shape
// and finite values.
func (p *Params[T]) SetTensors(ts map[string]*tensor.Dense, prefix string) error {
	for _, q := range p.List {
		t, ok := ts[prefix+q.Name]
		if !ok {
			return fmt.Errorf("missing tensor %q", prefix+q.Name)
		}
		shape := t.Shape()
		if len(shape) != len(q.Shape) {
			return fmt.Errorf("tensor %q has shape %v, want %v", prefix+q.Name, []int(shape), q.Shape)
		}
		for i := range shape {
			if shape[i] != q.Shape[i] {
				return fmt.Errorf("tensor %q has shape %v, want %v", prefix+q.Name, []int(shape), q.Shape)
			}
		}
		data, ok := t.Data().([]float32)
		if !ok {
			return fmt.Errorf("tensor %q is %v, want float32", prefix+q.Name, t.Dtype())
		}
		if len(data) != len(q.W) {
			return fmt.Errorf("tensor %q has %d values, want %d", prefix+q.Name, len(data), len(q.W))
		}
		for i, v := range data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("tensor %q has a non-finite value at %d", prefix+q.Name, i)
			}
			q.W[i] = T(v)
		}
	}
	return nil
}
