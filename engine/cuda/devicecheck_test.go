package cuda

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The device check runs once on a borrowed GPU machine, with no second
// chance to fix a typo: these tests run devicecheck.sh here, on stand-ins
// for its binaries that print what the real ones print, and read its table.

// fakeGPUTest answers devicecheck.sh's gpu.test calls by their arguments.
const fakeGPUTest = `#!/usr/bin/env bash
case "$*" in
*Parity*)
	echo "    gpu_test.go:50: CPUENGINE pure Go, 16 threads"
	echo "    gpu_test.go:60: PARITY fp32 call: max rel 2.1e-07"
	[[ -n ${FAKE_PARITY_FAIL:-} ]] && { echo "--- FAIL: TestParityCall (0.1s)"; echo FAIL; exit 1; }
	echo PASS ;;
*'(gpu|cublas|tf32|bf16)'*)
	echo "BenchmarkUpdate/b1/gpu-16 20 500000 ns/op"
	echo "BenchmarkUpdate/b1/cublas-16 20 400000 ns/op"
	echo "BenchmarkUpdate/b1/tf32-16 20 300000 ns/op"
	echo "BenchmarkUpdate/b1/bf16-16 20 250000 ns/op"
	echo "BenchmarkCall/b1/gpu-16 20 6000000 ns/op"
	echo "BenchmarkCall/b8/gpu-16 20 40000000 ns/op" ;;
*Sample*)
	echo "BenchmarkSample/b1/gpu-16 1 1500000000 ns/op"
	echo "BenchmarkSample/b1/cublas-16 1 1200000000 ns/op"
	echo "BenchmarkSample/b8/gpu-16 1 10000000000 ns/op" ;;
*b1/cpu*)
	echo "BenchmarkUpdate/b1/cpu-16 2 250000000 ns/op"
	echo "BenchmarkCall/b1/cpu-16 2 3000000000 ns/op" ;;
*b8/cpu*)
	echo "BenchmarkCall/b8/cpu-16 1 24000000000 ns/op" ;;
*WriteCheckpoint*)
	: >"$GECA_WRITE_CKPT"; echo PASS ;;
esac
`

// fakePython stands in for a python3 with a CUDA PyTorch.
const fakePython = `#!/usr/bin/env bash
[[ $1 == -c ]] && exit 0
echo "TORCH INFO torch 2.11.0 on NVIDIA H200; matmul TF32 False, cuDNN TF32 True"
echo "TORCH Update/b1 4000000"
echo "TORCH Call/b1 48000000"
echo "TORCH Sample/b1 12000000000"
echo "TORCH Call/b8 300000000"
echo "TORCH Sample/b8 EST 75000000000"
`

func runDeviceCheck(t *testing.T, env []string, withTorch bool) (string, int) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	dir := t.TempDir()
	script, err := os.ReadFile("devicecheck.sh")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	files := map[string]string{
		filepath.Join(dir, "devicecheck.sh"): string(script),
		filepath.Join(dir, "gpu.test"):       fakeGPUTest,
		filepath.Join(dir, "geca-cuda"):      "#!/usr/bin/env bash\necho geca test\n",
	}
	if withTorch {
		files[filepath.Join(bin, "python3")] = fakePython
	} else {
		files[filepath.Join(bin, "python3")] = "#!/usr/bin/env bash\nexit 1\n"
	}
	for p, s := range files {
		if err := os.WriteFile(p, []byte(s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("bash", filepath.Join(dir, "devicecheck.sh"))
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "DEVICECHECK_SECONDS=120")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// row returns the fields of the table row that starts with label.
func row(t *testing.T, out, label string) []string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, label) {
			return regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(strings.TrimPrefix(l, label)), -1)
		}
	}
	t.Fatalf("no row %q in:\n%s", label, out)
	return nil
}

func TestDeviceCheckTable(t *testing.T) {
	out, code := runDeviceCheck(t, nil, true)
	if code != 0 || !strings.Contains(out, "DEVICE CHECK: PASS") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, want := range []string{
		"CPU engine: pure Go, 16 threads",
		"PyTorch: torch 2.11.0 on NVIDIA H200; matmul TF32 False, cuDNN TF32 True",
		"fp32 call: max rel 2.1e-07",
	} {
		t.Run(want, func(t *testing.T) {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		})
	}
	// Columns: FP32, cuBLAS, TF32, BF16, PyTorch, CPU, vs torch, vs CPU.
	for label, want := range map[string][]string{
		"one cell update, batch 1":                {"500 us", "400 us", "300 us", "250 us", "4.00 ms", "250.00 ms", "8.0x", "500x"},
		"one denoiser call (12 updates), batch 1": {"6.00 ms", "n/a", "n/a", "n/a", "48.00 ms", "3.00 s", "8.0x", "500x"},
		"one denoiser call (12 updates), batch 8": {"40.00 ms", "n/a", "n/a", "n/a", "300.00 ms", "24.00 s", "7.5x", "600x"},
		"250-step CFG sample, batch 1":            {"1.50 s", "1.20 s", "n/a", "n/a", "12.00 s", "~12.5 min", "8.0x", "500x"},
		"250-step CFG sample, batch 8":            {"10.00 s", "n/a", "n/a", "n/a", "~75.00 s", "~100.0 min", "7.5x", "600x"},
	} {
		t.Run(label, func(t *testing.T) {
			if got := row(t, out, label); strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("%s: %q, want %q", label, got, want)
			}
		})
	}
	if got := row(t, out, "geca-cuda sample, 250 steps, batch 1 (CLI)"); len(got) != 1 || !strings.HasSuffix(got[0], " s") {
		t.Errorf("CLI row %q", got)
	}
}

func TestDeviceCheckFailures(t *testing.T) {
	out, code := runDeviceCheck(t, []string{"FAKE_PARITY_FAIL=1"}, false)
	if code != 1 || !strings.Contains(out, "DEVICE CHECK: FAIL") || !strings.Contains(out, "--- FAIL: TestParityCall") {
		t.Errorf("failing parity: exit %d:\n%s", code, out)
	}
	if !strings.Contains(out, "torch: skipped (python3 has no torch)") || !strings.Contains(out, "PyTorch: not run") {
		t.Errorf("no PyTorch: not said:\n%s", out)
	}
	if got := row(t, out, "one cell update, batch 1"); len(got) != 8 || got[4] != "n/a" || got[6] != "n/a" {
		t.Errorf("row without PyTorch %q", got)
	}
}

// TestTorchBench runs torch_bench.py on the CPU with a tiny model, where a
// python3 with PyTorch is installed, so that its one run on a GPU finds it
// working.
func TestTorchBench(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import torch").Run(); err != nil {
		t.Skipf("%s cannot import torch (Debian: apt-get install python3-torch): %v", py, err)
	}
	out, err := exec.Command(py, "torch_bench.py", "--device", "cpu", "--preset", "tiny", "--steps", "10", "--repeat", "2").CombinedOutput()
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	for _, name := range []string{"Update/b1", "Call/b1", "Sample/b1", "Update/b8", "Call/b8", "Sample/b8"} {
		t.Run(name, func(t *testing.T) {
			if !regexp.MustCompile(`(?m)^TORCH ` + name + ` [1-9][0-9]*$`).Match(out) {
				t.Errorf("no timing for %s:\n%s", name, out)
			}
		})
	}
	if strings.Contains(string(out), "TORCH FAIL") {
		t.Errorf("%s", out)
	}
}
