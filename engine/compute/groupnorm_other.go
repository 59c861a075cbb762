//go:build !amd64

package compute

// siluAffine writes y[i] = t·sigmoid(t), t = x[i]·a + b.
func siluAffine(y, x []float32, a, b float32) { siluAffineGo(y, x, a, b) }
