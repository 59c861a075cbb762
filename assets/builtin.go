package assets

import (
	"bytes"
	"fmt"
	"strings"

	"geca/engine"
	"geca/engine/ckpt"
	"geca/engine/data"
	"geca/internal/filehash"
	"geca/internal/safefile"
)

// Builtin is a model that ships inside the binary: the viewer and the
// commands open it by Name (`--model NAME`) with nothing to download, through
// the same loader and checks as a file the user gives.
type Builtin struct {
	// Name is what --model takes; File the embedded file's name.
	Name, File string
	// Title describes the model in the status line and the model picker.
	Title string
	// Classes names the labels, in label order.
	Classes []string
	// Sampler is how the model is sampled unless the user says otherwise,
	// chosen by measurement (README.md in this folder).
	Sampler Sampler
	// Bytes is the model file.
	Bytes []byte
}

// FashionMNIST is the default model: 28x28 grayscale garments, the ten
// classes of Fashion-MNIST.
var FashionMNIST = &Builtin{
	Name: "fmnist", File: "geca-fmnist.safetensors", Title: "Fashion-MNIST 28x28",
	Classes: []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"},
	Sampler: DefaultSampler, Bytes: fmnistBytes,
}

// Emoji is the teaching model: ten colour emoji (the "garden" set of
// engine/data, the lizard of the classic growing-NCA demo among them), each
// grown from the single seed cell on a 32x32 RGB grid.
var Emoji = &Builtin{
	Name: "emoji", File: "geca-emoji.safetensors", Title: "Emoji 32x32 RGB",
	Classes: data.EmojiSets["garden"].Names, Sampler: EmojiSampler, Bytes: emojiBytes,
}

// Builtins lists the built-in models, the default first.
var Builtins = []*Builtin{FashionMNIST, Emoji}

// Lookup finds a built-in model by name (case-insensitive); the error lists
// the names there are.
func Lookup(name string) (*Builtin, error) {
	var names []string
	for _, b := range Builtins {
		if strings.EqualFold(strings.TrimSpace(name), b.Name) {
			return b, nil
		}
		names = append(names, b.Name)
	}
	return nil, fmt.Errorf("no built-in model %q (built in: %s)", name, strings.Join(names, ", "))
}

// Load reads the model through engine/ckpt.
func (b *Builtin) Load() (*engine.Model, *ckpt.Checkpoint, error) {
	m, c, err := ckpt.ReadModel(b.File+" (built in)", bytes.NewReader(b.Bytes), int64(len(b.Bytes)), ckpt.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("built-in model %s: %w", b.Name, err)
	}
	return m, c, nil
}

// Hash is the SHA-256 of the model file, as exports and sample sets record
// a checkpoint's.
func (b *Builtin) Hash() string { return filehash.Bytes(b.Bytes) }

// Write writes the model file to path (for tools that take a file name),
// whole or not at all.
func (b *Builtin) Write(path string) error { return safefile.WriteBytes(path, b.Bytes) }
