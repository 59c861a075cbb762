package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"geca/internal/npy"
)

// startListeningWorker runs `geca worker --listen 127.0.0.1:0` as a process
// and returns its address.
func startListeningWorker(t *testing.T, token string) string {
	t.Helper()
	args := []string{"worker", "--device", "cpu", "--listen", "127.0.0.1:0"}
	if token != "" {
		args = append(args, "--token", token)
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "GECA_TEST_MAIN=1", "GECA_TOKEN=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	re := regexp.MustCompile(`--engine (\S+) --token (\S+)`)
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("worker exited before listening")
			}
			if m := re.FindStringSubmatch(l); m != nil {
				if token != "" && m[2] != token {
					t.Fatalf("worker prints token %q, want %q", m[2], token)
				}
				if token == "" && len(m[2]) != 32 {
					t.Fatalf("generated token %q", m[2])
				}
				go func() {
					for range lines {
					}
				}()
				return m[1]
			}
		case <-timeout:
			t.Fatal("worker not listening after 20 s")
		}
	}
}

// fakeGPUWorker writes a script that starts this test binary as a CPU
// worker where geca-cuda is expected.
func fakeGPUWorker(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "geca-cuda")
	script := "#!/bin/sh\nGECA_TEST_MAIN=1 exec " + os.Args[0] + " worker --device cpu\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func readNPY(t *testing.T, p string) []float32 {
	t.Helper()
	a, err := npy.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return a.Data
}

func sameNPY(t *testing.T, what, a, b string) {
	t.Helper()
	x, y := readNPY(t, a), readNPY(t, b)
	if len(x) != len(y) {
		t.Fatalf("%s: %d values, want %d", what, len(x), len(y))
	}
	for i := range x {
		if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
			t.Fatalf("%s: value %d is %v, want %v", what, i, x[i], y[i])
		}
	}
}

