package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"geca/engine"
	"geca/engine/ckpt"
)

func init() {
	register(&command{
		name:    "inspect",
		summary: "describe a checkpoint: format, implied config, parameters, tensors, training args",
		usage:   "FILE [--weights ema|model] [--heads N]",
		run:     runInspect,
	})
}

// parseWithArgs parses flags that may come before or after the positional
// arguments (geca inspect FILE --weights model) and returns the positionals.
func parseWithArgs(fs *flag.FlagSet, c *command, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, c, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func runInspect(args []string) error {
	c := commands["inspect"]
	fs := newFlags(c)
	weights := fs.String("weights", "", "which weights of an official checkpoint to load and check: ema (default when present) or model")
	heads := fs.Int("heads", 0, "attention heads, when the file does not say (a bare state_dict of a custom size)")
	maxMem := addMemoryFlag(fs)
	pos, err := parseWithArgs(fs, c, args)
	if err != nil {
		return err
	}
	if err := applyMemoryFlag(maxMem); err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		return usagef("a checkpoint FILE is required\nusage: geca inspect %s", c.usage)
	case len(pos) > 1:
		return usagef("unexpected argument %q", pos[1])
	case *weights != "" && *weights != "ema" && *weights != "model":
		return usagef("--weights %q: want ema or model", *weights)
	case *heads < 0:
		return usagef("--heads %d is negative", *heads)
	}
	ck, err := ckpt.Load(pos[0], ckpt.Options{Weights: *weights, Heads: *heads})
	if err != nil {
		return err
	}
	describeCheckpoint(os.Stdout, ck)
	return nil
}

func describeCheckpoint(w io.Writer, ck *ckpt.Checkpoint) {
	fmt.Fprintf(w, "file:       %s\n", ck.Path)
	switch ck.Format {
	case "pytorch":
		fmt.Fprintf(w, "format:     PyTorch zip checkpoint (torch.save); pickle read through an allow-list, nothing executed\n")
	default:
		fmt.Fprintf(w, "format:     safetensors\n")
	}
	var parts []string
	for _, s := range ck.Sections {
		parts = append(parts, fmt.Sprintf("%s (%d tensors, %s parameters)", s.Name, len(s.Tensors), thousands(s.Params)))
	}
	if ck.Opt != nil {
		parts = append(parts, fmt.Sprintf("opt (optimizer state: %d parameters, %d tensors, %s values; not loaded)", ck.Opt.Params, ck.Opt.Tensors, thousands(ck.Opt.Elements)))
	}
	if ck.Args != nil {
		parts = append(parts, fmt.Sprintf("args (%d training arguments)", len(ck.Args)))
	}
	for _, e := range ck.Extra {
		parts = append(parts, e+" (ignored)")
	}
	fmt.Fprintf(w, "contents:   %s\n", strings.Join(parts, ", "))
	hasEMA, hasModel := ck.Section("ema") != nil, ck.Section("model") != nil
	switch {
	case hasEMA && hasModel:
		fmt.Fprintf(w, "weights:    ema and model both present; loaded %s (sampling uses ema; --weights model picks the other)\n", ck.Weights)
	case ck.Format == "pytorch" && ck.Weights == "state_dict":
		fmt.Fprintf(w, "weights:    a bare state_dict (no ema/model split)\n")
	default:
		fmt.Fprintf(w, "weights:    %s only\n", ck.Weights)
	}
	if src := ck.Meta["geca.source"]; src != "" {
		fmt.Fprintf(w, "converted:  from %s\n", src)
	}
	fmt.Fprintf(w, "parameters: %s (%s)\n", thousands(ck.ParamCount()), ck.Weights)
	cfg, err := ck.Config()
	if err != nil {
		fmt.Fprintf(w, "config:     cannot derive one:\n%s\n", indent(err.Error(), "  "))
	} else {
		fmt.Fprintf(w, "config:     %s\n", configLine(cfg))
		switch _, err := ck.Model(); {
		case errors.Is(err, ckpt.ErrTrainingState):
			fmt.Fprintf(w, "model:      none: %v\n", err)
		case err != nil:
			fmt.Fprintf(w, "model:      does NOT load:\n%s\n", indent(err.Error(), "  "))
		default:
			fmt.Fprintf(w, "model:      loads (every official tensor present, shapes match, values finite)\n")
		}
	}
	if ck.Args != nil {
		fmt.Fprintf(w, "\ntraining args:\n")
		for _, k := range ck.ArgNames() {
			fmt.Fprintf(w, "  %-18s %s\n", k, pyRepr(ck.Args[k]))
		}
	}
	if ck.Opt != nil {
		for i, g := range ck.Opt.Groups {
			keys := make([]string, 0, len(g))
			for k := range g {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var kv []string
			for _, k := range keys {
				kv = append(kv, k+"="+pyRepr(g[k]))
			}
			fmt.Fprintf(w, "\noptimizer param_groups[%d]: %s\n", i, strings.Join(kv, " "))
		}
	}
	for _, s := range ck.Sections {
		fmt.Fprintf(w, "\ntensors (%s):\n", s.Name)
		width := 0
		for _, t := range s.Tensors {
			width = max(width, len(t.Name))
		}
		for _, t := range s.Tensors {
			fmt.Fprintf(w, "  %-*s  %-14s %s\n", width, t.Name, shapeString(t.Shape), t.DType)
		}
	}
	if len(ck.Meta) > 0 {
		fmt.Fprintf(w, "\nmetadata:\n")
		keys := make([]string, 0, len(ck.Meta))
		for k := range ck.Meta {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %s: %s\n", k, ck.Meta[k])
		}
	}
}

func configLine(c engine.Config) string {
	kind := "latent (SD-VAE)"
	if !c.Latent {
		kind = "pixels"
	}
	return fmt.Sprintf("%s: grid %dx%d, C_in %d, C_out %d, C_h %d, D %d, heads %d (head dim %d), MLP %d, classes %d, M %d, update rate %g, %v, %v, %s",
		c.Name, c.GridH, c.GridW, c.InChannels, c.OutChannels(), c.HiddenChannels, c.EmbedDim, c.Heads, c.HeadDim(), c.MLPDim,
		c.NumClasses, c.M, c.UpdateRate, c.PosCode, c.Prediction, kind)
}

func shapeString(s []int) string {
	p := make([]string, len(s))
	for i, d := range s {
		p[i] = strconv.Itoa(d)
	}
	if len(s) == 1 {
		return "(" + p[0] + ",)"
	}
	return "(" + strings.Join(p, ", ") + ")"
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func indent(s, pre string) string {
	return pre + strings.ReplaceAll(s, "\n", "\n"+pre)
}

// pyRepr prints a training argument the way Python would show it.
func pyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return strconv.Quote(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case []any:
		p := make([]string, len(x))
		for i := range x {
			p[i] = pyRepr(x[i])
		}
		return "[" + strings.Join(p, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		p := make([]string, len(keys))
		for i, k := range keys {
			p[i] = strconv.Quote(k) + ": " + pyRepr(x[k])
		}
		return "{" + strings.Join(p, ", ") + "}"
	}
	return fmt.Sprint(v)
}
