package train

import (
	"fmt"
	"math"
	"math/rand/v2"

	"geca/engine"

	"gorgonia.org/tensor"
)

// Params holds every weight of a GeCA model being trained, with its
// gradient: the engine's module tree (engine.GeCA, made from the engine's
// description of the parameters), so that the trainer names every tensor as
// the engine and the official code do. List holds the tensors in state-dict
// order.
type Params[T Float] struct {
	engine.GeCA[T]
}

// Param is one trainable tensor with its gradient.
type Param[T Float] = engine.Param[T]

// NewParams allocates zeroed parameters (and gradients) for cfg.
func NewParams[T Float](cfg engine.Config) (*Params[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Params[T]{GeCA: *engine.NewGeCA(cfg, func(s engine.ParamSpec) []T { return make([]T, s.Size()) })}
	for _, q := range p.List {
		q.G = make([]T, len(q.W))
	}
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

// InitOfficial initialises the weights as GeCA.initialize_weights does
// (docs/model.md §8), module by module as the engine's description says
// (engine.Init): Xavier-uniform Linear weights with zero bias, N(0, 0.02²)
// for the timestep MLP, zero adaLN modulations and final linear, LayerNorm
// γ = 1, β = 0. With the final layer at zero the first update is the
// identity, so training starts from "output = seed".
func (p *Params[T]) InitOfficial(seed uint64) {
	r := rand.New(rand.NewPCG(seed, 0x6765636174726169))
	mods := engine.Modules(p.Cfg)
	for _, q := range p.List {
		zero(q.W)
		if q.IsBias {
			continue
		}
		switch mods[q.Module].Init {
		case engine.InitNormal002:
			for i := range q.W {
				q.W[i] = T(0.02 * r.NormFloat64())
			}
		case engine.InitXavier:
			fo, fi := q.Shape[0], q.Shape[1]
			a := math.Sqrt(6 / float64(fi+fo))
			for i := range q.W {
				q.W[i] = T((2*r.Float64() - 1) * a)
			}
		case engine.InitLayerNorm:
			for i := range q.W {
				q.W[i] = 1
			}
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
	for _, n := range []*engine.LayerNorm[T]{&p.Transformer.Attn.Norm, &p.Transformer.FF.Norm} {
		for i := range n.Weight.W {
			n.Weight.W[i] += 1
		}
	}
}

// CopyParams copies weights of the same config, converting the element type.
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
		m[q.Key] = tensor.New(tensor.WithShape(q.Shape...), tensor.WithBacking(data))
		names = append(names, q.Key)
	}
	return m, names
}

// SetTensors loads weights from tensors keyed by official name (with an
// optional prefix), checking that every tensor is present with the right shape
// and finite values.
func (p *Params[T]) SetTensors(ts map[string]*tensor.Dense, prefix string) error {
	for _, q := range p.List {
		t, ok := ts[prefix+q.Key]
		if !ok {
			return fmt.Errorf("missing tensor %q", prefix+q.Key)
		}
		shape := t.Shape()
		if len(shape) != len(q.Shape) {
			return fmt.Errorf("tensor %q has shape %v, want %v", prefix+q.Key, []int(shape), q.Shape)
		}
		for i := range shape {
			if shape[i] != q.Shape[i] {
				return fmt.Errorf("tensor %q has shape %v, want %v", prefix+q.Key, []int(shape), q.Shape)
			}
		}
		data, ok := t.Data().([]float32)
		if !ok {
			return fmt.Errorf("tensor %q is %v, want float32", prefix+q.Key, t.Dtype())
		}
		if len(data) != len(q.W) {
			return fmt.Errorf("tensor %q has %d values, want %d", prefix+q.Key, len(data), len(q.W))
		}
		for i, v := range data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("tensor %q has a non-finite value at %d", prefix+q.Key, i)
			}
			q.W[i] = T(v)
		}
	}
	return nil
}
