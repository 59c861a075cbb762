package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"geca/engine"
	"geca/engine/ckpt"
)

func init() {
	register(&command{
		name:    "convert",
		summary: "convert a checkpoint (.pt) to .safetensors: chosen weights and config kept, optimizer state dropped",
		usage:   "IN.pt OUT.safetensors [--weights ema|model] [--heads N]",
		run:     runConvert,
	})
}

func runConvert(args []string) error {
	c := commands["convert"]
	fs := newFlags(c)
	weights := fs.String("weights", "", "which weights to keep: ema (default when present, what sampling uses) or model")
	heads := fs.Int("heads", 0, "attention heads, when the input does not say (a bare state_dict of a custom size)")
	maxMem := addMemoryFlag(fs)
	pos, err := parseWithArgs(fs, c, args)
	if err != nil {
		return err
	}
	if err := applyMemoryFlag(maxMem); err != nil {
		return err
	}
	switch {
	case len(pos) < 2:
		return usagef("IN and OUT are required\nusage: geca convert %s", c.usage)
	case len(pos) > 2:
		return usagef("unexpected argument %q", pos[2])
	case *weights != "" && *weights != "ema" && *weights != "model":
		return usagef("--weights %q: want ema or model", *weights)
	case *heads < 0:
		return usagef("--heads %d is negative", *heads)
	}
	in, out := pos[0], pos[1]
	if err := checkOutputs([]output{{"OUT", out}}, in); err != nil {
		return err
	}
	ck, err := ckpt.Load(in, ckpt.Options{Weights: *weights, Heads: *heads})
	if err != nil {
		return err
	}
	cfg, err := ck.Config()
	if err != nil {
		return err
	}
	if _, err := engine.NewModel(cfg, ck.Tensors); err != nil {
		return fmt.Errorf("%s (%s weights): %w", in, ck.Weights, err)
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	meta := map[string]string{
		ckpt.MetaConfig:  string(cfgJSON),
		ckpt.MetaWeights: ck.Weights,
		"geca.source":    filepath.Base(in),
		"format":         "pt", // what the safetensors convention expects of PyTorch weights
	}
	if ck.Args != nil {
		a, err := ck.ArgsJSON()
		if err != nil {
			return fmt.Errorf("%s: training args: %w", in, err)
		}
		meta["geca.args"] = a
	}
	if err := ckpt.SaveSafetensors(out, ck.Tensors, ck.Names, meta); err != nil {
		return err
	}
	st, err := os.Stat(out)
	if err != nil {
		return err
	}
	dropped := ""
	if ck.Opt != nil {
		dropped = "; optimizer state dropped"
	}
	fmt.Printf("wrote %s: %s weights, %d tensors, %s parameters, %s bytes (%s)%s\n", out, ck.Weights, len(ck.Tensors),
		thousands(ck.ParamCount()), thousands(st.Size()), cfg.Name, dropped)
	return nil
}
