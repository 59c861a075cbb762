package engine

import "fmt"

// State is a batch of pix-cell grids, stored cell-major: the CellDim channels of
// cell (i, j) of sample b are contiguous at Data[((b·H+i)·W+j)·C : … + C].
// The channel order is the official one (docs/model.md §2.1): [C_in | C_out | C_h], with
// C_out = [ε̂ | v]. Cell-major storage makes every per-cell layer one matrix
// product over all cells; ToNCHW/FromNCHW convert to PyTorch's layout at the
// edges (files, golden tests).
type State struct {
	B, H, W, C int
	Data       []float32
}

// NewState allocates a zero state. A size that outside input chooses is
// checked first (CheckState, or CheckRun and CheckCall for what a run or a
// call allocates with it; docs/safety.md).
func NewState(b, h, w, c int) *State {
	return &State{B: b, H: h, W: w, C: c, Data: make([]float32, b*h*w*c)}
}

// Cell returns the channel vector of one cell (a view, not a copy).
func (s *State) Cell(b, i, j int) []float32 {
	o := ((b*s.H+i)*s.W + j) * s.C
	return s.Data[o : o+s.C : o+s.C]
}

// Clone returns a deep copy.
func (s *State) Clone() *State {
	c := *s
	c.Data = append([]float32(nil), s.Data...)
	return &c
}

// CopyFrom copies src into s; shapes must match.
func (s *State) CopyFrom(src *State) error {
	if s.B != src.B || s.H != src.H || s.W != src.W || s.C != src.C {
		return fmt.Errorf("state shape (%d,%d,%d,%d) != (%d,%d,%d,%d)", s.B, s.C, s.H, s.W, src.B, src.C, src.H, src.W)
	}
	copy(s.Data, src.Data)
	return nil
}

// ToNCHW returns the data in PyTorch's (B, C, H, W) layout.
func (s *State) ToNCHW() []float32 {
	out := make([]float32, len(s.Data))
	n := s.H * s.W
	for b := 0; b < s.B; b++ {
		for p := 0; p < n; p++ {
			src := s.Data[(b*n+p)*s.C:]
			for c := 0; c < s.C; c++ {
				out[(b*s.C+c)*n+p] = src[c]
			}
		}
	}
	return out
}

// FromNCHW builds a state from PyTorch's (B, C, H, W) layout.
func FromNCHW(b, c, h, w int, data []float32) (*State, error) {
	if len(data) != b*c*h*w {
		return nil, fmt.Errorf("have %d values, want %d for shape (%d, %d, %d, %d)", len(data), b*c*h*w, b, c, h, w)
	}
	s := NewState(b, h, w, c)
	n := h * w
	for bi := 0; bi < b; bi++ {
		for p := 0; p < n; p++ {
			dst := s.Data[(bi*n+p)*c:]
			for ci := 0; ci < c; ci++ {
				dst[ci] = data[(bi*c+ci)*n+p]
			}
		}
	}
	return s, nil
}
