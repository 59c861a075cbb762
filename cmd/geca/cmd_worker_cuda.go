//go:build cuda

package main

import (
	"geca/engine"
	"geca/engine/compute/cuda"
	"geca/engine/compute/cuda/gpu"
)

// This build computes on the GPU in this process (see openCUDA).
func init() {
	openCUDA = func(tf32 bool) (engine.Accelerator, error) {
		return gpu.OpenAccelerator(cuda.Options{TF32: tf32})
	}
}
