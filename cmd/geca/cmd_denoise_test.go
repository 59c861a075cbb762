package main

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"geca/engine"
	"geca/engine/ckpt"
	"geca/internal/npy"

	"gorgonia.org/tensor"
)

const goldenTiny = "../../engine/testdata/golden_tiny.npz"

// geca denoise with the golden fixture's weights, state, labels and masks
// reproduces the PyTorch state after 12 updates.
func TestDenoiseGolden(t *testing.T) {
	g, err := npy.ReadNPZ(goldenTiny)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in, y, masks, out := filepath.Join(dir, "in.npy"), filepath.Join(dir, "y.npy"), filepath.Join(dir, "masks.npy"), filepath.Join(dir, "out.npy")
	s0 := g["upd_s0"]
	if err := npy.WriteFile(in, s0.Shape, s0.Data); err != nil {
		t.Fatal(err)
	}
	if err := npy.WriteFile(y, g["upd_y"].Shape, g["upd_y"].Data); err != nil {
		t.Fatal(err)
	}
	u := g["upd_u"]
	m := make([]float32, len(u.Data))
	for i, v := range u.Data {
		m[i] = float32(math.Floor(float64(v + 0.5)))
	}
	if err := npy.WriteFile(masks, u.Shape, m); err != nil {
		t.Fatal(err)
	}
	tt := g["upd_t"].Data
	ts := fmt.Sprintf("%d,%d", int(tt[0]), int(tt[1]))
	code, _, stderr := capture(t, "denoise", "--ckpt", goldenTiny, "--state", in, "--t", ts, "--y", y, "--masks", masks, "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got, err := npy.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := g["upd_s12"]
	if fmt.Sprint(got.Shape) != fmt.Sprint(want.Shape) {
		t.Fatalf("shape %v, want %v", got.Shape, want.Shape)
	}
	var num, den float64
	for i := range want.Data {
		d := float64(got.Data[i] - want.Data[i])
		num += d * d
		den += float64(want.Data[i]) * float64(want.Data[i])
	}
	if e := math.Sqrt(num / den); !(e <= 1e-4) {
		t.Errorf("relative error %g after 12 updates", e)
	}

	// The same weights from a .safetensors file with the config in its metadata.
	st := filepath.Join(dir, "w.safetensors")
	tensors := map[string]*tensor.Dense{}
	var names []string
	for k, v := range g {
		if name, ok := strings.CutPrefix(k, "w/"); ok {
			tensors[name] = tensor.New(tensor.WithShape(v.Shape...), tensor.WithBacking(v.Data))
			names = append(names, name)
		}
	}
	cf := g["config"].Data
	cfg := engine.Config{Name: "tiny", GridH: int(cf[0]), GridW: int(cf[1]), InChannels: int(cf[2]), HiddenChannels: int(cf[3]),
		EmbedDim: int(cf[4]), Heads: int(cf[5]), MLPDim: int(cf[6]), NumClasses: int(cf[7]), M: 12, UpdateRate: 0.5}
	js, _ := json.Marshal(cfg)
	if err := ckpt.SaveSafetensors(st, tensors, names, map[string]string{ckpt.MetaConfig: string(js)}); err != nil {
		t.Fatal(err)
	}
	out4 := filepath.Join(dir, "o4.npy")
	if code, _, stderr := capture(t, "denoise", "--ckpt", st, "--state", in, "--t", ts, "--y", y, "--masks", masks, "--out", out4); code != 0 {
		t.Fatalf("safetensors: exit %d: %s", code, stderr)
	}
	if o4, _ := npy.ReadFile(out4); fmt.Sprint(o4.Data) != fmt.Sprint(got.Data) {
		t.Error("safetensors weights gave a different result from the .npz weights")
	}

	// Random masks from a seed are reproducible; --update-rate 1 runs unmasked.
	out2, out3 := filepath.Join(dir, "o2.npy"), filepath.Join(dir, "o3.npy")
	for _, o := range []string{out2, out3} {
		t.Run(o, func(t *testing.T) {
			if code, _, stderr := capture(t, "denoise", "--ckpt", goldenTiny, "--state", in, "--t", "5", "--class", "1", "--seed", "7", "--M", "3", "--out", o); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
		})
	}
	a, _ := npy.ReadFile(out2)
	b, _ := npy.ReadFile(out3)
	if fmt.Sprint(a.Data) != fmt.Sprint(b.Data) {
		t.Error("same seed gave different outputs")
	}
	if code, _, stderr := capture(t, "denoise", "--ckpt", goldenTiny, "--state", in, "--t", "5", "--class", "-1", "--update-rate", "1", "--M", "1", "--out", out2); code != 0 {
		t.Fatalf("unmasked: exit %d: %s", code, stderr)
	}
}

func TestDenoiseErrors(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.npy")
	bad := filepath.Join(dir, "bad.npy")
	npy.WriteFile(in, []int{1, 14, 5, 7}, make([]float32, 14*35))
	npy.WriteFile(bad, []int{1, 13, 5, 7}, make([]float32, 13*35))
	out := filepath.Join(dir, "out.npy")
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--state", in, "--t", "1", "--class", "0", "--out", out}, 2, "--ckpt"},
		{[]string{"--ckpt", goldenTiny, "--state", in, "--t", "1", "--out", out}, 2, "exactly one of --y"},
		{[]string{"--ckpt", goldenTiny, "--state", in, "--t", "x", "--class", "0", "--out", out}, 2, "not a timestep"},
		{[]string{"--ckpt", goldenTiny, "--state", in, "--t", "1", "--class", "9", "--out", out}, 2, "--class 9 out of range"},
		{[]string{"--ckpt", goldenTiny, "--state", in, "--t", "1", "--class", "0", "--update-rate", "2", "--out", out}, 2, "update-rate"},
		{[]string{"--ckpt", goldenTiny, "--state", bad, "--t", "1", "--class", "0", "--out", out}, 1, "13 channels"},
		{[]string{"--ckpt", goldenTiny, "--state", filepath.Join(dir, "none.npy"), "--t", "1", "--class", "0", "--out", out}, 1, "none.npy"},
		{[]string{"--ckpt", in, "--state", in, "--t", "1", "--class", "0", "--out", out}, 1, "unrecognised format"},
		{[]string{"--ckpt", goldenTiny, "--state", in, "--t", "1", "--y", bad, "--out", out}, 1, "want (1, 3) or (3,)"},
		{[]string{"--ckpt", goldenTiny, "--state", in, "--t", "1", "--class", "0", "--masks", in, "--out", out}, 1, "want (M, 1, 1, 5, 7)"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, stderr := capture(t, append([]string{"denoise"}, tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.msg) {
				t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, stderr, tc.code, tc.msg)
			}
		})
	}
}
