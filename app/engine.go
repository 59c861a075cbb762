// Package app is the geca visualizer: a Gio window that shows the pix-cell
// grid of a GeCA model growing from one seeded cell, update by update and
// timestep by timestep.
//
// The package has three layers. Controller is plain Go: runs (each a
// sample.Stepper, local or in a worker, which owns the run's history), the
// frames they showed, branches, compare panes, damage and undo; it is driven
// by commands and tested without a window. Runner owns a Controller on its own goroutine,
// applies the commands the UI sends and publishes immutable Snapshots. The UI
// (ui.go and friends) only reads the latest Snapshot and draws; it never waits
// on compute.
package app

import (
	"fmt"
	"strconv"
	"strings"

	"geca/engine"
	"geca/engine/sample"
)

// Settings are the knobs of one sampling run.
type Settings struct {
	Steps  string  // respacing of the 1000-step schedule: "50", "250", "ddim25"
	M      int     // cell updates per denoising step
	GHG    bool    // Gene Heredity Guidance: carry the cells from step to step
	CFG    float32 // classifier-free guidance scale; <= 1 disables it
	Rate   float32 // per-cell update probability
	Labels []int   // class indices set in the multi-hot label; empty = unconditional
	Seed   uint64
}

// LabelString renders labels as "3,7" (or "none").
func (s Settings) LabelString() string {
	if len(s.Labels) == 0 {
		return "none"
	}
	parts := make([]string, len(s.Labels))
	for i, l := range s.Labels {
		parts[i] = strconv.Itoa(l)
	}
	return strings.Join(parts, ",")
}

// ParseLabels reads "3, 7" into class indices, each in [0, classes).
func ParseLabels(s string, classes int) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" || s == "-" {
		return nil, nil
	}
	var out []int
	seen := map[int]bool{}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == ';' }) {
		v, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("label %q is not a class number", f)
		}
		if v < 0 || v >= classes {
			return nil, fmt.Errorf("label %d out of range [0, %d)", v, classes)
		}
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out, nil
}

// Frame is the state of a run after one cell update (or at the start of a
// timestep, Update 0). Frames are immutable once published.
type Frame struct {
	Index     int     // timestep number from the start of the run: 0 .. Steps-1
	T         int     // original diffusion timestep (999 .. 0)
	Update, M int     // cell update inside the timestep, 0 .. M
	Sigma     float64 // noise level of x_t: sqrt(1 - ᾱ_t)
	State     *engine.State
	Xt, X0    []float32 // (B, C_in, H, W)
	Magnitude []float32 // (B, H, W) |update| of the last update; nil at Update 0
	Attn      []float32 // heads·9 attention of the observed cell; nil if none
	AttnCell  [2]int    // observed cell (row, column)
	Done      bool      // the run has produced its final sample
	// Reached marks the cells of sample 0 the growth from the seed has
	// reached; the controller fills it in.
	Reached []bool
	// Influence is, per cell of sample 0 (H·W), how far its [C_out | C_h]
	// differs (L2) from the same timestep run without the seed cell: same
	// x_t, same masks, the centre cell's C_out and C_h zeroed at the start
	// of the timestep (docs/viewer.md; influence.go). Information moves one
	// cell per update, so it is zero outside the seed's light cone. nil when
	// it was not measured.
	Influence []float32
}

// Engine makes samplers for one model.
type Engine interface {
	Config() engine.Config
	// Name describes the model for the status line.
	Name() string
	// NewSampler starts one sample (N = 1) with settings s, which keeps the
	// snapshots of its timesteps within snapshotBytes
	// (sample.Options.SnapshotBytes): the run owns its history.
	NewSampler(s Settings, snapshotBytes int64) (sample.Stepper, error)
}
