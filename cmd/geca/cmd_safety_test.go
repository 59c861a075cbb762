package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"geca/internal/npy"
)

// geca decode of latents that are not finite fails (it once wrote a black
// PNG and exited 0), before any VAE is loaded; a shape that overflows is a
// clean error; decode never writes over its input.
func TestDecodeRefusesBadLatents(t *testing.T) {
	dir := t.TempDir()
	nan := filepath.Join(dir, "nan.npy")
	v := make([]float32, 2*4*3*3)
	for i := range v {
		v[i] = float32(math.NaN())
	}
	if err := npy.WriteFile(nan, []int{2, 4, 3, 3}, v); err != nil {
		t.Fatal(err)
	}
	hostile := filepath.Join(dir, "hostile.npy")
	h := "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4, 4611686018427387905, 1), }"
	b := append([]byte("\x93NUMPY\x01\x00"), byte(len(h)), byte(len(h)>>8))
	b = append(append(b, h...), make([]byte, 16)...)
	os.WriteFile(hostile, b, 0o644)
	out := filepath.Join(dir, "o.png")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--latent", nan, "--out", out}, 1, "latent 0, channel 0, row 0, column 0 is NaN"},
		{[]string{"--latent", hostile, "--out", out}, 1, "too large"},
		{[]string{"--latent", nan, "--npy", nan}, 2, "is the input"},
		{[]string{"--latent", nan, "--out", "/nonexistent/o.png"}, 2, "does not exist"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, stderr := capture(t, append([]string{"decode", "--approx"}, c.args...)...)
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Errorf("%v: exit %d, %q; want exit %d and %q", c.args, code, stderr, c.code, c.want)
			}
		})
	}
	if fileExists(out) {
		t.Error("an image was written")
	}
}

// geca denoise bounds --M and --t, and refuses to write over its inputs.
func TestDenoiseBounds(t *testing.T) {
	dir := t.TempDir()
	ck := writeTinyCheckpoint(t, dir, true)
	st := filepath.Join(dir, "st.npy")
	npy.WriteFile(st, []int{1, 18, 8, 8}, make([]float32, 18*64))
	out := filepath.Join(dir, "o.npy")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--M", "20000", "--t", "10"}, "--M 20000 out of range"},
		{[]string{"--t", "5000"}, "from 0 to 999"},
		{[]string{"--t", "-1"}, "from 0 to 999"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			args := append([]string{"denoise", "--ckpt", ck, "--state", st, "--class", "1", "--out", out}, c.args...)
			code, _, stderr := capture(t, args...)
			if code != 2 || !strings.Contains(stderr, c.want) {
				t.Errorf("%v: exit %d, %q; want exit 2 and %q", c.args, code, stderr, c.want)
			}
		})
	}
	for _, o := range []string{ck, st} {
		t.Run(o, func(t *testing.T) {
			code, _, stderr := capture(t, "denoise", "--ckpt", ck, "--state", st, "--class", "1", "--t", "5", "--out", o)
			if code != 2 || !strings.Contains(stderr, "is the input") {
				t.Errorf("--out %s: exit %d, %q", o, code, stderr)
			}
		})
	}
}

// Every command that loads models or data takes --max-memory, and refuses
// what would pass it, with the limit in the message.
func TestMaxMemoryFlag(t *testing.T) {
	dir := t.TempDir()
	ck := writeTinyCheckpoint(t, dir, true)
	code, _, stderr := capture(t, "sample", "--ckpt", ck, "--n", "4096", "--steps", "3", "--out", filepath.Join(dir, "o.png"), "--max-memory", "1M")
	if code != 1 || !strings.Contains(stderr, "memory limit of 1.0 MB") {
		t.Errorf("sample over the limit: exit %d: %s", code, stderr)
	}
	code, _, stderr = capture(t, "sample", "--ckpt", ck, "--out", filepath.Join(dir, "o.png"), "--max-memory", "lots")
	if code != 2 || !strings.Contains(stderr, "--max-memory") {
		t.Errorf("a bad --max-memory: exit %d: %s", code, stderr)
	}
	for _, cmd := range []string{"sample", "denoise", "decode", "encode", "train", "inspect", "convert", "worker"} {
		t.Run(cmd, func(t *testing.T) {
			_, out, _ := capture(t, "help", cmd)
			if !strings.Contains(out, "-max-memory") {
				t.Errorf("geca %s has no --max-memory", cmd)
			}
		})
	}
}

// A VAE folder whose config.json is a link to /dev/zero is refused before
// anything reads it.
func TestVAEConfigLinkRefused(t *testing.T) {
	dir := t.TempDir()
	vdir := filepath.Join(dir, "vae")
	os.Mkdir(vdir, 0o755)
	os.Symlink("/dev/zero", filepath.Join(vdir, "config.json"))
	lat := filepath.Join(dir, "l.npy")
	npy.WriteFile(lat, []int{1, 4, 2, 2}, make([]float32, 16))
	code, _, stderr := capture(t, "decode", "--vae", vdir, "--latent", lat, "--out", filepath.Join(dir, "o.png"))
	if code != 1 || !strings.Contains(stderr, "device") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}
