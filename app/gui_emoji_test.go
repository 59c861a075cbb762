package app

import (
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"geca/assets"
	"geca/engine/data"
	"geca/engine/train/eval"
	"geca/internal/guitest"
	"geca/render"
)

// emojiTargets are the emoji model's ten emoji as its training data
// centres them (32x32 on white), scored as assets/README.md scores samples
// (eval.Targets, ±2 pixels); the test skips without the font.
func emojiTargets(t *testing.T) *eval.Targets {
	t.Helper()
	if _, err := os.Stat(data.EmojiFontPath); err != nil {
		t.Skipf("no colour emoji font (Debian: fonts-noto-color-emoji): %v", err)
	}
	ds, err := data.LoadEmoji("", data.EmojiSets["garden"].Emoji, data.EmojiOptions{Size: 32, Variants: 1,
		Background: color.NRGBA{255, 255, 255, 255}})
	if err != nil {
		t.Fatal(err)
	}
	return eval.NewTargets(ds)
}

// emojiShift is how far a sample may sit from its emoji: the first stages
// of the model's training saw copies shifted this far.
const emojiShift = 2

// stepsOf is the number of timesteps of a run with settings s.
func stepsOf(t *testing.T, s Settings) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimPrefix(s.Steps, "ddim"))
	if err != nil {
		t.Fatalf("steps %q: %v", s.Steps, err)
	}
	return n
}

// runToEnd steps timesteps until the run is done.
func runToEnd(t *testing.T, h *harness) *Frame {
	t.Helper()
	n := stepsOf(t, h.snap().Settings)
	for i := 0; i <= n && !h.snap().Panes[0].Frame.Done; i++ {
		h.key("T", 0)
	}
	f := h.snap().Panes[0].Frame
	if !f.Done {
		t.Fatalf("not done after %d timesteps", n+1)
	}
	return f
}

// emojiHarness is the window on the emoji model for class k, as `geca view
// --model emoji` opens it.
func emojiHarness(t *testing.T, k int) *harness {
	guitest.RequireRenderer(t)
	eng, err := BuiltinEngine(assets.Emoji)
	if err != nil {
		t.Fatal(err)
	}
	s := StartSettings(eng)
	s.Labels = []int{k}
	return newHarness(t, eng, s)
}

// emojiClass is the class the growth tests grow, with the error below which
// a sample counts as that emoji: about twice the model's mean error for the
// sunflower, 0.023 (assets/README.md, "Emoji model"), and far below the 0.115
// that separates the nearest two of the ten emoji.
const (
	emojiClass    = 5 // the sunflower
	emojiMaxError = 0.05
)

// The emoji model opens as the teaching model (x₀, slowly, the damage brush
// ready), grows an emoji from the seed cell, and
// the grown image is that emoji: nearer to it than to any other of the
// ten, and within emojiMaxError of it.
func TestGUIEmojiGrowsItsEmoji(t *testing.T) {
	ds := emojiTargets(t)
	h := emojiHarness(t, emojiClass)
	if h.ui.view != render.ViewX0 || !h.ui.brushOn || h.ui.brush != BrushBlank || h.snap().Speed != builtinOpenings["emoji"].Speed {
		t.Fatalf("opened on view %v, brush %v %v, speed %v: want x₀ and the blank brush on, slowly", h.ui.view, h.ui.brushOn, h.ui.brush, h.snap().Speed)
	}
	s := h.snap()
	if s.Builtin != "emoji" || s.Cfg.InChannels != 3 || s.Settings.Steps != assets.Emoji.Sampler.Steps || s.Classes[0] != "lizard" {
		t.Fatalf("model %q, C_in %d, steps %q, classes %v", s.Builtin, s.Cfg.InChannels, s.Settings.Steps, s.Classes)
	}
	// after the first update only cells next to the seed are reached
	h.key("N", 0)
	if r := h.snap().Panes[0].Frame.Reached; len(r) != 32*32 || !r[16*32+16] || r[16*32+18] || r[13*32+16] {
		t.Fatalf("after one update: reached %d cells, the centre %v", len(r), len(r) > 0 && r[16*32+16])
	}
	f := runToEnd(t, h)
	h.shot("emoji-grown")
	k, errs := ds.Nearest(f.X0, emojiShift)
	t.Logf("grown %s: error %.3f to its emoji; nearest %s (%.3f)", s.Classes[emojiClass], errs[emojiClass], s.Classes[k], errs[k])
	if k != emojiClass || errs[emojiClass] > emojiMaxError {
		t.Fatalf("grown image is nearest to %s (errors %.3f); want the %s within %.2f", s.Classes[k], errs, s.Classes[emojiClass], emojiMaxError)
	}
}

