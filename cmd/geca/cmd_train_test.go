package main

import (
	"geca/engine/data"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"geca/engine"
	"geca/engine/ckpt"
)

// tinyVAE is the encoder fixture: 4 levels (8x downscale, as SD), 4 latent channels.
const tinyVAE = "../../engine/vae/testdata/enc_tiny"

// writeImageFolder makes a folder of two classes of small RGB images.
func writeImageFolder(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for ci, cls := range []string{"circles", "squares"} {
		if err := os.MkdirAll(filepath.Join(dir, cls), 0o755); err != nil {
			t.Fatal(err)
		}
		for k := 0; k < 3; k++ {
			img := image.NewRGBA(image.Rect(0, 0, 40, 36))
			for y := 0; y < 36; y++ {
				for x := 0; x < 40; x++ {
					img.Set(x, y, color.RGBA{uint8(5 * x), uint8(7*y + 40*k), uint8(120 * ci), 255})
				}
			}
			f, err := os.Create(filepath.Join(dir, cls, string(rune('a'+k))+".png"))
			if err != nil {
				t.Fatal(err)
			}
			if err := png.Encode(f, img); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
	}
	return dir
}

func TestTrainWithVAE(t *testing.T) {
	dir := writeImageFolder(t)
	out := filepath.Join(t.TempDir(), "m.safetensors")
	code, _, stderr := capture(t, "train", "--images", dir, "--vae", tinyVAE, "--size", "32", "--config", "tiny",
		"--steps", "2", "--batch", "2", "--preview-minutes", "0", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"encoding " + dir, "32x32 images to 4x4x4 latents", "encoded 6 images"} {
		t.Run(want, func(t *testing.T) {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr)
			}
		})
	}
	c := trainedConfig(t, out)
	if !c.Latent || c.InChannels != 4 || c.GridH != 4 || c.GridW != 4 || c.NumClasses != 2 {
		t.Errorf("trained model config %+v: want a latent model on a 4x4x4 grid with 2 classes", c)
	}
}

func TestTrainVAEErrors(t *testing.T) {
	dir := writeImageFolder(t)
	out := filepath.Join(t.TempDir(), "m.safetensors")
	args := func(extra ...string) []string {
		return append([]string{"train", "--config", "tiny", "--steps", "1", "--out", out}, extra...)
	}
	// A decoder-only file: the decoder fixture without its encoder stub.
	tensors, names, meta, err := ckpt.LoadSafetensors("../../engine/vae/testdata/tiny_ldm/model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, k := range names {
		if strings.Contains(k, "encoder.") {
			delete(tensors, k)
			continue
		}
		kept = append(kept, k)
	}
	decOnly := filepath.Join(t.TempDir(), "decoder.safetensors")
	if err := ckpt.SaveSafetensors(decOnly, tensors, kept, meta); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{args("--data", "fashion-mnist", "--vae", tinyVAE), 2, "--vae FILE encodes the images of --images DIR"},
		{args("--latents", dir, "--vae", tinyVAE), 2, "needs --images"},
		{args("--images", dir, "--vae", tinyVAE, "--size", "36"), 2, "--size 36: with --vae it is the image size and must be a multiple of 8"},
		{args("--images", dir, "--vae-sample"), 2, "--vae-sample needs --vae"},
		{args("--images", dir, "--vae-flip"), 2, "--vae-flip needs --vae"},
		{args("--images", dir, "--vae", filepath.Join(dir, "nope.safetensors"), "--size", "32"), 1, "nope.safetensors: no such file"},
		{args("--images", dir, "--vae", decOnly, "--size", "32"), 1, "decoder.safetensors: no VAE encoder tensors"},
		{args("--images", t.TempDir(), "--vae", tinyVAE, "--size", "32"), 1, "no class subfolders"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, stderr := capture(t, c.args...)
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Errorf("geca %s: exit %d, stderr %q; want exit %d and %q", strings.Join(c.args, " "), code, stderr, c.code, c.want)
			}
		})
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed run wrote %s", out)
	}
}

