package assets

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"geca/engine"
	"geca/engine/ckpt"
	"geca/engine/sample"
	"geca/engine/train"
)

// The measurements of this folder's README (TestMeasureDefaults,
// TestMeasureEmoji) run only when asked: an environment variable lists the
// sampler settings, GECA_MEASURE_PER_CLASS sets the samples per class and
// GECA_MEASURE_GRIDS a folder for each setting's sample grid;
// GECA_MEASURE_MODEL measures a model file in place of the built-in one.

// measureSetting is one entry of such a list: steps/CFG or steps/CFG/M,
// then /clip for x̂0 clipping and /noghg for Gene Heredity Guidance off, in
// either order.
type measureSetting struct {
	name  string // as written
	steps string
	cfg   float64
	m     int // 0: the model's
	clip  bool
	noGHG bool
}

// label names the sampler in a measurement's table row: the steps, and
// whether x̂0 is clipped and GHG off (the README's tables keep them apart).
func (s measureSetting) label() string {
	l := s.steps
	if s.clip {
		l += ", x̂0 clipped"
	}
	if s.noGHG {
		l += ", GHG off"
	}
	return l
}

// options are the sampler options of a measurement for a model trained
// with M modelM: seed 1 and, unless the setting says otherwise, GHG on, as
// the viewer samples.
func (s measureSetting) options(modelM int) sample.Options {
	m := s.m
	if m == 0 {
		m = modelM
	}
	return sample.Options{Steps: s.steps, GHG: !s.noGHG, CFG: float32(s.cfg), M: m, ClipX0: s.clip, Seed: 1}
}

// measureSettings reads the list in the environment variable env, skipping
// the test when it is empty.
func measureSettings(t *testing.T, env string) []measureSetting {
	t.Helper()
	spec := os.Getenv(env)
	if spec == "" {
		t.Skipf("set %s to a list of steps/CFG[/M][/clip][/noghg] settings to measure", env)
	}
	var out []measureSetting
	for _, s := range strings.Fields(spec) {
		parts := strings.Split(s, "/")
		ms := measureSetting{name: s}
		for n := len(parts); n > 2 && (parts[n-1] == "clip" || parts[n-1] == "noghg"); n = len(parts) {
			if parts[n-1] == "clip" {
				ms.clip = true
			} else {
				ms.noGHG = true
			}
			parts = parts[:n-1]
		}
		if len(parts) < 2 || len(parts) > 3 {
			t.Fatalf("%s: setting %q: want steps/CFG[/M][/clip][/noghg] such as ddim50/3 or ddim50/6/clip", env, s)
		}
		ms.steps = parts[0]
		var err error
		if ms.cfg, err = strconv.ParseFloat(parts[1], 32); err != nil {
			t.Fatalf("%s: setting %q: %v", env, s, err)
		}
		if len(parts) == 3 {
			if ms.m, err = strconv.Atoi(parts[2]); err != nil || ms.m < 1 {
				t.Fatalf("%s: setting %q: M %q", env, s, parts[2])
			}
		}
		out = append(out, ms)
	}
	return out
}

// measureModel loads the model to measure: the built-in b, or the file
// GECA_MEASURE_MODEL names (a candidate, before it replaces b's file).
func measureModel(t *testing.T, b *Builtin) *engine.Model {
	t.Helper()
	var m *engine.Model
	var err error
	if path := os.Getenv("GECA_MEASURE_MODEL"); path != "" {
		m, _, err = ckpt.LoadModel(path, ckpt.Options{})
		t.Logf("measuring %s instead of the built-in %s", path, b.Name)
	} else {
		m, _, err = b.Load()
	}
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// measurePerClass is GECA_MEASURE_PER_CLASS, or def.
func measurePerClass(def int) int {
	if v, err := strconv.Atoi(os.Getenv("GECA_MEASURE_PER_CLASS")); err == nil && v > 1 {
		return v
	}
	return def
}

// writeMeasureGrid writes images (cell-major, one row of cols per class)
// as PREFIX-SETTING.png in GECA_MEASURE_GRIDS, when it is set.
func writeMeasureGrid(t *testing.T, prefix string, s measureSetting, images []float32, rows, cols, h, w, c int) {
	t.Helper()
	dir := os.Getenv("GECA_MEASURE_GRIDS")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, prefix+strings.ReplaceAll(s.name, "/", "-")+".png")
	if err := train.WritePNG(name, train.SampleGrid(images, rows, cols, h, w, c, 2)); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", name)
}

// mean is the mean of a per-class measure.
func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