// The regeneration demo: half-way through the run, in the middle of a
// timestep, the brush blanks a band across the growing emoji (the cells
// forget their hidden state and their x₀ turns mid grey); the run goes on
// and regrows it. The damage is real (the finished image differs from the
// undamaged run's) and the finished image is the emoji again.
func TestGUIEmojiRegrowsAfterDamage(t *testing.T) {
	ds := emojiTargets(t)
	ref := runToEnd(t, emojiHarness(t, emojiClass)).X0
	h := emojiHarness(t, emojiClass)
	n := stepsOf(t, h.snap().Settings)
	for i := 0; i < n/2; i++ {
		h.key("T", 0)
	}
	for i := 0; i < 4; i++ {
		h.key("N", 0)
	}
	h.typeInto("radius", "2.5")
	ci := 16
	h.drag(h.ui.CellCentre(0, ci, 6), h.ui.CellCentre(0, ci, 25))
	x0 := h.snap().Panes[0].Frame.X0
	blank := 0
	for j := 6; j <= 25; j++ {
		for c := 0; c < 3; c++ {
			if v := x0[c*32*32+ci*32+j]; math.Abs(float64(v)) < 1e-4 {
				blank++
			}
		}
	}
	if blank < 3*18 {
		t.Fatalf("%d of %d values along the stroke blanked", blank, 3*20)
	}
	h.shot("emoji-damaged")
	f := runToEnd(t, h)
	h.shot("emoji-regrown")
	changed, diff := 0, 0.0
	for i := range ref {
		if d := math.Abs(float64(f.X0[i] - ref[i])); d != 0 {
			changed++
			diff += d
		}
	}
	k, errs := ds.Nearest(f.X0, emojiShift)
	_, refErr := ds.Nearest(ref, emojiShift)
	t.Logf("damaged at timestep %d of %d, update 4; regrown: error %.3f to its emoji (undamaged %.3f), nearest %d; %d of %d values differ from the undamaged run (mean %.3f)",
		n/2+1, n, errs[emojiClass], refErr[emojiClass], k, changed, len(ref), diff/float64(max(changed, 1)))
	if changed == 0 {
		t.Fatal("the finished image is the undamaged run's: the damage did nothing")
	}
	if k != emojiClass || errs[emojiClass] > emojiMaxError {
		t.Fatalf("after the damage the run grew an image nearest to class %d (errors %.3f); want class %d within %.2f", k, errs, emojiClass, emojiMaxError)
	}
}