// --emoji LIST alone trains on those emoji (a few steps of a tiny model on
// 8x8 renderings); with another --data it is refused before anything runs.
func TestTrainEmojiFlag(t *testing.T) {
	if _, err := os.Stat(data.EmojiFontPath); err != nil {
		t.Skipf("no colour emoji font (Debian: fonts-noto-color-emoji): %v", err)
	}
	out := filepath.Join(t.TempDir(), "e.safetensors")
	code, _, stderr := capture(t, "train", "--emoji", "🦎,🍎", "--size", "8", "--config", "tiny", "--steps", "2", "--batch", "2",
		"--preview-minutes", "0", "--out", out)
	if code != 0 || !strings.Contains(stderr, "emoji 🦎 🍎 (2 classes") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if c := trainedConfig(t, out); c.InChannels != 3 || c.NumClasses != 2 || c.GridH != 8 {
		t.Fatalf("trained config %+v: want 8x8 RGB, 2 classes", c)
	}
	code, _, stderr = capture(t, "train", "--emoji", "🦎", "--data", "fashion-mnist", "--out", filepath.Join(t.TempDir(), "f.safetensors"))
	if code != 2 || !strings.Contains(stderr, "cannot go with --data fashion-mnist") {
		t.Fatalf("--emoji with --data fashion-mnist: exit %d, %s", code, stderr)
	}
}

// --resume continues a model at another M and update rate when asked; flags that would change
// the model's shape are refused, not ignored.
func TestTrainResumeFlags(t *testing.T) {
	common, out, stderr := firstTinyRun(t, "--min-snr", "5", "--lr", "1e-3", "--carry", "0.5")
	if !strings.Contains(stderr, "min-SNR 5,") {
		t.Fatalf("first run: %s", stderr)
	}
	code, _, stderr := capture(t, append(common, "--resume", out, "--M", "5", "--update-rate", "1", "--steps", "2")...)
	if code != 0 || !strings.Contains(stderr, " M 5 at update rate 1,") {
		t.Fatalf("resume --M 5 --update-rate 1: exit %d: %s", code, stderr)
	}
	// the recipe is the saved run's, not the flags' defaults, unless a flag says otherwise
	if !strings.Contains(stderr, "batch 2, lr 0.001, carry 0.5 (1 … 2 calls), min-SNR 5, step 1") {
		t.Fatalf("resume without recipe flags: %s", stderr)
	}
	code, _, stderr = capture(t, append(common, "--resume", out, "--lr", "2e-4", "--min-snr", "0", "--steps", "3")...)
	if code != 0 || !strings.Contains(stderr, "batch 2, lr 0.0002, carry 0.5 (1 … 2 calls), min-SNR 0, step 2") {
		t.Fatalf("resume --lr 2e-4 --min-snr 0: exit %d: %s", code, stderr)
	}
	code, _, stderr = capture(t, append(common, "--resume", out, "--carry-calls", "4", "--steps", "4")...)
	if code != 0 || !strings.Contains(stderr, "carry 0.5 (1 … 4 calls), min-SNR 0, step 3") {
		t.Fatalf("resume --carry-calls 4: exit %d: %s", code, stderr)
	}
	if c := trainedConfig(t, out); c.M != 5 || c.UpdateRate != 1 {
		t.Fatalf("model resumed at --M 5 --update-rate 1 has M %d, update rate %g", c.M, c.UpdateRate)
	}
	for _, flag := range [][]string{{"--config", "tiny"}, {"--hidden", "8"}, {"--embed", "64"}, {"--heads", "2"}, {"--pos-code", "2d"}, {"--prediction", "v"}} {
		code, _, stderr = capture(t, append(append(common, "--resume", out, "--steps", "3"), flag...)...)
		if code != 2 || !strings.Contains(stderr, flag[0]+" cannot change a resumed model") {
			t.Errorf("resume %s: exit %d: %s", flag, code, stderr)
		}
	}
}

