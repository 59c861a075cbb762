package train

import (
	"image/color"
	"os"
	"testing"

	"geca/engine/data"
)

// TestEmojiTrainingLossFalls trains a tiny RGB model on three real emoji
// (rendered from the Noto colour emoji font at 8x8) for a few dozen steps:
// the teaching model's data path, end to end, with the noise-prediction
// loss clearly falling.
func TestEmojiTrainingLossFalls(t *testing.T) {
	if _, err := os.Stat(data.EmojiFontPath); err != nil {
		t.Skipf("no colour emoji font (Debian: fonts-noto-color-emoji): %v", err)
	}
	ds, err := data.LoadEmoji("", []string{"🦎", "🍎", "🐳"}, data.EmojiOptions{Size: 8, Variants: 8, Shift: 1, Seed: 1,
		Background: color.NRGBA{255, 255, 255, 255}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := smallConfig()
	cfg.InChannels, cfg.NumClasses = 3, 3
	opt := DefaultOptions()
	opt.Batch, opt.LR = 8, 3e-3
	tr, err := NewTrainer(cfg, opt, ds)
	if err != nil {
		t.Fatal(err)
	}
	lossFalls(t, tr)
}
