package app

import (
	"image"
	"image/color"
	"math"
	"strings"
	"testing"

	"gioui.org/io/key"

	"geca/internal/guitest"
	"geca/render"
)

// builtinHarness is the window on the built-in model, as `geca view` opens.
func builtinHarness(t *testing.T) *harness {
	guitest.RequireRenderer(t)
	eng, err := DefaultEngine()
	if err != nil {
		t.Fatal(err)
	}
	return newHarness(t, eng, StartSettings(eng))
}

// influenced returns the cells with a non-zero seed influence, and whether
// they all lie within r cells of the centre.
func influenced(t *testing.T, f *Frame, h, w, r int) (n int, inside bool) {
	t.Helper()
	if len(f.Influence) != h*w {
		t.Fatalf("frame at %d.%d has %d influence values", f.Index, f.Update, len(f.Influence))
	}
	inside = true
	for p, v := range f.Influence {
		if v != 0 {
			n++
			if i, j := p/w, p%w; abs(i-h/2) > r || abs(j-w/2) > r {
				inside = false
			}
		}
	}
	return n, inside
}

// In the demo preset, after a reset, the seed-influence view is non-zero
// only around the centre after the first update and spreads with more
// updates, one cell per update at most, in every timestep.
func TestGUIDemoSeedInfluenceSpreads(t *testing.T) {
	h := builtinHarness(t)
	cfg := h.snap().Cfg
	h.key("D", key.ModShift) // the demo preset
	h.key(key.NameSpace, 0)  // hold it still
	if !h.ui.demo || h.ui.view != render.ViewInfluence || h.snap().Speed != demoSpeed || !h.snap().Influence {
		t.Fatalf("demo preset: demo %v, view %v, speed %v, influence %v", h.ui.demo, h.ui.view, h.snap().Speed, h.snap().Influence)
	}
	h.key("T", 0)
	h.key("R", 0) // reset: back to the start
	if p := h.snap().Panes[0]; p.K != 0 || p.U != 0 || !p.Settings.GHG {
		t.Fatalf("after reset at %d.%d, GHG %v", p.K, p.U, p.Settings.GHG)
	}
	if n, inside := influenced(t, h.snap().Panes[0].Frame, cfg.GridH, cfg.GridW, 0); n != 1 || !inside {
		t.Errorf("at the seed: %d cells influenced (inside the centre: %v), want the seed cell", n, inside)
	}
	for timestep := 0; timestep < 2; timestep++ {
		prev := 1
		for u := 1; u <= 5; u++ {
			h.key(key.NameRightArrow, 0)
			f := h.snap().Panes[0].Frame
			n, inside := influenced(t, f, cfg.GridH, cfg.GridW, u)
			if !inside {
				t.Errorf("step %d, update %d: influence beyond %d cells of the centre", timestep+1, u, u)
			}
			if n <= prev {
				t.Errorf("step %d, update %d: %d cells influenced, not more than %d", timestep+1, u, n, prev)
			}
			prev = n
			if u == 1 {
				img := h.shot("demo-influence-update1")
				for i := 0; i < cfg.GridH; i++ {
					for j := 0; j < cfg.GridW; j++ {
						near := abs(i-cfg.GridH/2) <= 1 && abs(j-cfg.GridW/2) <= 1
						dark := guitest.Near(h.cell(img, 0, i, j), render.UnreachedColor, 6)
						if !near && !dark {
							t.Errorf("step %d, update 1: cell (%d, %d) drawn influenced", timestep+1, i, j)
						}
					}
				}
				if guitest.Near(h.cell(img, 0, cfg.GridH/2, cfg.GridW/2), render.UnreachedColor, 6) {
					t.Error("the seed cell is drawn uninfluenced after the first update")
				}
				if c := demoCaption(h.snap(), h.snap().Panes[0], f); !strings.HasPrefix(c, "Update 1:") {
					t.Errorf("caption %q", c)
				}
			}
		}
		h.key("T", 0) // the next timestep starts again from the centre
		if n, _ := influenced(t, h.snap().Panes[0].Frame, cfg.GridH, cfg.GridW, 0); n != 1 {
			t.Errorf("start of step %d: %d cells influenced", timestep+2, n)
		}
	}
	if tr := h.ui.Truncated(); len(tr) > 0 {
		t.Errorf("cut off: %q", tr)
	}
}

