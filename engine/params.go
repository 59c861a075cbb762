package engine

import "slices"

// The description of GeCA's parameters: every module of the official module
// tree, its state-dict key, its sizes (from the Config), its initialisation
// and its role. It is the one place these are written: the engine's Model,
// the trainer's parameters and gradients, the checkpoint loader's checks and
// the GPU backend's buffers are all made from it (docs/model.md §8).

// Module is one leaf module of the tree, in state-dict order. Its Go name is
// the path of the module in GeCA (TransformerFFNet0 is
// GeCA.Transformer.FF.Net0).
type Module int

const (
	TEmbedderMLP0        Module = iota // t_embedder.mlp.0
	TEmbedderMLP2                      // t_embedder.mlp.2
	YEmbedderTable0                    // y_embedder.embedding_table.0
	YEmbedderTable1                    // y_embedder.embedding_table.1
	CellToEmbedding                    // cell_to_embedding
	TransformerAttnNorm                // transformer.layers.0.0.norm
	TransformerAttnToQKV               // transformer.layers.0.0.fn.to_qkv
	TransformerAttnToOut               // transformer.layers.0.0.fn.to_out.0
	TransformerFFNorm                  // transformer.layers.0.1.norm
	TransformerFFNet0                  // transformer.layers.0.1.fn.net.0
	TransformerFFNet3                  // transformer.layers.0.1.fn.net.3
	TransformerAdaLN                   // transformer.adaLN_modulation.1
	FinalLayerNorm                     // final_layer.norm_final (no parameters)
	FinalLayerLinear                   // final_layer.linear
	FinalLayerAdaLN                    // final_layer.adaLN_modulation.1
	NumModules
)

// ModuleKind is what a module computes.
type ModuleKind int

const (
	// KindLinear is torch.nn.Linear: y = x·Wᵀ + b, W stored as Out rows of
	// In values.
	KindLinear ModuleKind = iota
	// KindLayerNorm is torch.nn.LayerNorm over the last dimension (In =
	// Out), with the population variance.
	KindLayerNorm
)

// Init is how the official initialize_weights sets a module's weight
// (docs/model.md §8); biases start at zero, LayerNorm weights at one.
type Init int

const (
	InitXavier    Init = iota // Xavier-uniform
	InitNormal002             // N(0, 0.02²), the timestep MLP
	InitZero                  // zero: both modulations and the final linear
	InitLayerNorm             // weight one, bias zero
)

// ModuleSpec describes one module for a given Config.
type ModuleSpec struct {
	Module  Module
	Key     string // its prefix in the state dict
	Kind    ModuleKind
	In, Out int     // a Linear's sizes; a LayerNorm's width (In = Out)
	Bias    bool    // a Linear with a bias; a LayerNorm with weight and bias
	Eps     float64 // a LayerNorm's ε
	Init    Init
	Role    string // what it computes, with the section of docs/model.md
}

// Chunks of the block's adaLN modulation (docs/model.md §3 step 3): the
// output of transformer.adaLN_modulation.1 is BlockChunks vectors of D, in
// this order. Every backend reads them by these names.
const (
	ShiftAttn   = iota // shift of the attention's input (shift_msa)
	ScaleAttn          // scale of the attention's input (scale_msa)
	GateAttn           // gate of the attention's residual (gate_msa)
	ShiftMLP           // shift of the MLP's input
	ScaleMLP           // scale of the MLP's input
	GateMLP            // gate of the MLP's residual
	BlockChunks        // chunks of the block's modulation
)

// Chunks of the final layer's modulation (docs/model.md §3 step 9).
const (
	FinalShift  = iota // shift of the final LayerNorm's output
	FinalScale         // scale of the final LayerNorm's output
	FinalChunks        // chunks of the final layer's modulation
)

// The ε of the LayerNorms (docs/model.md §3 steps 4, 8, 9).
const (
	BlockNormEps = 1e-5 // LN₁ and LN₂ (PyTorch's default)
	FinalNormEps = 1e-6 // the final layer's LN_f
)

