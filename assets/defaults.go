package assets

// Sampler is a choice of sampler settings for a model.
type Sampler struct {
	// Steps is the respacing of the 1000-step schedule as engine/sample
	// reads it: "50" for 50 DDPM steps, "ddim50" for 50 DDIM steps.
	Steps string
	// CFG is the classifier-free guidance scale (1: none).
	CFG float32
	// GHG is Gene Heredity Guidance.
	GHG bool
}

// DefaultSampler is how the viewer samples the built-in model, chosen by
// measurement (README.md in this folder, "Sampler defaults"): 50 DDIM
// steps are as cheap to animate as 50 DDPM steps and give cleaner samples;
// guidance 3 is recognised as often as 6 and draws more varied samples.
var DefaultSampler = Sampler{Steps: "ddim50", CFG: 3, GHG: true}

// OfficialSampler are the official GeCA sampling settings (sample_ddp.py):
// 250 respaced DDPM steps, CFG 1.5, GHG on.
var OfficialSampler = Sampler{Steps: "250", CFG: 1.5, GHG: true}

// EmojiSampler is how the emoji model is sampled by default (README.md in
// this folder, "Emoji model").
var EmojiSampler = Sampler{Steps: "ddim50", CFG: 1.5, GHG: false}
