package engine

import (
	"fmt"
	"math"

	"geca/engine/compute"
)

// Cond is the conditioning vector c = temb(t) + yemb(y) of a batch: C holds
// B rows of D values.
type Cond struct {
	B, D int
	C    []float32
}

// maxTimestep bounds t so that float32(t) is exact.
const maxTimestep = 1 << 24

// TimestepCode writes the sinusoidal code of t (docs/model.md §4.1), TimestepFeatures
// values: cos(t·φ_k) for k < 128, then sin(t·φ_k), φ_k = exp(−ln(10000)·k/128)
// in float32. It is the one place the code is computed.
func TimestepCode(dst []float32, t int) {
	half := TimestepFeatures / 2
	lnmp := float32(-math.Log(10000))
	for k := 0; k < half; k++ {
		f := float32(math.Exp(float64(float32(k) * lnmp / float32(half))))
		a := float64(float32(t) * f)
		dst[k] = float32(math.Cos(a))
		dst[half+k] = float32(math.Sin(a))
	}
}

// Condition computes c = temb(t) + yemb(y) for a batch (docs/model.md §4.1–§4.2). t are
// original diffusion indices (0…999 for the official schedule); y[b] is the
// multi-hot float label of sample b (length K; all zeros is the CFG null
// label).
func (m *Model) Condition(t []int, y [][]float32) (*Cond, error) {
	b, d, k := len(t), m.Cfg.EmbedDim, m.Cfg.NumClasses
	if b == 0 {
		return nil, fmt.Errorf("condition: empty batch")
	}
	if len(y) != b {
		return nil, fmt.Errorf("condition: %d timesteps but %d labels", b, len(y))
	}
	feat := make([]float32, b*TimestepFeatures)
	ys := make([]float32, b*k)
	for i, ti := range t {
		if ti < 0 || ti >= maxTimestep {
			return nil, fmt.Errorf("condition: timestep t[%d] = %d out of range [0, %d)", i, ti, maxTimestep)
		}
		if len(y[i]) != k {
			return nil, fmt.Errorf("condition: label y[%d] has %d entries, want %d (num_classes)", i, len(y[i]), k)
		}
		for j, v := range y[i] {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("condition: label y[%d][%d] = %v is not finite", i, j, v)
			}
		}
		TimestepCode(feat[i*TimestepFeatures:(i+1)*TimestepFeatures], ti)
		copy(ys[i*k:], y[i])
	}
	pw := m.packed()
	h := make([]float32, b*d)
	pw.tMlp0.Apply(h, feat, b)
	compute.SiLUTo(h, h)
	c := make([]float32, b*d)
	pw.tMlp2.Apply(c, h, b)
	pw.yTable0.Apply(h, ys, b)
	yemb := make([]float32, b*d)
	pw.yTable1.Apply(yemb, h, b)
	for i := range c {
		c[i] += yemb[i]
	}
	return &Cond{B: b, D: d, C: c}, nil
}

// Concat stacks conditionings along the batch (for example the conditional
// and unconditional halves of a CFG batch).
func Concat(cs ...*Cond) (*Cond, error) {
	if len(cs) == 0 {
		return nil, fmt.Errorf("concat: no conditionings")
	}
	out := &Cond{D: cs[0].D}
	for i, c := range cs {
		if c == nil || c.D != out.D || len(c.C) != c.B*c.D {
			return nil, fmt.Errorf("concat: conditioning %d is malformed or has a different width", i)
		}
		out.B += c.B
		out.C = append(out.C, c.C...)
	}
	return out, nil
}

func (c *Cond) check(b, d int) error {
	if c == nil {
		return fmt.Errorf("conditioning is nil")
	}
	if c.B != b || c.D != d || len(c.C) != b*d {
		return fmt.Errorf("conditioning has shape (%d, %d) with %d values, want (%d, %d)", c.B, c.D, len(c.C), b, d)
	}
	return nil
}
