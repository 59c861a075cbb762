//go:build cuda

package main

import (
	"geca/engine"
	"geca/engine/cuda"
	"geca/engine/cuda/gpu"
)

// This build computes on the GPU in this process (see openCUDA).
func init() {
	openCUDA = func(mode gpuMode) (engine.Accelerator, error) {
		p, err := cuda.ParsePrecision(mode.precision)
		if err != nil {
			return nil, err
		}
		return gpu.OpenAccelerator(cuda.Options{Precision: p, Library: mode.cublas})
	}
}
