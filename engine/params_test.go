package engine

import (
	"slices"
	"testing"

	"geca/engine/compute"
)

// descriptionConfigs are the sizes the description is checked at.
func descriptionConfigs(t *testing.T) map[string]Config {
	t.Helper()
	s, err := Preset("GeCA-S", 11)
	if err != nil {
		t.Fatal(err)
	}
	xs, err := Preset("GeCA-XS", 3)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]Config{"GeCA-S": s, "GeCA-XS": xs, "tiny": tinyConfig()}
}

// TestDescription: the description itself is consistent: 27 tensors in
// state-dict order, each key its module's name plus .weight or .bias, each
// shape the module's sizes.
func TestDescription(t *testing.T) {
	for name, cfg := range descriptionConfigs(t) {
		t.Run(name, func(t *testing.T) {
			mods := Modules(cfg)
			if len(mods) != int(NumModules) {
				t.Fatalf("%d modules, want %d", len(mods), NumModules)
			}
			params := Params(cfg)
			if len(params) != 27 {
				t.Fatalf("%d tensors, want 27", len(params))
			}
			for i, p := range params {
				m := mods[p.Module]
				if m.Module != p.Module || p.Index != i {
					t.Fatalf("%s: module %d, index %d", p.Key, p.Module, p.Index)
				}
				part, want := ".weight", []int{m.Out, m.In}
				if p.IsBias {
					part, want = ".bias", []int{m.Out}
				} else if m.Kind == KindLayerNorm {
					want = []int{m.Out}
				}
				if p.Key != m.Key+part {
					t.Errorf("tensor %d is %s, want %s%s", i, p.Key, m.Key, part)
				}
				if !slices.Equal(p.Shape, want) {
					t.Errorf("%s has shape %v, want %v", p.Key, p.Shape, want)
				}
				if sh, ok := ParamShape(cfg, p.Key); !ok || !slices.Equal(sh, p.Shape) {
					t.Errorf("ParamShape(%s) = %v, %v", p.Key, sh, ok)
				}
			}
			if mods[TransformerAdaLN].Out != BlockChunks*cfg.EmbedDim || mods[FinalLayerAdaLN].Out != FinalChunks*cfg.EmbedDim {
				t.Errorf("the modulations are not BlockChunks·D and FinalChunks·D wide")
			}
		})
	}
}

// TestModelFollowsDescription: the CPU engine's model holds every tensor of
// the description under its key with its shape, its module tree uses each
// with the module's sizes, and its packed matrices (the fast path) have
// those sizes too.
func TestModelFollowsDescription(t *testing.T) {
	for name, cfg := range descriptionConfigs(t) {
		t.Run(name, func(t *testing.T) {
			m, err := NewRandomModel(cfg, 1, 0.5)
			if err != nil {
				t.Fatal(err)
			}
			ts := m.Tensors()
			if len(ts) != len(Params(cfg)) || !slices.Equal(m.Names(), ParamNames(cfg)) {
				t.Fatalf("model has %d tensors %v, description %v", len(ts), m.Names(), ParamNames(cfg))
			}
			for i, p := range Params(cfg) {
				if got := []int(ts[p.Key].Shape()); !slices.Equal(got, p.Shape) {
					t.Errorf("%s has shape %v in the model, %v in the description", p.Key, got, p.Shape)
				}
				if q := m.List[i]; q.Key != p.Key || !slices.Equal(q.Shape, p.Shape) || len(q.W) != p.Size() {
					t.Errorf("tree tensor %d is %s %v (%d values), description %s %v", i, q.Key, q.Shape, len(q.W), p.Key, p.Shape)
				}
			}
			for _, spec := range Modules(cfg) {
				switch spec.Kind {
				case KindLinear:
					l := m.Linear(spec.Module)
					if l.In != spec.In || l.Out != spec.Out || l.Weight.Key != spec.Module.WeightKey() || (l.Bias != nil) != spec.Bias {
						t.Errorf("%s: Linear(%d→%d) with %s, description (%d→%d) %s", spec.Key, l.In, l.Out, l.Weight.Key, spec.In, spec.Out, spec.Module.WeightKey())
					}
				case KindLayerNorm:
					n := m.Norm(spec.Module)
					if n.Dim != spec.In || n.Eps != spec.Eps || (n.Weight != nil) != spec.Bias {
						t.Errorf("%s: LayerNorm(%d, ε %g), description (%d, ε %g)", spec.Key, n.Dim, n.Eps, spec.In, spec.Eps)
					}
				}
			}
			d, mods, pw := cfg.EmbedDim, Modules(cfg), m.packed()
			for _, c := range []struct {
				name    string
				p       *compute.PackedLinear
				in, out int
			}{
				{"timestep MLP 0", pw.tMlp0, mods[TEmbedderMLP0].In, mods[TEmbedderMLP0].Out},
				{"timestep MLP 2", pw.tMlp2, mods[TEmbedderMLP2].In, mods[TEmbedderMLP2].Out},
				{"label table 0", pw.yTable0, mods[YEmbedderTable0].In, mods[YEmbedderTable0].Out},
				{"label table 1", pw.yTable1, mods[YEmbedderTable1].In, mods[YEmbedderTable1].Out},
				{"block modulation", pw.adaT, mods[TransformerAdaLN].In, mods[TransformerAdaLN].Out},
				{"final modulation", pw.adaF, mods[FinalLayerAdaLN].In, mods[FinalLayerAdaLN].Out},
				{"cell embedding", pw.cellEmb, mods[CellToEmbedding].In, mods[CellToEmbedding].Out},
				{"queries", pw.q, d, mods[TransformerAttnToQKV].Out / 3},
				{"keys and values", pw.kv, d, 2 * mods[TransformerAttnToQKV].Out / 3},
				{"output projection", pw.out, mods[TransformerAttnToOut].In, mods[TransformerAttnToOut].Out},
				{"MLP 0", pw.net0, mods[TransformerFFNet0].In, mods[TransformerFFNet0].Out},
				{"MLP 3", pw.net3, mods[TransformerFFNet3].In, mods[TransformerFFNet3].Out},
				{"final linear", pw.final, mods[FinalLayerLinear].In, mods[FinalLayerLinear].Out},
			} {
				if c.p.In != c.in || c.p.Out != c.out {
					t.Errorf("packed %s is %d→%d, description %d→%d", c.name, c.p.In, c.p.Out, c.in, c.out)
				}
			}
		})
	}
}