// The model picker opens the emoji model from the built-in list, goes back
// to Fashion-MNIST (the same opened model, with its history) and to the emoji
// without opening it twice; a checkpoint opened by path joins the recent list
// and the recent list survives a new window.
func TestGUIModelPicker(t *testing.T) {
	guitest.RequireRenderer(t)
	eng, err := DefaultEngine()
	if err != nil {
		t.Fatal(err)
	}
	recent := filepath.Join(t.TempDir(), "recent.json")
	h := newHarnessSize(t, eng, StartSettings(eng), 1280, 2400)
	h.r.recent = &RecentFiles{Path: recent}
	h.key("T", 0)
	fmnistRuns := len(h.snap().Runs)
	if h.ui.view != render.ViewX0 || h.ui.reach {
		t.Fatalf("the built-in model opened with view %v, reach %v", h.ui.view, h.ui.reach)
	}
	h.click(assets.Emoji.Title)
	h.frame() // the window applies the new model's look when it first shows it
	s := h.snap()
	if s.Builtin != "emoji" || s.Cfg.InChannels != 3 || len(s.Models) != 2 || s.Error != "" {
		t.Fatalf("after clicking %q: model %q (%q), %d models, error %q", assets.Emoji.Title, s.Builtin, s.Model, len(s.Models), s.Error)
	}
	if h.ui.view != render.ViewX0 || !h.ui.brushOn || s.Speed != builtinOpenings["emoji"].Speed {
		t.Fatalf("the emoji model opened without its look: view %v, brush %v, speed %v", h.ui.view, h.ui.brushOn, s.Speed)
	}
	h.click(assets.FashionMNIST.Title)
	s = h.snap()
	if s.Builtin != "fmnist" || len(s.Models) != 2 || len(s.Runs) != fmnistRuns || s.Panes[0].K != 1 {
		t.Fatalf("back to Fashion-MNIST: model %q, %d models, %d runs (had %d), at step %d", s.Builtin, len(s.Models), len(s.Runs), fmnistRuns, s.Panes[0].K)
	}
	h.click(assets.Emoji.Title)
	if s = h.snap(); s.Builtin != "emoji" || len(s.Models) != 2 {
		t.Fatalf("the emoji again: model %q, %d models (opened twice?)", s.Builtin, len(s.Models))
	}
	// a file opened by path is remembered
	file := filepath.Join(t.TempDir(), "mine.safetensors")
	if err := assets.FashionMNIST.Write(file); err != nil {
		t.Fatal(err)
	}
	h.typeInto("checkpoint path, Enter", file)
	if s = h.snap(); s.Error != "" || len(s.Models) != 3 || len(s.Recent) != 1 || s.Recent[0] != file {
		t.Fatalf("opened %s: error %q, %d models, recent %v", file, s.Error, len(s.Models), s.Recent)
	}
	again := &RecentFiles{Path: recent}
	if err := again.Load(); err != nil || len(again.List()) != 1 || again.List()[0] != file {
		t.Fatalf("the recent list on disk: %v, %v", again.List(), err)
	}
	// a new window offers it under "recent" and opens it in one click
	h2 := newHarnessSize(t, eng, StartSettings(eng), 1280, 2400)
	h2.r.recent = again
	h2.frame()
	h2.click("mine.safetensors")
	if s = h2.snap(); s.Error != "" || len(s.Models) != 2 || !filepath.IsAbs(file) || s.Cfg.GridH != 28 {
		t.Fatalf("opening the recent file: error %q, %d models", s.Error, len(s.Models))
	}
}

// A window that starts with a recent-files list offers its files at once
// (a click opens one),
// and one that starts with a broken list says so in the status line (a
// remark, not the error banner) and starts a new list.
func TestGUIRecentFilesAtStart(t *testing.T) {
	guitest.RequireRenderer(t)
	eng, err := DefaultEngine()
	if err != nil {
		t.Fatal(err)
	}
	open := func(recent string) *harness {
		ctrl, err := NewController(eng, StartSettings(eng))
		if err != nil {
			t.Fatal(err)
		}
		r := NewRunner(eng, ctrl, Open, nil)
		r.UseRecent(recent) // as RunWindow does, before the window exists
		h := &harness{t: t, win: guitest.New(t, 1280, 2400), r: r,
			ui: NewUI(r, Options{Shaper: guitest.NewShaper(), ExportDir: t.TempDir()})}
		h.frame()
		return h
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "recent.json")
	os.WriteFile(good, []byte(`["/models/mine.safetensors"]`), 0o644)
	h := open(good)
	if s := h.snap(); len(s.Recent) != 1 {
		t.Fatalf("recent at start: %v", s.Recent)
	}
	h.click("mine.safetensors") // the chip is there and opens the file (here: missing)
	if e := h.snap().Error; !strings.Contains(e, "/models/mine.safetensors") {
		t.Fatalf("clicking the recent file: error %q", e)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{{{"), 0o644)
	h = open(bad)
	if m := h.message(); !strings.Contains(m, "recent files") || h.snap().Error != "" {
		t.Fatalf("broken list at start: message %q, error banner %q", m, h.snap().Error)
	}
}
