//go:build cuda

// Package probe starts the CUDA driver before gorgonia.org/cu does, to say
// clearly why the GPU engine cannot run. cu's package initialization calls
// cuInit and ends the process (exit 1, a bare message on standard output)
// when it fails; Go initializes packages in import-path order among those
// whose imports are ready, so this package, which imports nothing cu does
// not, runs first: a GPU test binary then skips with a message and exit
// status 0, and a GPU build of geca exits 1 with an explanation on standard
// error (which a viewer starting it as a worker shows).
//
// Keep the imports of this package to a subset of cu's, or it may run after
// cu.
package probe

/*
#cgo LDFLAGS: -lcuda
#include <cuda.h>
#include <stddef.h>

static int probe_init(const char** name, const char** msg) {
	CUresult r = cuInit(0);
	if (r != CUDA_SUCCESS) {
		if (cuGetErrorName(r, name) != CUDA_SUCCESS) *name = NULL;
		if (cuGetErrorString(r, msg) != CUDA_SUCCESS) *msg = NULL;
	}
	return (int)r;
}
*/
import "C"

import "os"

// Failure is why the CUDA driver did not start ("" when it did). It is set
// only for the moment before the process ends, and for tests of this package.
var Failure string

func init() {
	var name, msg *C.char
	r := C.probe_init(&name, &msg)
	if r == 0 {
		return
	}
	Failure = "cuInit failed: " + itoa(int(r))
	if name != nil {
		Failure += " " + C.GoString(name)
	}
	if msg != nil {
		Failure += " (" + C.GoString(msg) + ")"
	}
	if isTestBinary() {
		os.Stdout.WriteString("--- SKIP: no usable NVIDIA GPU: " + Failure + "\n" +
			"    the GPU tests need an NVIDIA GPU and its driver; they were not run\nPASS\n")
		os.Exit(0)
	}
	os.Stderr.WriteString("geca: the GPU engine cannot start: " + Failure + ".\n" +
		"This build (-tags cuda) needs an NVIDIA GPU and driver; without one use a build without the cuda tag (the CPU engine).\n")
	os.Exit(1)
}

func isTestBinary() bool {
	a := os.Args[0]
	return len(a) >= 5 && a[len(a)-5:] == ".test"
}

func itoa(v int) string {
	if v == 0 {
		return "0"
	}
	neg := v < 0
	if neg {
		v = -v
	}
	var b [20]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
