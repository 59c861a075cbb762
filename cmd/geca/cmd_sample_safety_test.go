package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"geca/engine"
	"geca/engine/ckpt"
	"geca/internal/npy"
)

// Outputs are checked before any work: a folder that does not exist, the
// checkpoint itself (by name, symbolic or hard link), two outputs on one
// file. Each is a usage error, at once, and the checkpoint is untouched.
func TestSampleChecksOutputsFirst(t *testing.T) {
	dir := t.TempDir()
	ck := writeTinyCheckpoint(t, dir, true)
	orig, _ := os.ReadFile(ck)
	link, hard := filepath.Join(dir, "link.safetensors"), filepath.Join(dir, "hard.safetensors")
	os.Symlink(ck, link)
	os.Link(ck, hard)
	// Many steps: reaching the sampler would take long.
	base := []string{"sample", "--ckpt", ck, "--steps", "1000", "--n", "64", "--quiet"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--out", "/nonexistent/x.png"}, "does not exist"},
		{[]string{"--out", ck}, "is the input"},
		{[]string{"--npy", ck}, "is the input"},
		{[]string{"--gif", link}, "is the input"},
		{[]string{"--out", hard}, "is the input"},
		{[]string{"--out", filepath.Join(dir, "a.png"), "--npy", filepath.Join(dir, "a.png")}, "both name"},
		{[]string{"--out", dir}, "is a folder"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			start := time.Now()
			code, _, stderr := capture(t, append(slices.Clone(base), c.args...)...)
			if code != 2 || !strings.Contains(stderr, c.want) {
				t.Errorf("%v: exit %d, %q; want exit 2 and %q", c.args, code, stderr, c.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("%v: refused after %v: the check must come before the work", c.args, d)
			}
		})
	}
	if now, _ := os.ReadFile(ck); !bytes.Equal(now, orig) {
		t.Fatal("the checkpoint changed")
	}
}

// Ctrl-C in geca sample keeps the rows of samples finished so far, and the
// same command again computes only the rest: the result equals an
// uninterrupted run. The real process is interrupted, with SIGINT.
func TestSampleResumesAfterInterrupt(t *testing.T) {
	dir := t.TempDir()
	ck := writeTinyCheckpoint(t, dir, true)
	out := filepath.Join(dir, "x.npy")
	args := []string{"sample", "--ckpt", ck, "--n", "2", "--steps", "200", "--class", "1", "--seed", "5", "--M", "1,40", "--npy", out, "--quiet"}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "GECA_TEST_MAIN=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	partial := out + partialSuffix
	deadline := time.Now().Add(30 * time.Second)
	for !fileExists(partial) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if err == nil || !strings.Contains(stderr.String(), "interrupted: 1 of 2 row(s)") || !fileExists(partial) || fileExists(out) {
		t.Fatalf("interrupted run: %v, stderr %q, partial file kept: %v", err, stderr.String(), fileExists(partial))
	}

	// The same command again (without --quiet, to see its notes).
	code, _, errOut := capture(t, args[:len(args)-1]...)
	if code != 0 || !strings.Contains(errOut, "resuming: 1 of 2 row(s)") {
		t.Fatalf("resumed run: exit %d: %s", code, errOut)
	}
	got, err := npy.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if fileExists(partial) {
		t.Error("the partial file is left after the outputs were written")
	}
	// Row 0 (M=1) came from the partial file; it must be what a run of M=1
	// alone makes.
	ref := filepath.Join(dir, "ref.npy")
	refArgs := []string{"sample", "--ckpt", ck, "--n", "2", "--steps", "200", "--class", "1", "--seed", "5", "--M", "1", "--npy", ref, "--quiet"}
	if code, _, e := capture(t, refArgs...); code != 0 {
		t.Fatalf("reference run: %s", e)
	}
	want, err := npy.ReadFile(ref)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Data[:len(want.Data)], want.Data) {
		t.Error("the resumed row differs from the same row computed alone")
	}
}

// A partial file of other settings is not resumed (and is replaced).
func TestSampleIgnoresOtherPartials(t *testing.T) {
	dir := t.TempDir()
	ck := writeTinyCheckpoint(t, dir, true)
	out := filepath.Join(dir, "x.npy")
	key := sampleKey{Checkpoint: "elsewhere", N: 2, M: []int{1}, Shape: [3]int{4, 8, 8}}
	if err := savePartial(out+partialSuffix, key, [][]float32{make([]float32, 2*4*8*8)}); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := capture(t, "sample", "--ckpt", ck, "--n", "2", "--steps", "3", "--M", "1", "--npy", out)
	if code != 0 || strings.Contains(stderr, "resuming") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	a, err := npy.ReadFile(out)
	if err != nil || slices.Equal(a.Data, make([]float32, len(a.Data))) {
		t.Fatalf("the samples are the other partial's zeros: %v", err)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// brokenCheckpoint writes a model whose final layer's weights are all w.
func brokenCheckpoint(t *testing.T, dir string, w float32) string {
	t.Helper()
	cfg := engine.Config{Name: "broken", GridH: 8, GridW: 8, InChannels: 4, HiddenChannels: 6, EmbedDim: 16, Heads: 2,
		MLPDim: 24, NumClasses: 3, M: 4, UpdateRate: 1, Latent: true}
	m, err := engine.NewRandomModel(cfg, 3, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	ts := m.Tensors()
	fw := ts["final_layer.linear.weight"].Data().([]float32)
	for i := range fw {
		fw[i] = w
	}
	js, _ := json.Marshal(cfg)
	ck := filepath.Join(dir, "broken.safetensors")
	if err := ckpt.SaveSafetensors(ck, ts, m.Names(), map[string]string{ckpt.MetaConfig: string(js)}); err != nil {
		t.Fatal(err)
	}
	return ck
}

// A checkpoint whose weights make values overflow is stopped where they
// break, naming the timestep and the cell update (the grid overflows) or
// the diffusion step (the latent does); geca sample fails and writes
// nothing.
func TestSampleStopsWhereValuesBreak(t *testing.T) {
	for ci, c := range []struct {
		w    float32
		want []string
	}{
		{3e38, []string{"timestep", "update", "finite"}},                // every sum overflows in the first update
		{1e37, []string{"non-finite values began at timestep", "step"}}, // the grid stays finite, the step does not
	} {
		t.Run(fmt.Sprint(ci), func(t *testing.T) {
			dir := t.TempDir()
			ck := brokenCheckpoint(t, dir, c.w)
			out := filepath.Join(dir, "x.npy")
			code, _, stderr := capture(t, "sample", "--ckpt", ck, "--n", "1", "--steps", "5", "--npy", out, "--quiet")
			if code != 1 {
				t.Errorf("weights %g: exit %d: %s", c.w, code, stderr)
			}
			for _, want := range c.want {
				if !strings.Contains(stderr, want) {
					t.Errorf("weights %g: %q lacks %q", c.w, stderr, want)
				}
			}
			if fileExists(out) {
				t.Errorf("weights %g: samples were written", c.w)
			}
		})
	}
}