// geca sample and geca denoise on a worker (--engine) give exactly the
// local results.
func TestCommandsOnWorker(t *testing.T) {
	dir := t.TempDir()
	ck := writeTinyCheckpoint(t, dir, true)
	addr := startListeningWorker(t, "tok-123")
	base := []string{"sample", "--ckpt", ck, "--n", "2", "--steps", "4", "--class", "1", "--seed", "4", "--cfg", "1.5"}
	local, remote := filepath.Join(dir, "local.npy"), filepath.Join(dir, "remote.npy")
	if code, _, stderr := capture(t, append(base, "--device", "cpu", "--npy", local)...); code != 0 {
		t.Fatalf("local sample: exit %d: %s", code, stderr)
	}
	code, _, stderr := capture(t, append(base, "--engine", addr, "--token", "tok-123", "--npy", remote)...)
	if code != 0 {
		t.Fatalf("sample on worker: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "computing on the worker "+addr) {
		t.Errorf("stderr does not say where it computes: %s", stderr)
	}
	sameNPY(t, "sample on worker", remote, local)

	// A wrong token is refused.
	code, _, stderr = capture(t, append(base, "--engine", addr, "--token", "nope", "--npy", remote)...)
	if code != 1 || !strings.Contains(stderr, "authentication failed") {
		t.Errorf("wrong token: exit %d: %s", code, stderr)
	}

	// denoise
	st := filepath.Join(dir, "state.npy")
	cfgC := 4 + 8 + 6
	data := make([]float32, 2*cfgC*8*8)
	for i := range data {
		data[i] = float32(math.Sin(float64(i) * 0.37))
	}
	if err := npy.WriteFile(st, []int{2, cfgC, 8, 8}, data); err != nil {
		t.Fatal(err)
	}
	dl, dr := filepath.Join(dir, "dl.npy"), filepath.Join(dir, "dr.npy")
	dbase := []string{"denoise", "--ckpt", ck, "--state", st, "--t", "30,700", "--class", "2", "--seed", "5", "--M", "5"}
	if code, _, stderr := capture(t, append(dbase, "--out", dl)...); code != 0 {
		t.Fatalf("local denoise: exit %d: %s", code, stderr)
	}
	t.Setenv("GECA_TOKEN", "tok-123")
	if code, _, stderr := capture(t, append(dbase, "--engine", addr, "--out", dr)...); code != 0 {
		t.Fatalf("denoise on worker: exit %d: %s", code, stderr)
	}
	sameNPY(t, "denoise on worker", dr, dl)
}

// --device cuda insists on a GPU worker; auto falls back to the CPU and
// says why.
func TestDeviceChoice(t *testing.T) {
	dir := t.TempDir()
	ck := writeTinyCheckpoint(t, dir, true)
	base := []string{"sample", "--ckpt", ck, "--n", "1", "--steps", "3", "--class", "1", "--seed", "4"}
	cpu := filepath.Join(dir, "cpu.npy")
	if code, _, stderr := capture(t, append(base, "--device", "cpu", "--npy", cpu)...); code != 0 {
		t.Fatalf("cpu: exit %d: %s", code, stderr)
	}
	// No GPU worker anywhere.
	t.Setenv("PATH", dir)
	t.Setenv("GECA_CUDA_WORKER", "")
	code, _, stderr := capture(t, append(base, "--device", "cuda", "--npy", filepath.Join(dir, "x.npy"))...)
	if code != 1 || !strings.Contains(stderr, "no GPU worker") {
		t.Errorf("cuda without a worker: exit %d: %s", code, stderr)
	}
	auto := filepath.Join(dir, "auto.npy")
	code, _, stderr = capture(t, append(base, "--device", "auto", "--npy", auto)...)
	if code != 0 || !strings.Contains(stderr, "computing on the CPU") || !strings.Contains(stderr, "no GPU worker") {
		t.Errorf("auto without a worker: exit %d: %s", code, stderr)
	}
	sameNPY(t, "auto on the CPU", auto, cpu)
	// A worker that turns out not to have a GPU.
	t.Setenv("GECA_CUDA_WORKER", fakeGPUWorker(t, dir))
	code, _, stderr = capture(t, append(base, "--device", "cuda", "--npy", filepath.Join(dir, "x.npy"))...)
	if code != 1 || !strings.Contains(stderr, "not a GPU") {
		t.Errorf("cuda on a CPU worker: exit %d: %s", code, stderr)
	}
	code, _, stderr = capture(t, append(base, "--npy", auto)...) // auto is the default
	if code != 0 || !strings.Contains(stderr, "not a GPU") {
		t.Errorf("auto on a CPU worker: exit %d: %s", code, stderr)
	}
	sameNPY(t, "auto after a CPU worker", auto, cpu)
	if code, _, stderr := capture(t, append(base, "--device", "tpu", "--npy", auto)...); code != 2 || !strings.Contains(stderr, `--device "tpu"`) {
		t.Errorf("--device tpu: exit %d: %s", code, stderr)
	}
}

func TestWorkerCommand(t *testing.T) {
	// This build has no GPU engine.
	code, _, stderr := capture(t, "worker", "--device", "cuda")
	if openCUDA == nil && (code != 1 || !strings.Contains(stderr, "-tags cuda")) {
		t.Errorf("worker --device cuda: exit %d: %s", code, stderr)
	}
	if code, _, stderr := capture(t, "worker", "--device", "gpu"); code != 2 {
		t.Errorf("worker --device gpu: exit %d: %s", code, stderr)
	}
	// A generated token is printed.
	startListeningWorker(t, "")
	// Over a pipe, the worker ends when its input does.
	cmd := exec.Command(os.Args[0], "worker", "--device", "cpu")
	cmd.Env = append(os.Environ(), "GECA_TEST_MAIN=1")
	cmd.Stdin = bytes.NewReader(nil)
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("worker on an empty pipe: %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("worker wrote %q without a client", out.String())
	}
}

// --precision, --tf32 and $GECA_PRECISION: bad values and contradictions
// are usage errors (exit 2), before anything starts.
func TestWorkerPrecision(t *testing.T) {
	for _, c := range []struct {
		env   string
		args  []string
		code  int
		errIn string
	}{
		{"", []string{"worker", "--device", "cpu", "--precision", "fp16"}, 2, `--precision "fp16": want fp32, tf32 or bf16`},
		{"", []string{"worker", "--device", "cuda", "--tf32", "--precision", "bf16"}, 2, "contradict"},
		{"fp16", []string{"worker", "--device", "cuda"}, 2, `$GECA_PRECISION: precision "fp16"`},
		{"fp16", []string{"worker", "--device", "auto"}, 2, `$GECA_PRECISION: precision "fp16"`},
		{"", []string{"worker", "--device", "cuda", "--cublas", "--precision", "bf16"}, 2, "cuBLAS computes in fp32: it does not go with precision bf16"},
		{"tf32", []string{"worker", "--device", "auto", "--cublas"}, 2, "cuBLAS computes in fp32: it does not go with precision tf32"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			t.Setenv("GECA_PRECISION", c.env)
			code, _, stderr := capture(t, c.args...)
			if code != c.code || !strings.Contains(stderr, c.errIn) {
				t.Errorf("GECA_PRECISION=%s geca %s: exit %d, %q; want exit %d, %q", c.env, strings.Join(c.args, " "), code, stderr, c.code, c.errIn)
			}
		})
	}
	if openCUDA == nil {
		// Good values pass the checks: this build then stops at the missing GPU engine.
		for _, args := range [][]string{{"--precision", "bf16"}, {"--tf32"}, {"--tf32", "--precision", "tf32"}, {"--cublas", "--precision", "fp32"}} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				t.Setenv("GECA_PRECISION", "tf32")
				code, _, stderr := capture(t, append([]string{"worker", "--device", "cuda"}, args...)...)
				if code != 1 || !strings.Contains(stderr, "-tags cuda") {
					t.Errorf("worker --device cuda %v: exit %d: %s", args, code, stderr)
				}
			})
		}
	}
	// Commands that open the GPU refuse a bad $GECA_PRECISION instead of
	// falling back to the CPU.
	t.Setenv("GECA_PRECISION", "fp64")
	for _, dev := range []string{"cuda", "auto"} {
		t.Run(dev, func(t *testing.T) {
			_, err := (&deviceFlags{device: dev}).open()
			var u usageError
			if !errors.As(err, &u) {
				t.Errorf("--device %s with GECA_PRECISION=fp64: %v, want a usage error", dev, err)
			}
		})
	}
	t.Setenv("GECA_PRECISION", "")
	t.Setenv("GECA_TF32", "1")
	if p, err := gpuPrecision(); p != "tf32" || err != nil {
		t.Errorf("GECA_TF32=1: precision %q, %v", p, err)
	}
	t.Setenv("GECA_PRECISION", "bf16")
	if p, err := gpuPrecision(); p != "bf16" || err != nil {
		t.Errorf("GECA_PRECISION=bf16 GECA_TF32=1: precision %q, %v", p, err)
	}

	// $GECA_CUBLAS: 1 or 0, and only with fp32.
	t.Setenv("GECA_TF32", "")
	for ci, c := range []struct {
		prec, cublas string
		want         gpuMode
		errIn        string
	}{
		{"", "1", gpuMode{"fp32", true}, ""},
		{"fp32", "0", gpuMode{"fp32", false}, ""},
		{"", "yes", gpuMode{}, `$GECA_CUBLAS="yes": want 1`},
		{"bf16", "1", gpuMode{}, "$GECA_CUBLAS and $GECA_PRECISION: cuBLAS computes in fp32"},
	} {
		t.Run(fmt.Sprint(ci), func(t *testing.T) {
			t.Setenv("GECA_PRECISION", c.prec)
			t.Setenv("GECA_CUBLAS", c.cublas)
			m, err := envGPUMode()
			var u usageError
			if c.errIn == "" && (err != nil || m != c.want) || c.errIn != "" && (!errors.As(err, &u) || !strings.Contains(err.Error(), c.errIn)) {
				t.Errorf("GECA_PRECISION=%s GECA_CUBLAS=%s: %+v, %v", c.prec, c.cublas, m, err)
			}
		})
	}
}

// Commands that compute on the CPU only take --device and say why cuda
// is not for them.
func TestCPUOnlyDevice(t *testing.T) {
	for _, cmd := range []string{"train", "encode", "decode"} {
		t.Run(cmd, func(t *testing.T) {
			code, _, stderr := capture(t, cmd, "--device", "cuda")
			if code != 2 || !strings.Contains(stderr, "geca "+cmd+" computes on the CPU only") {
				t.Errorf("geca %s --device cuda: exit %d: %s", cmd, code, stderr)
			}
			code, _, stderr = capture(t, cmd, "--device", "tpu")
			if code != 2 || !strings.Contains(stderr, `--device "tpu": want cpu or auto`) {
				t.Errorf("geca %s --device tpu: exit %d: %s", cmd, code, stderr)
			}
			// cpu passes the check and the command goes on to its own errors.
			code, _, stderr = capture(t, cmd, "--device", "cpu")
			if code != 2 || strings.Contains(stderr, "--device") {
				t.Errorf("geca %s --device cpu: exit %d: %s", cmd, code, stderr)
			}
		})
	}
}
