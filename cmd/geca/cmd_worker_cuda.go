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
		p := cuda.FP32
		if tf32 {
			p = cuda.TF32
		}
		return gpu.OpenAccelerator(cuda.Options{Precision: p})
	}
}
