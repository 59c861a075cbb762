package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// ckptData holds the checkpoint fixtures of engine/ckpt (make_fixtures.py).
const ckptData = "../../engine/ckpt/testdata/"

func TestInspectCommand(t *testing.T) {
	code, out, errOut := capture(t, "inspect", ckptData+"tiny.pt")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"PyTorch zip checkpoint",
		"model (27 tensors, 8,756 parameters), ema (27 tensors, 8,756 parameters), opt (optimizer state: 27 parameters, 81 tensors, 17,539 values; not loaded), args (20 training arguments)",
		"ema and model both present; loaded ema",
		"parameters: 8,756 (ema)",
		"config:     GeCA-tiny: grid 8x8, C_in 4, C_out 8, C_h 4, D 16, heads 2 (head dim 8), MLP 8, classes 3, M 12",
		"model:      loads",
		`  model              "GeCA-tiny"`,
		"  image_size         64",
		"lr=0.0001",
		"  module.transformer.layers.0.0.fn.to_qkv.weight    (48, 16)       float32",
	} {
		t.Run(want, func(t *testing.T) {
			if !strings.Contains(out, want) {
				t.Errorf("inspect output lacks %q:\n%s", want, out)
			}
		})
	}
	code, out, _ = capture(t, "inspect", ckptData+"tiny_fp16.pt", "--weights", "model")
	if code != 0 || !strings.Contains(out, "loaded model") || !strings.Contains(out, "final_layer.linear.bias  ") || !strings.Contains(out, "float16") {
		t.Errorf("fp16 inspect (exit %d):\n%s", code, out)
	}
	code, out, _ = capture(t, "inspect", ckptData+"tiny_nan.pt")
	if code != 0 || !strings.Contains(out, "does NOT load") || !strings.Contains(out, "final_layer.linear.bias") {
		t.Errorf("NaN inspect (exit %d):\n%s", code, out)
	}
	code, out, _ = capture(t, "inspect", ckptData+"tiny_bare.pt")
	if code != 0 || !strings.Contains(out, "a bare state_dict") || !strings.Contains(out, "cannot derive one") {
		t.Errorf("bare inspect (exit %d):\n%s", code, out)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"inspect"}, 2, "a checkpoint FILE is required"},
		{[]string{"inspect", "a", "b"}, 2, `unexpected argument "b"`},
		{[]string{"inspect", ckptData + "tiny.pt", "--weights", "best"}, 2, `--weights "best"`},
		{[]string{"inspect", ckptData + "evil_os_system.pt"}, 1, "refused global os.system"},
		{[]string{"inspect", ckptData + "nope.pt"}, 1, "nope.pt"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, errOut := capture(t, c.args...)
			if code != c.code || !strings.Contains(errOut, c.want) {
				t.Errorf("geca %s: exit %d, stderr %q; want exit %d and %q", strings.Join(c.args, " "), code, errOut, c.code, c.want)
			}
		})
	}
}

// A trainer's state file opened as a model says what it is and what to
// open instead, rather than listing every model tensor as missing; inspect
// still describes it.
func TestTrainingStateIsNotAModel(t *testing.T) {
	state := filepath.Join("..", "..", "assets", "geca-fmnist.train.safetensors")
	want := "is a training state, for geca train --resume, not a model"
	code, _, stderr := capture(t, "sample", "--ckpt", state, "--n", "1", "--steps", "ddim2", "--out", filepath.Join(t.TempDir(), "x.png"))
	if code != 1 || !strings.Contains(stderr, want) || strings.Contains(stderr, "missing tensor") {
		t.Errorf("sample: exit %d, %q; want exit 1 and %q", code, stderr, want)
	}
	code, stdout, stderr := capture(t, "inspect", state)
	if code != 0 || !strings.Contains(stdout, "model:      none: "+state+" "+want) || !strings.Contains(stdout, "GeCA-FMNIST") {
		t.Errorf("inspect: exit %d, %q %q", code, stdout, stderr)
	}
}
