package vae

import (
	"fmt"
	"math"

	"geca/internal/safefile"
)

// maxConfigFile bounds a config.json (a diffusers VAE's is under 1 KB): a
// link to /dev/zero, a named pipe or a huge file is refused, not read.
const maxConfigFile = 1 << 20

// readConfigFile reads and parses a diffusers config.json: a regular file
// of at most maxConfigFile bytes (docs/safety.md).
func readConfigFile(path string) (Config, error) {
	b, err := safefile.ReadFile(path, maxConfigFile)
	if err != nil {
		return Config{}, fmt.Errorf("vae: %w", err)
	}
	return ParseConfig(b, path)
}

// The latent scaling of the VAEs in use lies between 0.13 (SDXL) and 1.5
// (SD3); outside [minScaling, maxScaling] a config is broken, and decoding
// with it gives infinities and NaN (1e-300 passed the positivity check).
const (
	minScaling = 1e-3
	maxScaling = 1e3
	maxShift   = 1e3
)

// checkScaling reports a scaling or shift factor that cannot be right.
func checkScaling(c Config) error {
	if !(c.ScalingFactor >= minScaling && c.ScalingFactor <= maxScaling) {
		return fmt.Errorf("scaling_factor %v out of range [%g, %g]", c.ScalingFactor, minScaling, maxScaling)
	}
	if s := c.ShiftFactor; s != nil && (math.IsNaN(*s) || math.Abs(*s) > maxShift) {
		return fmt.Errorf("shift_factor %v out of range [-%g, %g]", *s, maxShift, maxShift)
	}
	return nil
}
