// Package assets embeds the built-in models (Builtins: Fashion-MNIST, the
// default, and the emoji teaching model), so the app opens on a model that
// really grows images with nothing to download. See README.md in this folder
// for how they were trained and how good they are.
package assets

import _ "embed"

// The model files: class-conditional GeCAs trained with `geca train`, in
// pixel space (one pix-cell per pixel, x in [−1, 1]), EMA weights under the
// official state_dict names, engine.Config JSON in the "geca.config"
// metadata.
var (
	//go:embed geca-fmnist.safetensors
	fmnistBytes []byte
	//go:embed geca-emoji.safetensors
	emojiBytes []byte
)
