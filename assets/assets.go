// Package assets embeds the default model, so the app opens on a model that
// really grows images with nothing to download. See README.md in this folder
// for how it was trained and how good it is.
package assets

import (
	"bytes"
	_ "embed"
	"fmt"

	"geca/engine"
	"geca/engine/ckpt"
	"geca/internal/safefile"
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

// DefaultModel loads the embedded model through engine/ckpt, the same checks
// as any file the user opens.
func DefaultModel() (*engine.Model, *ckpt.Checkpoint, error) {
	name := DefaultModelName + " (embedded)"
	m, c, err := ckpt.ReadModel(name, bytes.NewReader(DefaultModelBytes), int64(len(DefaultModelBytes)), ckpt.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("default model: %w", err)
	}
	return m, c, nil
}

// WriteDefaultModel writes the embedded model file to path (for example for
// tools that take a file name), whole or not at all (safefile).
func WriteDefaultModel(path string) error {
	return safefile.WriteBytes(path, DefaultModelBytes)
}
