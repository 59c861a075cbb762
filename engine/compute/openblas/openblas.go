//go:build openblas

// Package openblas links OpenBLAS (build tag openblas) and exposes the one
// setting the engine needs. It is a separate package because a package using
// cgo cannot also hold Go assembly, which engine/compute does.
package openblas

// #cgo LDFLAGS: -lopenblas
// void openblas_set_num_threads(int);
import "C"

// SetThreads sets the number of threads OpenBLAS uses inside one call.
func SetThreads(n int) { C.openblas_set_num_threads(C.int(n)) }