// TimestepFeatures is the size of the sinusoidal timestep code (docs/model.md
// §4.1).
const TimestepFeatures = 256

// moduleKeys name each module in the official tree and give the state-dict
// keys of its weight and bias ("": it has none). Grep for a key lands here.
var moduleKeys = [NumModules]struct{ name, weight, bias string }{
	TEmbedderMLP0:        {"t_embedder.mlp.0", "t_embedder.mlp.0.weight", "t_embedder.mlp.0.bias"},
	TEmbedderMLP2:        {"t_embedder.mlp.2", "t_embedder.mlp.2.weight", "t_embedder.mlp.2.bias"},
	YEmbedderTable0:      {"y_embedder.embedding_table.0", "y_embedder.embedding_table.0.weight", "y_embedder.embedding_table.0.bias"},
	YEmbedderTable1:      {"y_embedder.embedding_table.1", "y_embedder.embedding_table.1.weight", "y_embedder.embedding_table.1.bias"},
	CellToEmbedding:      {"cell_to_embedding", "cell_to_embedding.weight", "cell_to_embedding.bias"},
	TransformerAttnNorm:  {"transformer.layers.0.0.norm", "transformer.layers.0.0.norm.weight", "transformer.layers.0.0.norm.bias"},
	TransformerAttnToQKV: {"transformer.layers.0.0.fn.to_qkv", "transformer.layers.0.0.fn.to_qkv.weight", ""},
	TransformerAttnToOut: {"transformer.layers.0.0.fn.to_out.0", "transformer.layers.0.0.fn.to_out.0.weight", "transformer.layers.0.0.fn.to_out.0.bias"},
	TransformerFFNorm:    {"transformer.layers.0.1.norm", "transformer.layers.0.1.norm.weight", "transformer.layers.0.1.norm.bias"},
	TransformerFFNet0:    {"transformer.layers.0.1.fn.net.0", "transformer.layers.0.1.fn.net.0.weight", "transformer.layers.0.1.fn.net.0.bias"},
	TransformerFFNet3:    {"transformer.layers.0.1.fn.net.3", "transformer.layers.0.1.fn.net.3.weight", "transformer.layers.0.1.fn.net.3.bias"},
	TransformerAdaLN:     {"transformer.adaLN_modulation.1", "transformer.adaLN_modulation.1.weight", "transformer.adaLN_modulation.1.bias"},
	FinalLayerNorm:       {"final_layer.norm_final", "", ""},
	FinalLayerLinear:     {"final_layer.linear", "final_layer.linear.weight", "final_layer.linear.bias"},
	FinalLayerAdaLN:      {"final_layer.adaLN_modulation.1", "final_layer.adaLN_modulation.1.weight", "final_layer.adaLN_modulation.1.bias"},
}

// Key is the module's name in the official tree (the prefix of its keys).
func (m Module) Key() string { return moduleKeys[m].name }

// InUpdate reports whether the module computes in every cell update; the
// others (the timestep and label embedders) compute the conditioning, once
// per denoiser call.
func (m Module) InUpdate() bool { return m >= CellToEmbedding }

// WeightKey is the state-dict key of the module's weight ("": none).
func (m Module) WeightKey() string { return moduleKeys[m].weight }

// BiasKey is the state-dict key of the module's bias ("": none).
func (m Module) BiasKey() string { return moduleKeys[m].bias }

