package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"geca/internal/membudget"
	"geca/internal/safefile"
)

// What every command that loads models or data, or writes files, shares:
// the memory limit, the checks of its outputs before any work, and the
// checks of the values it computes (docs/safety.md).

// addMemoryFlag adds --max-memory; applyMemoryFlag sets the limit from it
// (or from $GECA_MAX_MEMORY) once the flags are parsed.
func addMemoryFlag(fs *flag.FlagSet) *string {
	return fs.String("max-memory", "", "refuse work that would need more memory than this: bytes with a unit (8G, 512M) or a share of the machine's memory (50%) (default $"+membudget.EnvVar+", else three quarters of the memory)")
}

func applyMemoryFlag(v *string) error {
	membudget.Set(0) // the default unless the flag or the environment says otherwise
	if err := membudget.SetFrom("--max-memory", *v); err != nil {
		return usagef("%v", err)
	}
	return nil
}

// output is one file a command writes, named by its flag.
type output struct{ flag, path string }

// checkOutputs checks, before any work starts, that each given output can
// be written (its folder exists and is writable, it is not a folder) and is
// none of the command's inputs (same path, symbolic or hard link) nor
// another of its outputs. Empty paths are outputs not asked for.
func checkOutputs(outs []output, inputs ...string) error {
	seen := map[string]string{}
	for _, o := range outs {
		if o.path == "" {
			continue
		}
		if err := safefile.CheckOutput(o.flag, o.path, inputs...); err != nil {
			return usagef("%v", err)
		}
		key := o.path
		if abs, err := filepath.Abs(o.path); err == nil {
			key = abs
		}
		if prev, ok := seen[key]; ok {
			return usagef("%s and %s both name %s; give each output its own file", prev, o.flag, o.path)
		}
		for k, prev := range seen {
			if sameFile(k, key) {
				return usagef("%s and %s name the same file %s", prev, o.flag, o.path)
			}
		}
		seen[key] = o.flag
	}
	return nil
}

// sameFile reports whether a and b exist and are the same file.
func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// explodeStd is the standard deviation above which a latent has exploded:
// latents and pixels are O(1) (SD latents after scaling, x_T ~ N(0, 1)),
// so a hundredfold is a broken model, not a bold one.
const explodeStd = 100

// valueTrouble describes the first non-finite value of v, or its
// explosion, or "" when v is sane. Values are in samples of per values.
func valueTrouble(v []float32, per int) string {
	var sum, sq float64
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			if per > 0 {
				return fmt.Sprintf("value %v in sample %d (element %d)", x, i/per, i%per)
			}
			return fmt.Sprintf("value %v at element %d", x, i)
		}
		sum += float64(x)
		sq += float64(x) * float64(x)
	}
	if n := float64(len(v)); n > 0 {
		mean := sum / n
		if std := math.Sqrt(max(sq/n-mean*mean, 0)); std > explodeStd {
			return fmt.Sprintf("values exploded (standard deviation %.3g)", std)
		}
	}
	return ""
}

// firstNonFinite returns the index of the first NaN or infinity of v, or -1.
func firstNonFinite(v []float32) int {
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return i
		}
	}
	return -1
}

// checkVAEFolder refuses a VAE folder whose config.json is not a regular
// file of sane size before the VAE loader reads it (a link to /dev/zero
// or a named pipe would never end the read).
func checkVAEFolder(path string) error {
	fi, err := os.Stat(path)
	if err != nil || !fi.IsDir() {
		return nil // the loader says what is wrong
	}
	cfg := filepath.Join(path, "config.json")
	if _, err := os.Lstat(cfg); err != nil {
		return nil
	}
	if _, err := safefile.ReadFile(cfg, 1<<20); err != nil {
		return fmt.Errorf("vae: %w", err)
	}
	return nil
}
