package train

import "geca/engine"

// DefaultFashionConfig is the embedded default model: class-conditional
// Fashion-MNIST in pixel space, one pix-cell per pixel of the native 28x28
// image, small enough that a whole-grid update animates smoothly on 2 cores.
func DefaultFashionConfig() engine.Config {
	return engine.Config{Name: "GeCA-FMNIST", GridH: 28, GridW: 28, InChannels: 1, HiddenChannels: 16,
		EmbedDim: 64, Heads: 4, MLPDim: 128, NumClasses: 10, M: 8, UpdateRate: 0.5}
}
