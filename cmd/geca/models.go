package main

import (
	"flag"
	"strconv"
	"strings"

	"geca/assets"
	"geca/engine"
	"geca/engine/ckpt"
)

// modelFlags are the two ways a command is given a model: a checkpoint file
// (--ckpt) or a built-in model by name (--model; the default when neither is
// given is the first built-in, Fashion-MNIST).
type modelFlags struct {
	ckpt, model *string
}

func addModelFlags(fs *flag.FlagSet, ckptUsage string) modelFlags {
	return modelFlags{
		ckpt:  fs.String("ckpt", "", ckptUsage),
		model: fs.String("model", "", "built-in model to use instead of a file: "+builtinNames()+" (default "+assets.Builtins[0].Name+")"),
	}
}

func builtinNames() string {
	var names []string
	for _, b := range assets.Builtins {
		names = append(names, b.Name+" ("+b.Title+")")
	}
	return strings.Join(names, ", ")
}

// builtin is the chosen built-in model, or nil when --ckpt names a file.
func (f modelFlags) builtin() (*assets.Builtin, error) {
	switch {
	case *f.ckpt != "" && *f.model != "":
		return nil, usagef("give --ckpt or --model, not both")
	case *f.ckpt != "":
		return nil, nil
	case *f.model == "":
		return assets.Builtins[0], nil
	}
	b, err := assets.Lookup(*f.model)
	if err != nil {
		return nil, usagef("--model: %v", err)
	}
	return b, nil
}

// load reads the chosen model: the file through engine/ckpt with opt, or the
// built-in one (b non-nil).
func (f modelFlags) load(opt ckpt.Options) (m *engine.Model, c *ckpt.Checkpoint, b *assets.Builtin, err error) {
	if b, err = f.builtin(); err != nil {
		return nil, nil, nil, err
	}
	if b != nil {
		m, c, err = b.Load()
	} else {
		m, c, err = ckpt.LoadModel(*f.ckpt, opt)
	}
	return m, c, b, err
}

// builtinDefaults says what each built-in model uses for one sampler
// setting, for a flag's help: "fmnist: 6, emoji: 1.5".
func builtinDefaults(setting func(assets.Sampler) string) string {
	var parts []string
	for _, b := range assets.Builtins {
		parts = append(parts, b.Name+": "+setting(b.Sampler))
	}
	return strings.Join(parts, ", ")
}

func samplerSteps(s assets.Sampler) string { return s.Steps }
func samplerCFG(s assets.Sampler) string   { return strconv.FormatFloat(float64(s.CFG), 'g', -1, 32) }
func samplerGHG(s assets.Sampler) string   { return onOff(s.GHG) }

// onOff writes a switch as --ghg reads it.
func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// clipX0Help is the help of --clip-x0 (sample, sample-set).
const clipX0Help = "clamp the predicted x0 to [-1, 1] at every step (the official code's clip_denoised=True, which its GeCA sampling never uses: for models of pixels in [-1, 1])"

// clipNote is what the settings line of sample and sample-set adds under
// --clip-x0, so a clipped run never reads as an official one.
func clipNote(clip bool) string {
	if clip {
		return ", x0 clipped to [-1, 1]"
	}
	return ""
}
