package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"geca/assets"
)

// gecaProcess starts the test binary as geca with args.
func gecaProcess(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "GECA_TEST_MAIN=1")
	return cmd
}

var setArgs = []string{"sample-set", "--num-samples", "7", "--steps", "3", "--seed", "5"}

// Three shards made by three processes, packed, equal a single-process run
// bit for bit.
func TestSampleSetShards(t *testing.T) {
	root := t.TempDir()
	whole := filepath.Join(root, "whole.npz")
	code, _, stderr := capture(t, append(setArgs, "--out", filepath.Join(root, "all"), "--npz", whole)...)
	if code != 0 {
		t.Fatalf("single run: exit %d: %s", code, stderr)
	}
	var procs []*exec.Cmd
	var dirs []string
	for k := 0; k < 3; k++ {
		dir := filepath.Join(root, "shard"+string(rune('0'+k)))
		dirs = append(dirs, dir)
		p := gecaProcess(append(setArgs, "--out", dir, "--shard", "auto")...)
		p.Env = append(p.Env, "SLURM_ARRAY_TASK_ID="+string(rune('1'+k)), "SLURM_ARRAY_TASK_MIN=1", "SLURM_ARRAY_TASK_COUNT=3")
		var errb bytes.Buffer
		p.Stderr = &errb
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
		defer func(k int) {
			if t.Failed() {
				t.Logf("shard %d: %s", k, errb.String())
			}
		}(k)
	}
	for k, p := range procs {
		if err := p.Wait(); err != nil {
			t.Fatalf("shard %d: %v", k, err)
		}
	}
	merged := filepath.Join(root, "merged.npz")
	code, _, stderr = capture(t, "sample-set", "--pack", strings.Join(dirs, ","), "--npz", merged)
	if code != 0 {
		t.Fatalf("pack: exit %d: %s", code, stderr)
	}
	a, _ := os.ReadFile(whole)
	b, _ := os.ReadFile(merged)
	if len(a) < 7*28*28*3 || !bytes.Equal(a, b) {
		t.Fatalf("merged set (%d bytes) differs from the single run (%d bytes)", len(b), len(a))
	}
	// Packing only two shards is refused.
	code, _, stderr = capture(t, "sample-set", "--pack", strings.Join(dirs[:2], ","), "--npz", filepath.Join(root, "part.npz"))
	if code == 0 || !strings.Contains(stderr, "missing") {
		t.Errorf("partial pack: exit %d: %s", code, stderr)
	}
}

// kill -9 in the middle of a run loses at most the samples in flight; the
// rerun finishes the set, which equals an uninterrupted run.
func TestSampleSetResumeAfterKill(t *testing.T) {
	root := t.TempDir()
	args := []string{"sample-set", "--num-samples", "12", "--steps", "4", "--seed", "9"}
	code, _, stderr := capture(t, append(args, "--out", filepath.Join(root, "ref"), "--npz", filepath.Join(root, "ref.npz"))...)
	if code != 0 {
		t.Fatalf("reference: exit %d: %s", code, stderr)
	}
	dir := filepath.Join(root, "killed")
	p := gecaProcess(append(args, "--out", dir)...)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill once some samples are written.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if ents, _ := filepath.Glob(filepath.Join(dir, "0*.png")); len(ents) >= 3 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.Process.Signal(syscall.SIGKILL)
	p.Wait()
	done, _ := filepath.Glob(filepath.Join(dir, "0*.png"))
	code, _, stderr = capture(t, append(args, "--out", dir, "--npz", filepath.Join(root, "resumed.npz"))...)
	if code != 0 {
		t.Fatalf("resume: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "done)") {
		t.Errorf("resume does not say how many were done: %s", stderr)
	}
	a, _ := os.ReadFile(filepath.Join(root, "ref.npz"))
	b, _ := os.ReadFile(filepath.Join(root, "resumed.npz"))
	if !bytes.Equal(a, b) {
		t.Fatalf("resumed set differs from an uninterrupted one (%d samples were done at the kill)", len(done))
	}
	t.Logf("%d of 12 samples were written when the process was killed", len(done))
}

// A built-in model's set is drawn with its measured defaults (GHG too)
// unless a flag says otherwise.
func TestSampleSetBuiltinDefaults(t *testing.T) {
	dir := t.TempDir()
	want := fmt.Sprintf("CFG %g, M 8, GHG %v", assets.Emoji.Sampler.CFG, assets.Emoji.Sampler.GHG)
	code, _, stderr := capture(t, "sample-set", "--model", "emoji", "--num-samples", "1", "--steps", "ddim2", "--out", filepath.Join(dir, "a"))
	if code != 0 || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, %q; want %q", code, stderr, want)
	}
	ghg := onOff(!assets.Emoji.Sampler.GHG)
	want = fmt.Sprintf("GHG %v", !assets.Emoji.Sampler.GHG)
	code, _, stderr = capture(t, "sample-set", "--model", "emoji", "--num-samples", "1", "--steps", "ddim2", "--ghg", ghg, "--out", filepath.Join(dir, "b"))
	if code != 0 || !strings.Contains(stderr, want) {
		t.Errorf("--ghg %s: exit %d, %q; want %q", ghg, code, stderr, want)
	}
}

func TestSampleSetErrors(t *testing.T) {
	dir := t.TempDir()
	capture(t, "sample-set", "--num-samples", "2", "--steps", "2", "--out", filepath.Join(dir, "a"))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"sample-set", "--out", dir}, "--num-samples 0 out of range"},
		{[]string{"sample-set", "--num-samples", "3"}, "--out DIR is required"},
		{[]string{"sample-set", "--num-samples", "2", "--steps", "3", "--out", filepath.Join(dir, "a")}, "other settings (steps 2, now 3)"},
		{[]string{"sample-set", "--num-samples", "2", "--steps", "2", "--clip-x0", "--out", filepath.Join(dir, "a")}, "other settings (clip_x0 false, now true)"},
		{[]string{"sample-set", "--num-samples", "2", "--out", filepath.Join(dir, "b"), "--shard", "0/2", "--npz", filepath.Join(dir, "x.npz")}, "pack the shards"},
		{[]string{"sample-set", "--pack", filepath.Join(dir, "a")}, "--pack needs --npz"},
		{[]string{"sample-set", "--num-samples", "2", "--out", dir + "/c", "--vae", "x"}, "pixel-space model"},
		{[]string{"sample-set", "--num-samples", "2", "--out", dir + "/d", "--ghg", "maybe"}, "want on or off"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, stderr := capture(t, c.args...)
			if code == 0 || !strings.Contains(stderr, c.want) {
				t.Errorf("%v: exit %d, %q; want %q", c.args, code, stderr, c.want)
			}
		})
	}
}
