// Package assets embeds the built-in models (Builtins: Fashion-MNIST, the
// default, and the emoji teaching model), so the app opens on a model that
// really grows images with nothing to download. See README.md in this folder
// for how it was trained and how good it is.
package assets

import (
	_ "embed"

	"geca/engine"
	"geca/engine/ckpt"
)

// DefaultModelName is the file name of the embedded default model.
const DefaultModelName = "geca-fmnist.safetensors"

// DefaultModelBytes is the default model file: a class-conditional GeCA
// trained with `geca train` on Fashion-MNIST (10 classes, 28x28 grayscale
// pixels in [−1, 1], one pix-cell per pixel), EMA weights under the official
// state_dict names, engine.Config JSON in the "geca.config" metadata.
//
//go:embed geca-fmnist.safetensors
var DefaultModelBytes []byte

// DefaultClasses names the labels of the default model.
var DefaultClasses = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

// DefaultModel loads the embedded default model (FashionMNIST.Load).
func DefaultModel() (*engine.Model, *ckpt.Checkpoint, error) { return FashionMNIST.Load() }

// WriteDefaultModel writes the default model file to path (FashionMNIST.Write).
func WriteDefaultModel(path string) error { return FashionMNIST.Write(path) }
