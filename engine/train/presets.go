package train

import (
	"fmt"
	"regexp"

	"geca/engine"
)

// DefaultFashionConfig is the embedded default model: class-conditional
// Fashion-MNIST in pixel space, one pix-cell per pixel of the native 28x28
// image, small enough that a whole-grid update animates smoothly on 2 cores.
func DefaultFashionConfig() engine.Config {
	return engine.Config{Name: "GeCA-FMNIST", GridH: 28, GridW: 28, InChannels: 1, HiddenChannels: 16,
		EmbedDim: 64, Heads: 4, MLPDim: 128, NumClasses: 10, M: 8, UpdateRate: 0.5}
}

// ResizedName is the name of a model whose block differs from the one
// named name in one size, such as ("GeCA-Emoji", "MLP", 512) →
// "GeCA-Emoji-MLP512", so that a resized model never passes for the preset
// it started from. A size the name already states is replaced.
func ResizedName(name, label string, v int) string {
	re := regexp.MustCompile(`-` + regexp.QuoteMeta(label) + `[0-9]+\b`)
	if re.MatchString(name) {
		return re.ReplaceAllString(name, fmt.Sprintf("-%s%d", label, v))
	}
	return fmt.Sprintf("%s-%s%d", name, label, v)
}
