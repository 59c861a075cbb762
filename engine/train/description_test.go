package train

import (
	"slices"
	"testing"

	"geca/engine"
)

// TestParamsFollowDescription: the trainer's parameters and gradients are
// the tensors of the engine's description, in its order, under its keys,
// with its shapes, and its forward pass's modules use them with the
// description's sizes.
func TestParamsFollowDescription(t *testing.T) {
	for _, cfg := range []engine.Config{tinyConfig(), smallConfig()} {
		t.Run(cfg.Name, func(t *testing.T) {
			p, err := NewParams[float64](cfg)
			if err != nil {
				t.Fatal(err)
			}
			specs := engine.Params(cfg)
			if len(p.List) != len(specs) {
				t.Fatalf("%d parameters, description %d", len(p.List), len(specs))
			}
			for i, s := range specs {
				q := p.List[i]
				if q.Key != s.Key || !slices.Equal(q.Shape, s.Shape) || len(q.W) != s.Size() || len(q.G) != s.Size() {
					t.Errorf("parameter %d is %s %v (%d values, %d gradients), description %s %v", i, q.Key, q.Shape, len(q.W), len(q.G), s.Key, s.Shape)
				}
			}
			ts, names := p.Tensors()
			if !slices.Equal(names, engine.ParamNames(cfg)) {
				t.Errorf("tensors %v, description %v", names, engine.ParamNames(cfg))
			}
			for _, s := range specs {
				if got := []int(ts[s.Key].Shape()); !slices.Equal(got, s.Shape) {
					t.Errorf("%s has shape %v, description %v", s.Key, got, s.Shape)
				}
			}
			for _, m := range engine.Modules(cfg) {
				if m.Kind != engine.KindLinear {
					continue
				}
				l := p.Linear(m.Module)
				if l.In != m.In || l.Out != m.Out || l.Weight.Key != m.Module.WeightKey() {
					t.Errorf("%s: Linear(%d→%d) %s, description (%d→%d)", m.Key, l.In, l.Out, l.Weight.Key, m.In, m.Out)
				}
			}
		})
	}
}