// The overlay dims the cells outside the seed's reach on any view.
func TestGUIReachOverlay(t *testing.T) {
	h := builtinHarness(t)
	cfg := h.snap().Cfg
	h.key("I", key.ModShift) // dim outside the reach; turns the measurement on
	h.key("2", 0)            // x_t: noise everywhere
	h.key("R", 0)
	for i := 0; i < 2; i++ {
		h.key(key.NameRightArrow, 0)
	}
	img := h.shot("reach-overlay")
	f := h.snap().Panes[0].Frame
	plain, err := render.Render(render.ViewXt, source(cfg, f), render.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < cfg.GridH; i++ {
		for j := 0; j < cfg.GridW; j++ {
			want := plain.RGBAAt(j, i)
			if f.Influence[i*cfg.GridW+j] == 0 {
				want.R, want.G, want.B = want.R/4, want.G/4, want.B/4
			}
			if got := h.cell(img, 0, i, j); !guitest.Near(got, want, 3) {
				t.Fatalf("cell (%d, %d) drawn %v, want %v (influence %g)", i, j, got, want, f.Influence[i*cfg.GridW+j])
			}
		}
	}
}

// Damage drawn on the x₀ view blanks the image under the brush at once (x₀
// = 0, mid grey), starts to regrow in the updates left in the timestep and
// is whole again by the end of the next one: with the
// viewer's defaults (50 DDIM steps, CFG 3), measurably nearer the undamaged
// run's image, and at CFG 6. (At CFG 6 x₀ saturates at ±1, so a regrown
// cell that chose the other extreme counts 2: there the regrown image is
// only required to be nearer than the hole was.)
func TestGUIDamageRegrowsInX0(t *testing.T) {
	guitest.RequireRenderer(t)
	eng, err := DefaultEngine()
	if err != nil {
		t.Fatal(err)
	}
	defaults := StartSettings(eng)
	defaults.CFG = 3 // as it is now; the bounds below are for these scales
	harder := defaults
	harder.CFG = 6
	for _, c := range []struct {
		name   string
		s      Settings
		closer float64 // the regrown cells' distance to the undamaged x₀, at most this fraction of the hole's
	}{
		{"CFG 3", defaults, 0.7},
		{"CFG 6", harder, 1},
	} {
		t.Run(c.name, func(t *testing.T) { damageRegrows(t, newHarness(t, eng, c.s), c.closer) })
	}
}

func damageRegrows(t *testing.T, h *harness, closer float64) {
	cfg := h.snap().Cfg
	const k = 30
	for i := 0; i < k; i++ {
		h.key("T", 0)
	}
	M := h.snap().Panes[0].Frame.M
	for i := 0; i < M; i++ {
		h.key(key.NameRightArrow, 0)
	}
	ref := h.snap().Panes[0].Frame.X0 // the undamaged end of the timestep
	// endOfNext steps from the end of timestep k to the end of k+1 and
	// returns x₀ there
	endOfNext := func() []float32 {
		for i := 0; i <= M; i++ {
			h.key(key.NameRightArrow, 0)
		}
		p := h.snap().Panes[0]
		if p.K != k+1 || p.U != M {
			t.Fatalf("at %d.%d, want the end of the next timestep", p.K, p.U)
		}
		return p.Frame.X0
	}
	// greyHoles counts the blanked cells that x₀ still draws grey among
	// those the undamaged want draws vivid, and x₀'s distance to want there
	greyHoles := func(x0, want []float32, blank []int) (grey, vivid int, off float64) {
		for _, p := range blank {
			off += math.Abs(float64(x0[p] - want[p]))
			if math.Abs(float64(want[p])) >= 0.5 {
				vivid++
				if math.Abs(float64(x0[p])) < 0.5 {
					grey++
				}
			}
		}
		return grey, vivid, off
	}
	refNext := endOfNext() // the undamaged end of the next timestep
	for i := 0; i <= M; i++ {
		h.key(key.NameLeftArrow, 0)
	}
	h.key(key.NameLeftArrow, key.ModShift)
	h.key(key.NameRightArrow, key.ModShift)
	for i := 0; i < 2; i++ {
		h.key(key.NameRightArrow, 0)
	}
	if p := h.snap().Panes[0]; p.K != k || p.U != 2 {
		t.Fatalf("at %d.%d", p.K, p.U)
	}
	h.key("1", 0)
	h.typeInto("radius", "2.5")
	for i := 0; i < 3; i++ {
		h.key("B", 0) // off → erase → perturb → blank the image
	}
	if h.ui.brush != BrushBlank {
		t.Fatalf("brush %v", h.ui.brush)
	}
	ci, cj := cfg.GridH/2, cfg.GridW/2
	h.drag(h.ui.CellCentre(0, ci, cj-3), h.ui.CellCentre(0, ci, cj+3))
	h.win.Move(image.Pt(2, 2))
	h.frame()
	img := h.shot("x0-blanked")
	x0 := h.snap().Panes[0].Frame.X0
	for j := cj - 3; j <= cj+3; j++ {
		if v := x0[ci*cfg.GridW+j]; math.Abs(float64(v)) > 1e-4 {
			t.Errorf("x₀ at (%d, %d) after blanking: %g, want 0", ci, j, v)
		}
		if c := h.cell(img, 0, ci, j); !guitest.Near(c, color.RGBA{128, 128, 128, 255}, 2) {
			t.Errorf("blanked cell (%d, %d) drawn %v, want mid grey", ci, j, c)
		}
	}
	// the blanked cells: where x₀ is 0 (to float32 rounding)
	var blank []int
	for p, v := range x0 {
		if math.Abs(float64(v)) < 1e-4 {
			blank = append(blank, p)
		}
	}
	if len(blank) < 20 {
		t.Fatalf("%d cells blanked", len(blank))
	}
	for i := 2; i < M; i++ {
		h.key(key.NameRightArrow, 0)
	}
	h.shot("x0-regrown")
	// regrown: the grey hole is gone (cells that are not grey in the
	// undamaged run are no longer grey), and the cells draw nearer the
	// undamaged run's image than the hole did (not exactly: the damage
	// changed the run)
	x0 = h.snap().Panes[0].Frame.X0
	zero := make([]float32, len(x0))
	_, _, hurt := greyHoles(zero, ref, blank) // x₀ was 0 there
	grey, vivid, healed := greyHoles(x0, ref, blank)
	t.Logf("%d of %d blanked cells (not grey in the undamaged run) still grey %d updates later; off the undamaged x₀ by %.2f on average after the stroke, %.2f after",
		grey, vivid, M-2, hurt/float64(len(blank)), healed/float64(len(blank)))
	if vivid < len(blank)/2 || !(healed < hurt*closer) {
		t.Errorf("no regrowth in the timestep: off by %.2f, then %.2f", hurt, healed)
	}
	// by the end of the next timestep the hole is gone: the blanked cells
	// that the undamaged run draws vivid are vivid again
	grey, vivid, healed = greyHoles(endOfNext(), refNext, blank)
	t.Logf("a timestep later: %d of %d still grey; off the undamaged x₀ by %.2f on average", grey, vivid, healed/float64(len(blank)))
	if vivid < len(blank)/2 || grey > vivid/5 || !(healed < hurt*closer) {
		t.Errorf("no regrowth a timestep later: %d of %d cells still grey; off by %.2f, then %.2f", grey, vivid, hurt, healed)
	}
}
