//go:build !unix

package compute

// convCPUSeconds is not measured on this system.
func convCPUSeconds() float64 { return 0 }