// --embed, --heads, --mlp and --hidden resize a preset's block; the model's
// name says how it differs, and a size the block cannot have is refused.
func TestTrainBlockSizeFlags(t *testing.T) {
	dir := writeImageFolder(t)
	out := filepath.Join(t.TempDir(), "m.safetensors")
	common := []string{"train", "--images", dir, "--size", "8", "--batch", "2", "--steps", "1", "--preview-minutes", "0", "--config", "tiny", "--out", out}
	code, _, stderr := capture(t, append(common, "--embed", "48", "--heads", "3", "--mlp", "40", "--hidden", "5")...)
	if code != 0 || !strings.Contains(stderr, "GeCA-tiny-D48-H3-MLP40-Ch5 8x8 C_in 1 C_h 5 D 48 heads 3 MLP 40") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if c := trainedConfig(t, out); c.EmbedDim != 48 || c.Heads != 3 || c.MLPDim != 40 || c.HiddenChannels != 5 {
		t.Fatalf("trained config %+v: want D 48, 3 heads, MLP 40, C_h 5", c)
	}
	// the 2-D positional code and v-prediction are kept in the file and
	// named; the update rate is kept
	code, _, stderr = capture(t, append(common, "--pos-code", "2d", "--prediction", "v", "--update-rate", "1")...)
	if code != 0 || !strings.Contains(stderr, "GeCA-tiny-2D-V 8x8") || !strings.Contains(stderr, "at update rate 1, 2-D positional code, v-prediction") {
		t.Fatalf("--pos-code 2d --prediction v --update-rate 1: exit %d: %s", code, stderr)
	}
	if c := trainedConfig(t, out); c.PosCode != engine.PosCode2D || c.Prediction != engine.PredictV || c.UpdateRate != 1 {
		t.Fatalf("--pos-code 2d --prediction v --update-rate 1: trained config %+v", c)
	}
	for _, c := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--embed", "50", "--heads", "3"}, "embed_dim 50 is not divisible by heads 3"},
		{[]string{"--mlp", "-1"}, "--mlp -1: want 0 or more"},
		{[]string{"--lr", "NaN"}, "--lr NaN: want above 0"},
		{[]string{"--batch", "0"}, "--batch 0: want 1 … "},
		{[]string{"--min-snr", "-1"}, "--min-snr -1: want γ > 0"},
		{[]string{"--min-snr", "NaN"}, "--min-snr NaN"},
		{[]string{"--carry", "NaN"}, "--carry NaN: want 0 … 1"},
		{[]string{"--carry", "1.5"}, "--carry 1.5: want 0 … 1"},
		{[]string{"--carry-calls", "0"}, "--carry-calls 0: want 1 … 50"},
		{[]string{"--update-rate", "1.5"}, "--update-rate 1.5: want 0 < rate ≤ 1"},
		{[]string{"--update-rate", "NaN"}, "--update-rate NaN: want 0 < rate ≤ 1"},
		{[]string{"--pos-code", "3d"}, `--pos-code "3d": want 1d or 2d`},
		{[]string{"--prediction", "x0"}, `--prediction "x0": want eps or v`},
		{[]string{"--pos-code", "2d", "--embed", "30"}, "embed_dim 30 is not divisible by 4, as the 2-D positional code needs"},
	} {
		code, _, stderr := capture(t, append(common, c.flags...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, %s; want exit 2 and %q", c.flags, code, stderr, c.want)
		}
	}
}

// --mlp with --resume widens the resumed model's MLP.
func TestTrainResumeWiderMLP(t *testing.T) {
	common, out, _ := firstTinyRun(t)
	code, _, stderr := capture(t, append(common, "--resume", out, "--mlp", "96", "--steps", "2")...)
	if code != 0 || !strings.Contains(stderr, " MLP 96 ") {
		t.Fatalf("resume --mlp 96: exit %d: %s", code, stderr)
	}
	if mlp := trainedConfig(t, out).MLPDim; mlp != 96 {
		t.Fatalf("model resumed with --mlp 96 has MLP %d", mlp)
	}
	code, _, stderr = capture(t, append(common, "--resume", out, "--mlp", "32", "--steps", "3")...)
	if code != 1 || !strings.Contains(stderr, "can grow, not shrink to 32") {
		t.Fatalf("resume --mlp 32: exit %d: %s", code, stderr)
	}
}

// trainedConfig is the config of the model file a training run wrote.
func trainedConfig(t *testing.T, path string) engine.Config {
	t.Helper()
	m, _, err := ckpt.LoadModel(path, ckpt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m.Cfg
}

// firstTinyRun trains a tiny model for one step on a small image folder,
// with extra flags, for the resume tests: the flags every later run repeats
// (common), the model file and the run's stderr.
func firstTinyRun(t *testing.T, extra ...string) (common []string, out, stderr string) {
	t.Helper()
	out = filepath.Join(t.TempDir(), "m.safetensors")
	common = []string{"train", "--images", writeImageFolder(t), "--size", "8", "--batch", "2", "--preview-minutes", "0", "--out", out}
	code, _, stderr := capture(t, append(append(common, "--config", "tiny", "--steps", "1"), extra...)...)
	if code != 0 {
		t.Fatalf("first run: exit %d: %s", code, stderr)
	}
	return common, out, stderr
}
