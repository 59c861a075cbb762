//go:build cuda

package main

import (
	"os"

	"geca/engine"
	"geca/engine/compute/cuda"
	"geca/engine/compute/cuda/gpu"
)

// This build computes on the GPU in this process (see openCUDA). Its kernels
// multiply in FP32; GECA_TF32=1 uses the TF32 tensor cores instead.
func init() {
	openCUDA = func() (engine.Accelerator, error) {
		return gpu.OpenAccelerator(cuda.Options{TF32: os.Getenv("GECA_TF32") == "1"})
	}
}