// Modules describes every module of a model with config c, in state-dict
// order.
func Modules(c Config) []ModuleSpec {
	d, mlp := c.EmbedDim, c.MLPDim
	lin := func(m Module, in, out int, init Init, role string) ModuleSpec {
		return ModuleSpec{Module: m, Key: m.Key(), Kind: KindLinear, In: in, Out: out, Bias: m.BiasKey() != "", Init: init, Role: role}
	}
	norm := func(m Module, eps float64, role string) ModuleSpec {
		return ModuleSpec{Module: m, Key: m.Key(), Kind: KindLayerNorm, In: d, Out: d, Bias: m.WeightKey() != "", Eps: eps, Init: InitLayerNorm, Role: role}
	}
	return []ModuleSpec{
		lin(TEmbedderMLP0, TimestepFeatures, d, InitNormal002, "timestep MLP, first layer: the sinusoidal features of t to D, before SiLU (§4.1)"),
		lin(TEmbedderMLP2, d, d, InitNormal002, "timestep MLP, second layer: temb (§4.1)"),
		lin(YEmbedderTable0, c.NumClasses, d, InitXavier, "label embedding, first layer: the multi-hot label to D (§4.2)"),
		lin(YEmbedderTable1, d, d, InitXavier, "label embedding, second layer, no activation before it: yemb (§4.2)"),
		lin(CellToEmbedding, c.CellDim(), d, InitXavier, "cell embedding: a cell's channels to D (§3 step 1)"),
		norm(TransformerAttnNorm, BlockNormEps, "LN₁, the attention's input norm (§3 step 4)"),
		lin(TransformerAttnToQKV, d, 3*d, InitXavier, "queries, keys and values, no bias (§3 step 5)"),
		lin(TransformerAttnToOut, d, d, InitXavier, "the attention's output projection (§3 step 7)"),
		norm(TransformerFFNorm, BlockNormEps, "LN₂, the MLP's input norm (§3 step 8)"),
		lin(TransformerFFNet0, d, mlp, InitXavier, "MLP, first layer, before the exact GELU (§3 step 8)"),
		lin(TransformerFFNet3, mlp, d, InitXavier, "MLP, second layer (§3 step 8)"),
		lin(TransformerAdaLN, d, BlockChunks*d, InitZero, "the block's modulation from SiLU(c): six chunks (§3 step 3)"),
		norm(FinalLayerNorm, FinalNormEps, "LN_f, no weight or bias (§3 step 9)"),
		lin(FinalLayerLinear, d, c.UpdateDim(), InitZero, "the update of C_out and C_h (§3 step 9)"),
		lin(FinalLayerAdaLN, d, FinalChunks*d, InitZero, "the final layer's modulation from SiLU(c): shift, scale (§3 step 9)"),
	}
}

// ParamSpec is one tensor of the state dict.
type ParamSpec struct {
	Key    string
	Shape  []int
	Module Module
	IsBias bool // the module's bias (a LayerNorm's β), else its weight (γ)
	Index  int  // its position in the state dict
}

// Size is the number of values of the tensor.
func (p ParamSpec) Size() int {
	n := 1
	for _, s := range p.Shape {
		n *= s
	}
	return n
}

// Params lists every tensor of a model with config c, in the official
// state-dict order (27 of them).
func Params(c Config) []ParamSpec {
	var out []ParamSpec
	for _, m := range Modules(c) {
		switch {
		case m.Kind == KindLinear:
			out = append(out, ParamSpec{Key: m.Module.WeightKey(), Shape: []int{m.Out, m.In}, Module: m.Module})
			if m.Bias {
				out = append(out, ParamSpec{Key: m.Module.BiasKey(), Shape: []int{m.Out}, Module: m.Module, IsBias: true})
			}
		case m.Bias: // an affine LayerNorm
			out = append(out, ParamSpec{Key: m.Module.WeightKey(), Shape: []int{m.Out}, Module: m.Module},
				ParamSpec{Key: m.Module.BiasKey(), Shape: []int{m.Out}, Module: m.Module, IsBias: true})
		}
	}
	for i := range out {
		out[i].Index = i
	}
	return out
}

// ParamNames returns the official state_dict keys of a model with config c, in
// the official order.
func ParamNames(c Config) []string {
	specs := Params(c)
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Key
	}
	return names
}

// ParamShape returns the expected shape of the tensor called name, or false if
// name is not a key of the model.
func ParamShape(c Config, name string) ([]int, bool) {
	for _, s := range Params(c) {
		if s.Key == name {
			return slices.Clone(s.Shape), true
		}
	}
	return nil, false
}
